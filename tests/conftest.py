"""Shared fixtures: a real local Ray for in-process tests and a helper to run the command line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# TensorFlow's C++ notices would fill the captured output of every test.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Sections of a config file for searches that only test how trials start and end:
# small data, three epochs and a one-epoch retrain.
TINY_CONFIG = """\
data: {n_train: 128, n_val: 64, n_test: 64}
asha: {max_t: 3, grace_period: 1, reduction_factor: 3}
retrain: {n_train: 128, epochs: 1, patience: 1, notebook_baseline: false}
resources: {num_cpus: 2}
"""


def write_config(folder: Path, text: str) -> Path:
    """Write a config file into ``folder`` and return its path."""
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def run_cli(*args: str, timeout_s: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m search ARGS`` in a fresh process, as a user would, and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "search", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def start_cli(*args: str, new_session: bool = False) -> subprocess.Popen:
    """Start ``python -m search ARGS`` in the background, with its output in pipes.

    With ``new_session``, the command and the Ray it starts get their own process
    group, which a test can signal as a terminal's Ctrl-C does.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "search", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        start_new_session=new_session,
    )


def trial_statuses(run_folder: Path) -> dict[str, str]:
    """Return Ray Tune's status of each trial from the run's latest experiment state, by trial id."""
    names = sorted(run_folder.glob("experiment_state-*.json"))
    if not names:
        return {}
    try:
        state = json.loads(names[-1].read_text())
    except (json.JSONDecodeError, OSError):
        return {}  # Ray is copying the file right now; the caller polls again
    trials = (json.loads(trial_json) for trial_json, _ in state.get("trial_data", []))
    return {trial["trial_id"]: trial["status"] for trial in trials}


def wait_for(condition, timeout_s: float, description: str, process: subprocess.Popen | None = None):
    """Poll ``condition`` every 0.2 s until it returns a true value, and return that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"the search exited with {process.returncode} before {description}: {process.stderr.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout_s} s waiting until {description}")


def _start_time(pid: int) -> int | None:
    """Return the start time of a process in clock ticks after boot, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def _uses_session(pid: int, pattern: re.Pattern) -> bool:
    try:
        if pattern.search(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")):
            return True
        return any(pattern.search(os.readlink(link)) for link in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def ray_processes_of(driver_pid: int) -> dict[int, int]:
    """Find the processes of the local Ray that a driver started: its descendants and its session's processes.

    Ray names its session folder ``session_<date>_<time>_<micros>_<driver pid>``.
    Some Ray processes outlive a killed driver with init as their parent, and they
    are found by a command line or an open file inside that folder. Only processes
    started after the driver count, so an older process that reuses a PID is left alone.

    Returns:
        The start time of each process by PID, to check a PID still names it before a kill.
    """
    driver_start = _start_time(driver_pid) or 0
    session = re.compile(rf"/session_[0-9_-]+_{driver_pid}(/|$)")
    found: dict[int, int] = {}
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    parents = {pid: _parent(pid) for pid in pids}

    for pid in pids:
        started = _start_time(pid)
        if started is None or started < driver_start or pid == driver_pid:
            continue
        ancestor = parents.get(pid)
        while ancestor not in (None, 0, 1, driver_pid):
            ancestor = parents.get(ancestor)
        if ancestor == driver_pid or _uses_session(pid, session):
            found[pid] = started
    return found


def stop_processes(processes: dict[int, int], timeout_s: float = 20) -> None:
    """Kill each process by PID with SIGKILL, if the PID still names it, and wait until all are gone."""
    for pid, started in processes.items():
        if _start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(_start_time(pid) != started or _is_zombie(pid) for pid, started in processes.items()):
            return
        time.sleep(0.2)
    raise AssertionError(f"processes still alive after SIGKILL: {sorted(processes)}")


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def local_ray():
    """Start a small local Ray with no dashboard and shut it down after the test."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
