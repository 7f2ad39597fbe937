"""How trials end badly on a real local Ray: a trial that raises, a worker that dies, a model that diverges."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import optuna
import pandas as pd
import pytest

from search.config import build_config
from search.driver import run_search
from search.pipeline import prepare_run_folder
from search.storage import RunFolder
from search.trial_table import best_trial, read_trial_tables
from tests.conftest import TINY_CONFIG, ray_processes_of, run_cli, start_cli, wait_for, write_config


def _results(run_folder: Path, trial_id: str) -> list[dict]:
    [folder] = run_folder.glob(f"train_trial_{trial_id}_*")
    return [json.loads(line) for line in (folder / "result.json").read_text().splitlines() if line.strip()]


def test_trial_that_raises_is_failed_and_not_retried(local_ray, tmp_path) -> None:
    config = build_config(
        file=write_config(tmp_path, TINY_CONFIG),
        overrides={"search.samples": 4, "search.seed": 0, "run.storage": str(tmp_path / "storage"), "run.name": "raises"},
    )
    # Validation rejects depth 0, so it is set afterwards: build_stacked_lstm raises
    # ValueError for it inside the trial, the way a bug in a trial would.
    config.space.depth = [0, 1]
    assert config.search.max_failures == 2
    folder = prepare_run_folder(config)

    outcome = run_search(config, "raises")

    trials = read_trial_tables(folder, config.asha.max_t).trials
    assert len(trials) == 4
    failed = trials[trials["depth"] == 0]
    trained = trials[trials["depth"] == 1]
    assert len(failed) >= 1, "seed 0 should sample depth 0 at least once"
    assert len(trained) >= 1, "seed 0 should sample depth 1 at least once"

    assert (failed["stop_reason"] == "failed").all()
    assert failed["error"].str.contains("ValueError: depth must be a positive integer, got 0").all()
    assert (failed["failures"] == 0).all()
    assert (failed["epochs"] == 0).all()
    for trial_id in failed["trial_id"]:
        assert len(_results(Path(folder.location), trial_id)) == 1, f"trial {trial_id} ran more than once"
        assert outcome.searcher.optuna_state(trial_id) == optuna.trial.TrialState.FAIL

    assert (trained["stop_reason"].isin(["completed", "stopped early"])).all()
    assert (trained["error"] == "").all()
    for trial_id in trained["trial_id"]:
        assert outcome.searcher.optuna_state(trial_id) != optuna.trial.TrialState.FAIL
    assert best_trial(trials)["trial_id"] in set(trained["trial_id"])


def test_killed_worker_restarts_from_its_checkpoint(tmp_path) -> None:
    max_t = 10
    config = write_config(
        tmp_path,
        f"""\
data: {{n_train: 512, n_val: 64, n_test: 64}}
space: {{depth: [1, 1], units: [8, 8], batch_size: [8, 8], learning_rate: [1.0e-3, 3.0e-3]}}
search: {{samples: 2, max_failures: 2}}
asha: {{max_t: {max_t}, grace_period: {max_t}, reduction_factor: 3}}
retrain: {{n_train: 128, epochs: 1, patience: 1, notebook_baseline: false}}
resources: {{num_cpus: 2}}
""",
    )
    storage = tmp_path / "storage"
    run_folder = storage / "worker-killed"

    def running_trial() -> tuple[str, int] | None:
        """Return the id and worker PID of a trial that has reported 2 epochs and has more to go."""
        for path in run_folder.glob("train_trial_*/result.json"):
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if rows and 2 <= rows[-1]["epoch"] <= max_t - 4:
                return rows[-1]["trial_id"], rows[-1]["pid"]
        return None

    driver = start_cli("search", "--config", str(config), "--storage", str(storage), "--name", "worker-killed")
    try:
        trial_id, worker_pid = wait_for(running_trial, timeout_s=240, description="a trial has reported 2 epochs", process=driver)
        assert worker_pid in ray_processes_of(driver.pid), "the PID in result.json is not a process of this search"
        os.kill(worker_pid, signal.SIGKILL)
        _, stderr = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()

    assert driver.returncode == 0, stderr[-3000:]
    trials = pd.read_csv(run_folder / "results.csv", keep_default_na=False, dtype={"trial_id": str}).set_index("trial_id")
    assert len(trials) == 2
    assert trials.loc[trial_id, "failures"] >= 1
    assert trials.loc[trial_id, "stop_reason"] == "completed"
    assert trials.loc[trial_id, "epochs"] == max_t

    rows = _results(run_folder, trial_id)
    epochs = [row["epoch"] for row in rows]
    assert epochs.count(1) == 1, f"the trial started again from epoch 1: {epochs}"
    restarted = next(index for index, row in enumerate(rows) if row["pid"] != worker_pid)
    assert epochs[restarted] > 2, f"the restart did not continue from the checkpoint: {epochs}"
    assert sorted(set(epochs)) == list(range(1, max_t + 1))


def test_diverging_learning_rate_is_recorded_and_never_best(tmp_path) -> None:
    # Adam with MAE loss stays finite on this data up to a learning rate of about
    # 1e36; from about 1e37 the first update overflows float32. With seed 4, TPE's
    # random start samples 1e42 (diverges), 2e-3 and 3e9 (finite, but far off).
    config = write_config(tmp_path, TINY_CONFIG + "space: {learning_rate: [1.0e-3, 1.0e+60]}\n")
    storage = tmp_path / "storage"
    run_folder = storage / "diverges"

    completed = run_cli("search", "--config", str(config), "--samples", "3", "--seed", "4", "--storage", str(storage), "--name", "diverges")

    assert completed.returncode == 0, completed.stderr[-3000:]
    trials = pd.read_csv(run_folder / "results.csv", dtype={"trial_id": str})
    diverged = trials[trials["stop_reason"] == "diverged"]
    finite = trials[trials["stop_reason"].isin(["completed", "stopped early"])]
    assert len(diverged) >= 1
    assert len(finite) >= 1
    assert (diverged["learning_rate"] > 1e36).all()
    assert diverged["best_val_mae"].isna().all()
    # A diverged trial stops after the epoch whose loss stopped being finite.
    assert (diverged["epochs"] == 1).all()

    best = json.loads((run_folder / "best.json").read_text())
    assert best["trial_id"] not in set(diverged["trial_id"])
    assert best["val_mae"] == pytest.approx(finite["best_val_mae"].min())
    assert math.isfinite(best["val_mae"])
    assert math.isfinite(best["test_mae"])
    report = (run_folder / "report.md").read_text()
    assert f"- Diverged (NaN or infinite loss): {len(diverged)}" in report
