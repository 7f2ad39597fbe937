"""The main job from start to end: search, tables, retrain, baselines, best.json and the report."""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from search.config import Config, ConfigError, build_config, check_run_name, dump_yaml
from search.storage import RunFolder, join, normalize_storage
from search.trial_table import PARAMS, best_trial, read_trial_tables

logger = logging.getLogger(__name__)

CONFIG_FILE = "lstm-tune.yaml"  # the resolved configuration; its presence marks a run folder
BEST_FILE = "best.json"
MODEL_FILE = "best_model.keras"


class SearchFailedError(RuntimeError):
    """The search ended without a trial that can be retrained."""


class SearchInterruptedError(RuntimeError):
    """The search stopped before every trial ended; the message contains the command that resumes it."""


@dataclass(frozen=True)
class RunResult:
    """Location and headline numbers of a finished run."""

    folder: RunFolder
    best: dict[str, Any]


def default_run_name() -> str:
    return datetime.now().strftime("search-%Y%m%d-%H%M%S")


def _open_run_folder(storage: str, name: str) -> RunFolder:
    """Return the folder ``STORAGE/NAME`` after checking the name, without creating it.

    Raises:
        ConfigError: If the name is not a single folder name or the storage cannot be read.
    """
    check_run_name(name)
    try:
        folder = RunFolder(join(normalize_storage(storage), name))
        folder.exists()
    except (OSError, ValueError) as error:
        raise ConfigError(f"--storage: cannot open '{storage}': {_reason(error)}.") from None
    return folder


def _reason(error: Exception) -> str:
    """Return the one-line cause of an OS or pyarrow error."""
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return " ".join(text.split())


def check_run_folder(config: Config, overwrite: bool = False) -> RunFolder:
    """Pick the run name and check that its folder may be used, without writing anything.

    Args:
        config: The validated configuration; ``run.name`` is set when it was empty.
        overwrite: Allow an existing run of the same name, which
            :func:`prepare_run_folder` then deletes. A folder that is not a run (no
            lstm-tune.yaml inside) is never allowed.

    Raises:
        ConfigError: If the name is invalid, or the folder exists and ``overwrite``
            is False or it is not a run.
    """
    name = config.run.name or default_run_name()
    folder = _open_run_folder(config.run.storage, name)
    config.run.name = name

    if folder.exists() and not overwrite:
        raise ConfigError(
            f"--name: a run named '{name}' already exists in '{folder.location}'; "
            "choose another --name, continue it with --resume, or replace it with --overwrite."
        )
    if folder.exists() and not folder.exists(CONFIG_FILE):
        raise ConfigError(
            f"--overwrite: '{folder.location}' is not a run folder (no {CONFIG_FILE} inside), "
            "so it is not deleted; choose another --name."
        )
    _check_local_storage_writable(folder)
    return folder


def _check_local_storage_writable(folder: RunFolder) -> None:
    """Reject a local run folder whose nearest existing parent is a file or is not writable."""
    path = folder.local_path()
    if path is None:
        return
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        problem = "a file" if not parent.is_dir() else "not writable"
        raise ConfigError(
            f"--storage: cannot write to '{folder.location}' because '{parent}' is {problem}; "
            "pass a folder you can write to."
        )


def prepare_run_folder(config: Config, overwrite: bool = False) -> RunFolder:
    """Check the run folder, delete the run it replaces with ``overwrite``, and store the resolved configuration.

    Raises:
        ConfigError: As :func:`check_run_folder` does, or if the storage cannot be written.
    """
    folder = check_run_folder(config, overwrite=overwrite)

    try:
        if folder.exists():
            logger.info("Deleting the existing run '%s' in %s, as --overwrite requests.", config.run.name, folder.location)
            folder.delete()
        folder.write_text(dump_yaml(config), CONFIG_FILE)
    except OSError as error:
        raise ConfigError(f"--storage: cannot write to '{folder.location}': {_reason(error)}.") from None
    return folder


def read_stored_config(folder: RunFolder, field: str) -> Config:
    """Read and validate the lstm-tune.yaml that a run stored when it started.

    Args:
        folder: The run folder.
        field: The option that named the run, for error messages (``RUN`` or ``--name``).

    Raises:
        ConfigError: If the file is missing or invalid.
    """
    if not folder.exists(CONFIG_FILE):
        raise ConfigError(
            f"{field}: '{folder.location}' is not a run folder (no {CONFIG_FILE} inside); "
            "pass STORAGE/NAME of a run made by 'lstm-tune search'."
        )
    with tempfile.TemporaryDirectory(prefix="lstm-tune-config-") as scratch:
        stored = Path(scratch) / CONFIG_FILE
        stored.write_bytes(folder.read_bytes(CONFIG_FILE))
        try:
            return build_config(file=stored)
        except ConfigError as error:
            raise ConfigError(f"{field}: the stored {CONFIG_FILE} of '{folder.location}' is invalid: {error}") from None


