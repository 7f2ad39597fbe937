"""Command-line interface: ``lstm-tune search``, ``lstm-tune results`` and ``lstm-tune report``.

Examples::

    lstm-tune search --preset smoke --storage runs --name first-try
    lstm-tune search --resume --storage runs --name first-try
    lstm-tune results runs/first-try --top 5
    lstm-tune report runs/first-try
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
import time
from typing import NoReturn

from search.config import PRESETS, ConfigError

logger = logging.getLogger("search")

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
FORMATS = ("table", "csv", "json", "markdown")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see '{self.prog} --help'.\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got '{text}', expected a whole number >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {value}, expected a whole number >= 1")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got '{text}', expected a whole number") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lstm-tune", description="Tune a stacked-LSTM forecaster with Ray Tune, Optuna and ASHA.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    search = commands.add_parser(
        "search",
        help="run a hyperparameter search, retrain the best configuration and write the report",
        description="Run a search, retrain the best configuration, compare it with baselines and write the report. "
        "Example: lstm-tune search --preset smoke --storage runs --name first-try",
    )
    search.add_argument("--config", metavar="FILE", help="YAML file with any of the settings (see config.example.yaml)")
    search.add_argument("--preset", choices=sorted(PRESETS), help="named settings under the config file: smoke or laptop")
    search.add_argument("--samples", type=_positive_int, metavar="N", help="trials to run (search.samples)")
    search.add_argument("--name", help="run name, a single folder name (run.name); default: search-DATE-TIME")
    search.add_argument("--storage", metavar="PATH", help="folder or URI that contains the runs (run.storage)")
    search.add_argument("--address", help="address of a running Ray cluster, or 'auto'; default: start a local Ray")
    search.add_argument("--seed", type=_int, metavar="N", help="seed of the sampler and of the data (search.seed, data.seed)")
    search.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run --name in --storage with the settings it started with, then retrain and report",
    )
    search.add_argument("--overwrite", action="store_true", help="delete an existing run of the same --name first")

    results = commands.add_parser(
        "results",
        help="print the results table of a finished or running run",
        description="Print one row per trial of a run. Example: lstm-tune results runs/first-try --top 5",
    )
    results.add_argument("run", metavar="RUN", help="run folder or URI, STORAGE/NAME")
    results.add_argument("--top", type=_positive_int, metavar="N", help="print only the first N rows")
    results.add_argument("--sort", metavar="COLUMN", default="best_val_mae", help="column to sort by (default: best_val_mae)")
    results.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")

    report = commands.add_parser(
        "report",
        help="rebuild report.md and its plots from a run's stored results, without training",
        description="Rebuild report.md and the plots of a finished run. Example: lstm-tune report runs/first-try",
    )
    report.add_argument("run", metavar="RUN", help="run folder or URI, STORAGE/NAME")
    return parser


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(levelname).1s %(asctime)s] %(message)s", "%H:%M:%S"))
    for name in ("search", "model", "data"):
        package_logger = logging.getLogger(name)
        package_logger.setLevel(logging.INFO)
        package_logger.addHandler(handler)
        package_logger.propagate = False


# Options that set the configuration, which a resumed run takes from its stored lstm-tune.yaml.
_SETTING_OPTIONS = {"--config": "config", "--preset": "preset", "--samples": "samples", "--seed": "seed"}


def _check_resume_options(args: argparse.Namespace) -> None:
    if not args.name:
        raise ConfigError("--resume: needs --name NAME of the run to resume, and --storage PATH unless it is 'runs'.")
    for option, attribute in _SETTING_OPTIONS.items():
        if getattr(args, attribute) is not None:
            raise ConfigError(
                f"{option}: cannot be combined with --resume, which uses the settings the run stored "
                f"in its lstm-tune.yaml; leave out {option}."
            )
    if args.overwrite:
        raise ConfigError("--overwrite: cannot be combined with --resume; pass one of the two.")


def _run_search(args: argparse.Namespace) -> int:
    from search.config import Config, build_config
    from search.pipeline import open_run_to_resume, print_summary, run_main_job
    from search.ray_session import check_address

    if args.resume:
        _check_resume_options(args)
        _, config = open_run_to_resume(args.storage or Config().run.storage, args.name)
    else:
        overrides = {
            "search.samples": args.samples,
            "search.seed": args.seed,
            "data.seed": args.seed,
            "run.name": args.name,
            "run.storage": args.storage,
        }
        config = build_config(preset=args.preset, file=args.config, overrides=overrides)
    if args.address:
        check_address(args.address)

    started = time.perf_counter()
    result = run_main_job(config, args.address, overwrite=args.overwrite, resume=args.resume)
    print_summary(result, time.perf_counter() - started)
    return 0


def _run_results(args: argparse.Namespace) -> int:
    from search.run_reader import format_results, open_run

    run = open_run(args.run)
    print(format_results(run.trials(), sort=args.sort, top=args.top, output_format=args.format), end="")
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from search.run_reader import open_run, rebuild_report

    location = rebuild_report(open_run(args.run))
    print(f"Report: {location}")
    return 0


def _quiet_libraries() -> None:
    """Keep the terminal to progress and results: hide notices that need no action."""
    from search.threads import quiet_tensorflow

    quiet_tensorflow()
    # Ray warns each time a trial's checkpoint forces an experiment snapshot. With a
    # checkpoint per epoch that happens every few seconds and adds nothing.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    warnings.filterwarnings("ignore", category=optuna_experimental_warning())


def optuna_experimental_warning() -> type[Warning]:
    from optuna.exceptions import ExperimentalWarning

    return ExperimentalWarning


def _shutdown_ray() -> None:
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    from search.pipeline import SearchFailedError, SearchInterruptedError

    args = build_parser().parse_args(argv)
    _quiet_libraries()
    _configure_logging()
    handlers = {"search": _run_search, "results": _run_results, "report": _run_report}

    try:
        return handlers[args.command](args)
    except ConfigError as error:
        print(f"lstm-tune {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SearchInterruptedError as error:
        # Ray forwards worker output with a delay; stopping it first keeps the
        # resume command the last line on the terminal.
        _shutdown_ray()
        print(f"lstm-tune {args.command}: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"lstm-tune {args.command}: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SearchFailedError as error:
        print(f"lstm-tune {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except json.JSONDecodeError as error:
        print(f"lstm-tune {args.command}: error: a stored JSON file is damaged: {error}.", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
