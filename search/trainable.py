"""The Ray Tune trial: build data and a model from the sampled config, train, report every epoch."""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import socket
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from search.threads import configure_threads

logger = logging.getLogger(__name__)

METRIC = "val_mae"
MODE = "min"
TIME_ATTR = "epoch"

_MODEL_FILE = "model.keras"
_STATE_FILE = "state.json"

# Streams of numpy's seed sequence, so that the sets drawn from one seed are independent.
TRAIN_STREAM = 1
VAL_STREAM = 2
RETRAIN_STREAM = 3

# Trials this worker process has started; with reuse_actors a process runs several.
_trials_in_process = 0


@dataclass(frozen=True)
class TrialSettings:
    """Settings shared by every trial: data sizes and seeds, the epoch limit and its CPUs."""

    length: int
    horizon: int
    n_train: int
    n_val: int
    data_seed: int
    search_seed: int
    max_t: int
    cpus_per_trial: int


def trial_seed(search_seed: int, config: dict[str, Any]) -> int:
    """Return a weight-initialisation seed derived from the search seed and the sampled configuration.

    The trial id would not do, because Ray draws it at random in every run. With this
    seed the same configuration starts from the same weights in every search with
    the same search seed. Configurations that differ in any parameter get different
    seeds, except for the rare collisions of a 31-bit hash.
    """
    params = ",".join(f"{name}={config[name]!r}" for name in sorted(config))
    return zlib.crc32(f"{search_seed}:{params}".encode()) & 0x7FFFFFFF


def train_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Train one sampled configuration for up to ``max_t`` epochs, reporting after each.

    Each report carries ``val_mae`` for ASHA and Optuna and a checkpoint of the model
    with its optimizer state, so a trial whose worker died restarts from its last
    epoch. A trial whose loss or validation MAE stops being finite reports
    ``diverged`` and ends.

    Every report also carries the seconds this trial spent on imports, data and
    model building before training (``setup_*_s``), the worker's process id, trial
    count and CPU time, which the benchmarks read.

    An exception raised while training ends the trial with a last report whose
    ``error`` field contains the message, so the trial is recorded as failed. Ray Tune
    retries every trial that raises, up to ``FailureConfig.max_failures`` times, but
    a configuration that raised once raises again, so only a dead worker is retried.
    """
    progress = _TrialProgress()
    try:
        _train(config, settings, progress)
    except Exception as error:  # noqa: BLE001 - any error of the trial ends it as failed
        message = " ".join(f"{type(error).__name__}: {error}".split())
        logger.exception("Trial %s raised and is recorded as failed, without a retry.", progress.trial_id)
        tune.report(
            {
                TIME_ATTR: progress.epoch,
                METRIC: math.nan,
                "best_val_mae": progress.best_val_mae,
                "diverged": False,
                "error": message,
                "node": socket.gethostname(),
            }
        )


@dataclass
class _TrialProgress:
    """How far a trial got, for the report of an error."""

    trial_id: str = ""
    epoch: int = 0
    best_val_mae: float = math.inf


def _train(config: dict[str, Any], settings: TrialSettings, progress: _TrialProgress) -> None:
    global _trials_in_process
    _trials_in_process += 1
    started = time.perf_counter()
    configure_threads(settings.cpus_per_trial)
    import keras

    # A reused worker traces a new model for each trial, which TensorFlow reports
    # as excessive retracing although each trial traces only once.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    from data import generate_examples
    from model import build_stacked_lstm, fit_epochs, load_model, save_model

    # Frozen, the objects that the imports created are skipped by later garbage collections,
    # so the one inside clear_session takes about 0.02 s instead of 0.2 s.
    if _trials_in_process == 1:
        gc.freeze()

    # Keras keeps layer-name counters and graphs per process; a reused worker
    # starts each trial clean so memory does not grow from trial to trial.
    keras.backend.clear_session()
    imported = time.perf_counter()
    cpu_after_import = time.process_time()

    context = tune.get_context()
    trial_id = context.get_trial_id()
    progress.trial_id = trial_id
    node = socket.gethostname()
    # Several Ray nodes can share one host name, but never a node id.
    node_id = ray.get_runtime_context().get_node_id()

    train = generate_examples(settings.n_train, settings.length, settings.horizon, seed=[settings.data_seed, TRAIN_STREAM])
    val = generate_examples(settings.n_val, settings.length, settings.horizon, seed=[settings.data_seed, VAL_STREAM])
    generated = time.perf_counter()

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            model = load_model(Path(folder) / _MODEL_FILE)
            state = json.loads((Path(folder) / _STATE_FILE).read_text())
        initial_epoch = int(state["epoch"])
        best_val_mae = float(state["best_val_mae"])
    else:
        keras.utils.set_random_seed(trial_seed(settings.search_seed, config))
        model = build_stacked_lstm(
            depth=int(config["depth"]),
            units=int(config["units"]),
            length=settings.length,
            horizon=settings.horizon,
            learning_rate=float(config["learning_rate"]),
        )
        initial_epoch = 0
        best_val_mae = math.inf
    progress.epoch, progress.best_val_mae = initial_epoch, best_val_mae

    setup = {
        "setup_import_s": imported - started,
        "setup_data_s": generated - imported,
        "setup_build_s": time.perf_counter() - generated,
        "worker_pid": os.getpid(),
        "worker_trial": _trials_in_process,
        "process_cpu_after_import_s": cpu_after_import,
    }

    def report_epoch(trained: keras.Model, result: Any) -> bool:
        nonlocal best_val_mae
        diverged = not result.is_finite
        if not diverged:
            best_val_mae = min(best_val_mae, result.val_mae)

        metrics = {
            TIME_ATTR: result.epoch,
            METRIC: result.val_mae if not diverged else math.nan,
            "loss": result.loss,
            "best_val_mae": best_val_mae,
            "epoch_time_s": result.epoch_time_s,
            "diverged": diverged,
            "node": node,
            "node_id": node_id,
            "process_cpu_s": time.process_time(),
            **setup,
        }

        # A diverged model is not worth resuming, so its last report carries no checkpoint.
        if diverged:
            tune.report(metrics)
            progress.epoch = result.epoch
            return True

        with tempfile.TemporaryDirectory(prefix="lstm-tune-checkpoint-") as folder:
            save_model(trained, Path(folder) / _MODEL_FILE)
            state = {"epoch": result.epoch, "best_val_mae": best_val_mae}
            (Path(folder) / _STATE_FILE).write_text(json.dumps(state))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        progress.epoch, progress.best_val_mae = result.epoch, best_val_mae
        return False

    fit_epochs(
        model,
        train.X,
        train.y,
        val.X,
        val.y,
        epochs=settings.max_t,
        batch_size=int(config["batch_size"]),
        initial_epoch=initial_epoch,
        on_epoch_end=report_epoch,
    )