def has_search_state(folder: RunFolder) -> bool:
    """Return True when Ray Tune has saved the state of the folder's search at least once."""
    return any(name.startswith("experiment_state-") and name.endswith(".json") for name in folder.list_files())


def open_run_to_resume(storage: str, name: str) -> tuple[RunFolder, Config]:
    """Return the folder of an interrupted run and the configuration it started with.

    The stored configuration is used as it is, except that ``run.storage`` and
    ``run.name`` point at where the run is now, so a moved folder resumes.

    Raises:
        ConfigError: If there is no such run, it has finished, or Ray Tune never
            saved its state.

    NOTE: nothing detects a driver that is still running this search, and resuming
    it then gives two drivers that write into one folder.
    """
    folder = _open_run_folder(storage, name)
    if not folder.is_dir():
        raise ConfigError(
            f"--resume: no run named '{name}' in '{normalize_storage(storage)}'; "
            "pass the --storage and --name the run was started with."
        )
    config = read_stored_config(folder, "--name")
    if folder.exists(BEST_FILE):
        raise ConfigError(
            f"--resume: run '{name}' in '{normalize_storage(storage)}' has already finished ({BEST_FILE} exists); "
            "see it with 'lstm-tune results', or start it again with --overwrite."
        )
    if not has_search_state(folder):
        raise ConfigError(
            f"--resume: run '{name}' stopped before Ray Tune saved its search state, so there is nothing to resume; "
            "start it again with --overwrite."
        )
    config.run.storage = normalize_storage(storage)
    config.run.name = name
    return folder, config


def resume_command(config: Config, address: str | None) -> str:
    """Return the shell command that resumes this run."""
    storage = normalize_storage(config.run.storage)
    command = ["lstm-tune", "search", "--resume", "--storage", storage, "--name", config.run.name]
    if address:
        command += ["--address", address]
    return shlex.join(command)


def _interrupted(folder: RunFolder, config: Config, address: str | None) -> SearchInterruptedError:
    if has_search_state(folder):
        return SearchInterruptedError(
            f"interrupted; Ray Tune saved the search state. Resume with: {resume_command(config, address)}"
        )
    return SearchInterruptedError(
        "interrupted before Ray Tune saved any search state; start the run again with --overwrite."
    )


def run_main_job(config: Config, address: str | None, overwrite: bool = False, resume: bool = False) -> RunResult:
    """Run the search, then retrain the best trial, score it against the baselines and write the report.

    Args:
        config: The validated configuration. With ``resume``, the one the run stored.
        address: None for a local Ray, else the address of a running cluster.
        overwrite: Replace an existing run of the same name.
        resume: Continue the interrupted search in ``STORAGE/NAME`` with Ray Tune's
            restore, then retrain and report as usual.

    Raises:
        SearchInterruptedError: If the search was stopped (Ctrl-C) before every trial ended.
        SearchFailedError: If no trial ended with a finite val_mae.
    """
    from search.ray_session import check_storage_reaches_every_node, start_ray

    # The name is checked before Ray starts, so a clash is reported at once. The
    # folder is written only after the storage check, which needs Ray to count
    # the nodes, so a rejected run leaves nothing behind in its storage.
    if not resume:
        check_run_folder(config, overwrite=overwrite)
    start_ray(address, config.resources.num_cpus)
    check_storage_reaches_every_node(config.run.storage, config.run.shared_storage)

    if resume:
        folder = RunFolder(join(config.run.storage, config.run.name))
        logger.info("Resuming run '%s' in %s with its stored %s.", config.run.name, folder.location, CONFIG_FILE)
    else:
        folder = prepare_run_folder(config, overwrite=overwrite)
        logger.info("Run '%s' writes to %s.", config.run.name, folder.location)

    try:
        return _run_stages(folder, config, address, resume)
    except KeyboardInterrupt:
        raise _interrupted(folder, config, address) from None


def _run_stages(folder: RunFolder, config: Config, address: str | None, resume: bool) -> RunResult:
    from search import report
    from search.driver import run_search
    from search.retrain import load_test_set, retrain, score_baselines
    from search.searcher import optuna_space

    outcome = run_search(config, config.run.name, resume=resume)

    # Ray Tune ends the search early, keeping its state, on the first Ctrl-C.
    tables = read_trial_tables(folder, config.asha.max_t)
    unfinished = tables.trials["status"].isin(["RUNNING", "PENDING", "PAUSED"]).sum()
    if unfinished or len(tables.trials) < config.search.samples:
        raise _interrupted(folder, config, address)

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
