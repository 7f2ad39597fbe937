"""The results table: one row per trial, read from Ray Tune's experiment folder.

Everything here comes from the JSON files Ray Tune writes as a search runs:
``experiment_state-*.json`` and each trial's ``result.json``. They are read with the
``json`` module only, so reading a run never unpickles anything. It works on a
finished run and on one still running.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from search.storage import RunFolder

logger = logging.getLogger(__name__)

# Columns of the results table, in order.
COLUMNS = [
    "trial_id",
    "status",
    "stop_reason",
    "depth",
    "units",
    "batch_size",
    "learning_rate",
    "epochs",
    "best_val_mae",
    "last_val_mae",
    "training_time_s",
    "node",
    "node_id",
    "failures",
    "error",
]
EPOCH_COLUMNS = ["trial_id", "epoch", "val_mae", "loss", "epoch_time_s"]
PARAMS = ["depth", "units", "batch_size", "learning_rate"]

TRIAL_DIR_PREFIX = "train_trial_"  # Ray names trial folders after the trainable, search.trainable.train_trial

# Stop reasons.
COMPLETED = "completed"
STOPPED_EARLY = "stopped early"
FAILED = "failed"
DIVERGED = "diverged"
RUNNING = "running"
PENDING = "pending"


@dataclass(frozen=True)
class TrialTables:
    """The results table and the per-epoch table of every trial."""

    trials: pd.DataFrame
    epochs: pd.DataFrame


def _latest_experiment_state(folder: RunFolder) -> dict[str, Any]:
    names = [name for name in folder.list_files() if name.startswith("experiment_state-") and name.endswith(".json")]
    if not names:
        return {}
    return json.loads(folder.read_text(sorted(names)[-1]))


def _trial_states(folder: RunFolder) -> dict[str, dict[str, Any]]:
    """Return Ray's status, failure count and error file of each trial, by trial id."""
    states: dict[str, dict[str, Any]] = {}
    for trial_json, runtime_json in _latest_experiment_state(folder).get("trial_data", []):
        trial = json.loads(trial_json)
        runtime = json.loads(runtime_json)
        config = trial.get("config") if isinstance(trial.get("config"), dict) else {}
        states[trial["trial_id"]] = {
            "status": trial.get("status", "UNKNOWN"),
            "failures": int(runtime.get("num_failures", 0)),
            "error_file": runtime.get("error_filename"),
            "config": config,
            "dirname": trial.get("relative_logdir"),
        }
    return states


def _trial_dirnames(folder: RunFolder, states: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Map trial ids to their folders: from Ray's state, else from names ``<trainable>_<trial_id>_<n>_...``."""
    present = set(folder.list_dirs())
    dirnames = {trial_id: state["dirname"] for trial_id, state in states.items() if state.get("dirname") in present}
    known = set(dirnames.values())
    for name in present - known:
        parts = name.split("_")
        if name.startswith(TRIAL_DIR_PREFIX) and len(parts) > 2:
            dirnames.setdefault(parts[2], name)
    return dirnames


def _read_results(folder: RunFolder, dirname: str) -> list[dict[str, Any]]:
    if "result.json" not in folder.list_files(dirname):
        return []
    rows = []
    for line in folder.read_text(dirname, "result.json").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def _read_error(folder: RunFolder, dirname: str | None) -> str:
    if not dirname or "error.txt" not in folder.list_files(dirname):
        return ""
    lines = [line.strip() for line in folder.read_text(dirname, "error.txt").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _stop_reason(status: str, last: dict[str, Any], epochs: int, max_t: int) -> str:
    if status == "ERROR":
        return FAILED
    if last.get("diverged"):
        return DIVERGED
    if status == "TERMINATED":
        return COMPLETED if epochs >= max_t else STOPPED_EARLY
    if status == "PENDING":
        return PENDING
    return RUNNING


def _finite_or_nan(value: Any) -> float:
    if value is None:
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def read_trial_tables(folder: RunFolder, max_t: int) -> TrialTables:
    """Build the results table and the per-epoch table from a run folder.

    Args:
        folder: The run's folder, Ray Tune's experiment folder.
        max_t: Epochs of a trial that ran to the end, to tell completed trials from
            those ASHA stopped early.
    """
    states = _trial_states(folder)
    dirnames = _trial_dirnames(folder, states)
    rows: list[dict[str, Any]] = []
    epoch_rows: list[dict[str, Any]] = []

    # Once Ray has saved its experiment state, that state lists the trials. A trial
    # folder outside it comes from a killed driver that started the trial after its
    # last save. A resumed search never continues such a trial.
    trial_ids = set(states) if states else set(dirnames)
    for trial_id in sorted(trial_ids):
        state = states.get(trial_id, {"status": "UNKNOWN", "failures": 0, "config": {}})
        dirname = dirnames.get(trial_id)
        results = _read_results(folder, dirname) if dirname else []

        # A trial that raised ends with a report that carries only the error, under
        # the number of its last finished epoch, so it stays out of the history.
        errors = [result["error"] for result in results if result.get("error")]
        error = errors[-1] if errors else ""

        # After a worker died, Ray repeats the epochs since the last checkpoint; the
        # latest report of each epoch is the one the trial continued from.
        by_epoch: dict[int, dict[str, Any]] = {}
        for result in results:
            if "epoch" in result and not result.get("error"):
                by_epoch[int(result["epoch"])] = result
        history = [by_epoch[epoch] for epoch in sorted(by_epoch)]
        last = history[-1] if history else {}
        config = (results[-1].get("config") if results else None) or state["config"]

        val_maes = [_finite_or_nan(result.get("val_mae")) for result in history]
        finite = [value for value in val_maes if not math.isnan(value)]
        epochs = int(last.get("epoch", 0))
        status = state["status"]
        if status == "UNKNOWN" and last.get("done"):
            status = "TERMINATED"
        if status == "ERROR" and not error:
            error = _read_error(folder, dirname)

        rows.append(
            {
                "trial_id": trial_id,
                "status": status,
                "stop_reason": FAILED if error else _stop_reason(status, last, epochs, max_t),
                **{name: config.get(name) for name in PARAMS},
                "epochs": epochs,
                "best_val_mae": min(finite) if finite else math.nan,
                "last_val_mae": val_maes[-1] if val_maes else math.nan,
                "training_time_s": float(results[-1].get("time_total_s", 0.0)) if results else 0.0,
                "node": last.get("node") or last.get("hostname") or "",
                "node_id": last.get("node_id") or "",
                "failures": int(state["failures"]),
                "error": error,
            }
        )
        for result, val_mae in zip(history, val_maes):
            epoch_rows.append(
                {
                    "trial_id": trial_id,
                    "epoch": int(result["epoch"]),
                    "val_mae": val_mae,
                    "loss": _finite_or_nan(result.get("loss")),
                    "epoch_time_s": float(result.get("epoch_time_s", math.nan)),
                }
            )

    trials = pd.DataFrame(rows, columns=COLUMNS)
    trials = trials.astype({"depth": "Int64", "units": "Int64", "batch_size": "Int64", "learning_rate": "float64"})
    return TrialTables(trials=trials, epochs=pd.DataFrame(epoch_rows, columns=EPOCH_COLUMNS))


def best_trial(trials: pd.DataFrame) -> pd.Series | None:
    """Return the row with the lowest best_val_mae among trials that neither failed nor diverged."""
    eligible = trials[~trials["stop_reason"].isin([FAILED, DIVERGED]) & trials["best_val_mae"].notna()]
    if eligible.empty:
        return None
    return eligible.sort_values(["best_val_mae", "trial_id"]).iloc[0]
