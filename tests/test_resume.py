"""Resume: a search whose driver was killed continues with Ray Tune's restore and ends with every trial once."""

from __future__ import annotations

import os
import re
import shutil
import signal

import pandas as pd

from search.storage import RunFolder
from search.trial_table import read_trial_tables
from tests.conftest import (
    TINY_CONFIG,
    ray_processes_of,
    run_cli,
    start_cli,
    stop_processes,
    trial_statuses,
    wait_for,
    write_config,
)

SAMPLES = 6
MAX_T = 4  # asha.max_t of the smoke preset


def _trial_folders(run_folder) -> dict[str, object]:
    """Return each trial's folder by trial id; Ray names them train_trial_<id>_<index>_<params>_<date>."""
    return {path.name.split("_")[2]: path for path in run_folder.glob("train_trial_*") if path.is_dir()}


def test_resume_after_driver_killed_runs_each_trial_once(tmp_path) -> None:
    storage = tmp_path / "storage"
    run_folder = storage / "killed"
    driver = start_cli("search", "--preset", "smoke", "--samples", str(SAMPLES), "--storage", str(storage), "--name", "killed")
    try:
        wait_for(
            lambda: sum(status == "TERMINATED" for status in trial_statuses(run_folder).values()) >= 2,
            timeout_s=240,
            description="two trials have finished",
            process=driver,
        )
        ray_processes = ray_processes_of(driver.pid)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        driver.stdout.close()
        driver.stderr.close()
    # The raylet's agents outlive the driver; the workers they leave would write into the run.
    stop_processes({**ray_processes, **ray_processes_of(driver.pid)})

    statuses = trial_statuses(run_folder)
    finished = sorted(trial_id for trial_id, status in statuses.items() if status == "TERMINATED")
    assert 2 <= len(finished) < SAMPLES, f"the kill came too late to test a resume: {statuses}"
    before_results = {trial_id: (_trial_folders(run_folder)[trial_id] / "result.json").read_bytes() for trial_id in finished}
    snapshot = tmp_path / "snapshot"
    shutil.copytree(run_folder, snapshot)
    before_rows = read_trial_tables(RunFolder(str(snapshot)), MAX_T).trials.set_index("trial_id").loc[finished]

    completed = run_cli("search", "--resume", "--storage", str(storage), "--name", "killed")

    assert completed.returncode == 0, completed.stderr[-3000:]
    trials = pd.read_csv(run_folder / "results.csv", keep_default_na=False, dtype={"trial_id": str})
    assert len(trials) == SAMPLES
    assert trials["trial_id"].is_unique
    assert set(finished) <= set(trials["trial_id"])
    assert (trials["status"] == "TERMINATED").all()
    # Ray numbers trials in the order the searcher made them; a resumed search goes on counting.
    folders = _trial_folders(run_folder)
    indices = sorted(int(re.match(r"train_trial_\w+?_(\d+)_", folders[trial_id].name).group(1)) for trial_id in trials["trial_id"])
    assert indices == list(range(1, SAMPLES + 1))

    for trial_id in finished:
        assert (folders[trial_id] / "result.json").read_bytes() == before_results[trial_id], f"trial {trial_id} ran again"
    after_rows = read_trial_tables(RunFolder(str(run_folder)), MAX_T).trials.set_index("trial_id").loc[finished]
    pd.testing.assert_frame_equal(after_rows, before_rows)
    assert (run_folder / "best.json").is_file()
    assert (run_folder / "report.md").is_file()


def test_ctrl_c_saves_state_and_prints_resume_command(tmp_path) -> None:
    config = write_config(tmp_path, TINY_CONFIG)
    storage = tmp_path / "storage"
    run_folder = storage / "interrupted"
    driver = start_cli("search", "--config", str(config), "--samples", "6", "--storage", str(storage), "--name", "interrupted", new_session=True)
    try:
        wait_for(
            lambda: "TERMINATED" in trial_statuses(run_folder).values(),
            timeout_s=240,
            description="a trial has finished",
            process=driver,
        )
        ray_processes = ray_processes_of(driver.pid)
        # A terminal sends Ctrl-C's SIGINT to every process of the foreground group.
        os.killpg(driver.pid, signal.SIGINT)
        _, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    stop_processes({**ray_processes, **ray_processes_of(driver.pid)})

    assert driver.returncode == 130, stderr[-3000:]
    expected = f"lstm-tune search --resume --storage {storage} --name interrupted"
    assert stderr.splitlines()[-1] == f"lstm-tune search: interrupted; Ray Tune saved the search state. Resume with: {expected}"
    statuses = trial_statuses(run_folder)
    assert "TERMINATED" in statuses.values()
    assert len(statuses) < 6 or set(statuses.values()) != {"TERMINATED"}, "the search ended before the interrupt"
    assert not (run_folder / "best.json").exists()
