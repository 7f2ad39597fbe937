"""The main job from start to end: search, tables, retrain, baselines, best.json and the report."""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from search.config import Config, ConfigError, check_run_name, dump_yaml
from search.storage import RunFolder, join, normalize_storage
from search.trial_table import PARAMS, best_trial, read_trial_tables

logger = logging.getLogger(__name__)

CONFIG_FILE = "lstm-tune.yaml"  # the resolved configuration; its presence marks a run folder
BEST_FILE = "best.json"
MODEL_FILE = "best_model.keras"


class SearchFailedError(RuntimeError):
    """The search ended without a trial that can be retrained."""


@dataclass(frozen=True)
class RunResult:
    """Where a finished run's outputs are and its headline numbers."""

    folder: RunFolder
    best: dict[str, Any]


def default_run_name() -> str:
    return datetime.now().strftime("search-%Y%m%d-%H%M%S")


def prepare_run_folder(config: Config) -> RunFolder:
    """Pick the run name, refuse to reuse an existing run, and store the resolved configuration.

    Raises:
        ConfigError: If the name is invalid or a run of that name already exists.
    """
    name = check_run_name(config.run.name or default_run_name())
    config.run.name = name
    folder = RunFolder(join(normalize_storage(config.run.storage), name))

    if folder.exists():
        raise ConfigError(
            f"--name: a run named '{name}' already exists in '{folder.location}'; "
            "choose another --name or remove that folder first."
        )

    try:
        folder.write_text(dump_yaml(config), CONFIG_FILE)
    except OSError as error:
        raise ConfigError(f"--storage: cannot write to '{folder.location}': {error.strerror or error}.") from None
    return folder


def run_main_job(config: Config, address: str | None) -> RunResult:
    """Run the search, then retrain the best trial, score it against the baselines and write the report."""
    from search import report
    from search.driver import run_search
    from search.ray_session import check_storage_reaches_every_node, start_ray
    from search.retrain import load_test_set, retrain, score_baselines
    from search.searcher import optuna_space

    # Ray starts first so that storage a cluster cannot use is rejected before the
    # run folder is written.
    start_ray(address, config.resources.num_cpus)
    check_storage_reaches_every_node(config.run.storage, config.run.shared_storage)
    folder = prepare_run_folder(config)
    logger.info("Run '%s' writes to %s.", config.run.name, folder.location)

    outcome = run_search(config, config.run.name)

    tables = read_trial_tables(folder, config.asha.max_t)
    report.write_tables(folder, tables)
    logger.info("Wrote results.csv and results.parquet with %d trials.", len(tables.trials))

    row = best_trial(tables.trials)
    if row is None:
        raise SearchFailedError(
            f"No trial of run '{config.run.name}' finished with a finite val_mae; "
            f"see {folder.path('results.csv')} for each trial's error."
        )
    params = {name: row[name].item() if hasattr(row[name], "item") else row[name] for name in PARAMS}
    logger.info("Best trial %s: %s, val_mae %.5f.", row["trial_id"], params, row["best_val_mae"])

    test = load_test_set(config)
    baselines = score_baselines(config, test)
    model, retrained = retrain(config, params, test)
    retrained.baselines = baselines

    with tempfile.TemporaryDirectory(prefix="lstm-tune-model-") as scratch:
        from model import save_model

        local = save_model(model, Path(scratch) / MODEL_FILE)
        folder.upload(local, MODEL_FILE)

    from model import forecast

    best = {
        "run": config.run.name,
        "config": params,
        "trial_id": str(row["trial_id"]),
        "val_mae": float(row["best_val_mae"]),
        "test_mae": retrained.test_mae,
        "baselines": baselines,
        "retrain": {
            "n_train": config.retrain.n_train,
            "epochs": retrained.epochs,
            "best_epoch": retrained.best_epoch,
            "val_mae": retrained.val_mae,
            "wall_time_s": retrained.wall_time_s,
        },
        "search": {
            "trials_requested": config.search.samples,
            "max_t": config.asha.max_t,
            "wall_time_s": outcome.wall_time_s,
            "total_trial_time_s": float(tables.trials["training_time_s"].sum()),
        },
        "test_set": {"n_test": config.data.n_test, "seed": config.data.test_seed},
    }
    folder.write_text(json.dumps(_json_safe(best), indent=2) + "\n", BEST_FILE)

    predicted = forecast(model, test.X[:6])
    report.write_report(folder, best, tables, optuna_space(config.space), (test.X[:6], test.y[:6], predicted))
    return RunResult(folder=folder, best=best)


def _json_safe(value: Any) -> Any:
    """Replace NaN and infinities, which JSON does not have, by None."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_summary(result: RunResult, wall_time_s: float) -> None:
    """Print the best configuration, the test MAE beside the baselines, and where the report is."""
    best = result.best
    params = best["config"]
    print()
    print(
        f"Best config: depth {params['depth']}, units {params['units']}, batch_size {params['batch_size']}, "
        f"learning_rate {params['learning_rate']:.3e} (trial {best['trial_id']}, val_mae {best['val_mae']:.5f})"
    )
    print(f"Test MAE (MAE on {best['test_set']['n_test']} test series):")
    print(f"  tuned LSTM        {best['test_mae']:.5f}")
    for name, value in best["baselines"].items():
        print(f"  {name:<17} {value:.5f}")
    print(f"Report: {result.folder.path('report.md')}")
    print(f"Total wall time: {wall_time_s:.1f} s")


def elapsed_since(started: float) -> float:
    return time.perf_counter() - started
