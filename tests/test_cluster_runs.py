"""Searches on real multi-node Ray clusters, all on this machine and on 127.0.0.1 only.

The clusters run in their own processes (tests/ray_cluster_process.py, or
``ray start --head --block``), so no Ray state enters the pytest process, and
every process gets RAY_AUTH_MODE and RAY_AUTH_TOKEN_PATH explicitly: otherwise
Ray's authentication mode depends on whether ~/.ray/auth_token exists.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT, run_cli

VENV_BIN = Path(sys.executable).parent
LOOPBACK_PREFIXES = ("127.", "[::ffff:127.", "[::1]")

# Searches small enough for one CPU per node, on storage declared shared: on one
# machine a local path is seen by every node.
SHARED_SEARCH = """\
data: {n_train: 256, n_val: 128, n_test: 128}
search: {samples: 4, max_failures: 2}
asha: {max_t: 2, grace_period: 1, reduction_factor: 3}
retrain: {n_train: 128, epochs: 1, patience: 1, notebook_baseline: false}
run: {shared_storage: true}
"""
# The smallest search that runs every step of the main job, for tests that check
# where it runs rather than what it finds.
TINY_SEARCH = """\
data: {n_train: 128, n_val: 64, n_test: 64}
search: {samples: 2}
asha: {max_t: 2, grace_period: 1, reduction_factor: 3}
retrain: {n_train: 64, epochs: 1, patience: 1, notebook_baseline: false}
"""
# grace_period = max_t turns ASHA's early stopping off, so every trial runs 8
# epochs and the node-removal test has time to act.
REMOVAL_SEARCH = """\
data: {n_train: 256, n_val: 128, n_test: 128}
search: {samples: 2, max_failures: 2}
asha: {max_t: 8, grace_period: 8, reduction_factor: 3}
retrain: {n_train: 128, epochs: 1, patience: 1, notebook_baseline: false}
run: {shared_storage: true}
"""


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A short folder under /tmp: Ray's socket paths inside it must stay under 108 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="lt-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ray_env(folder: Path) -> dict[str, str]:
    """Return the environment of every Ray process of a test: token auth on, temp files in ``folder``."""
    token = folder / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
    return {
        "RAY_TMPDIR": str(folder),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


class ClusterProcess:
    """tests/ray_cluster_process.py in a child process: a head node plus worker nodes, 1 CPU each."""

    def __init__(self, n_nodes: int, folder: Path) -> None:
        self._stderr = open(folder / "cluster.err", "w")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "ray_cluster_process.py"), str(n_nodes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, **ray_env(folder)},
        )
        self._folder = folder
        started = self._read(timeout_s=120)
        self.address: str = started["address"]
        self.head: str = started["head"]
        self.workers: list[str] = started["workers"]

    def _read(self, timeout_s: float) -> dict:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            errors = (self._folder / "cluster.err").read_text()[-3000:]
            raise RuntimeError(f"the cluster process sent nothing within {timeout_s} s: {errors}")
        return json.loads(line)

    def remove(self, node_id: str) -> None:
        self.process.stdin.write(f"remove {node_id}\n")
        self.process.stdin.flush()
        assert self._read(timeout_s=60) == {"removed": node_id}

    def close(self) -> None:
        try:
            self.process.stdin.write("stop\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            kill_tree(self.process.pid)
        finally:
            self._stderr.close()


def descendants(pid: int) -> list[int]:
    """Return ``pid`` and every process below it, from `ps`."""
    table = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in table.splitlines():
        child, parent = (int(field) for field in line.split())
        children.setdefault(parent, []).append(child)
    found = [pid]
    for current in found:
        found.extend(children.get(current, []))
    return found


def kill_tree(pid: int) -> None:
    """Kill ``pid`` and the processes below it, by their ids."""
    for member in reversed(descendants(pid)):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def listening_sockets(pids: list[int]) -> list[tuple[str, str]]:
    """Return (local address, process name) of every listening TCP socket of these processes, from `ss`."""
    table = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in table.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if owners & set(pids):
            names = ",".join(re.findall(r'\("([^"]+)"', line))
            found.append((line.split()[3], names))
    return found


def result_rows(run: Path) -> list[dict]:
    """Return every result that the trials of a run have written so far."""
    rows = []
    for result_file in run.glob("train_trial_*/result.json"):
        for line in result_file.read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def read_results(run: str) -> pd.DataFrame:
    """Return the results table that `lstm-tune results` prints for a run folder or URI."""
    completed = run_cli("results", run, "--format", "csv", "--sort", "trial_id")
    assert completed.returncode == 0, completed.stderr[-2000:]
    return pd.read_csv(io.StringIO(completed.stdout), keep_default_na=False)


@pytest.fixture(scope="module")
def two_node_cluster() -> Iterator[tuple[ClusterProcess, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="lt-", dir="/tmp"))
    cluster = ClusterProcess(2, folder)
    try:
        yield cluster, folder
    finally:
        cluster.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_local_storage_path_on_two_nodes_rejected(two_node_cluster) -> None:
    cluster, folder = two_node_cluster
    storage = folder / "not-shared"

    completed = run_cli(
        "search", "--preset", "smoke", "--address", cluster.address, "--storage", str(storage), "--name", "local",
        env=ray_env(folder), timeout_s=180,
    )

    assert completed.returncode == 2, completed.stderr[-2000:]
    error_lines = [line for line in completed.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1
    assert "run.storage" in error_lines[0]
    assert "2 nodes" in error_lines[0]
    assert "s3://" in error_lines[0]
    assert "run.shared_storage: true" in error_lines[0]
    assert not storage.exists(), "the rejected run wrote to its storage"
    assert "Trial" not in completed.stderr


@pytest.fixture(scope="module")
def two_node_run(two_node_cluster) -> Path:
    """Run a small search on the two-node cluster, with storage both nodes see, and return its folder."""
    cluster, folder = two_node_cluster
    config = folder / "shared.yaml"
    config.write_text(SHARED_SEARCH)

    completed = run_cli(
        "search", "--config", str(config), "--address", cluster.address, "--storage", str(folder / "runs"), "--name", "two",
        env=ray_env(folder), timeout_s=480,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    return folder / "runs" / "two"


def test_search_on_two_nodes_uses_both(two_node_cluster, two_node_run) -> None:
    cluster, folder = two_node_cluster

    trials = read_results(str(two_node_run))

    assert len(trials) == 4
    assert set(trials["status"]) == {"TERMINATED"}
    assert set(trials["node_id"]) <= {cluster.head, *cluster.workers}
    assert trials["node_id"].nunique() == 2
    # The driver sent its packages as py_modules, and the worker node unpacked them.
    shipped = list(folder.glob("node1/session_*/runtime_resources/py_modules_files/*/search/trainable.py"))
    assert shipped, "the worker node received no copy of the search package"


# file:// is how a shared file system is named; pyarrow's local:// scheme takes the
# same code path as s3:// and gs:// (pyarrow.fs.FileSystem.from_uri) without a cloud.
@pytest.mark.parametrize("scheme", ["file://", "local://"])
def test_results_read_from_storage_uri(two_node_run, scheme) -> None:
    from_path = read_results(str(two_node_run))

    from_uri = read_results(f"{scheme}{two_node_run}")

    pd.testing.assert_frame_equal(from_uri, from_path)


def test_report_rebuilt_from_storage_uri(two_node_run) -> None:
    (two_node_run / "report.md").unlink()

    completed = run_cli("report", f"local://{two_node_run}")

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "## Test MAE against baselines" in (two_node_run / "report.md").read_text()
    assert (two_node_run / "forecasts.png").is_file()


def test_removed_node_trial_resumes_elsewhere(scratch) -> None:
    config = scratch / "removal.yaml"
    config.write_text(REMOVAL_SEARCH)
    run = scratch / "runs" / "removal"
    cluster = ClusterProcess(2, scratch)
    [worker] = cluster.workers
    log = open(scratch / "search.err", "w")
    search = subprocess.Popen(
        [sys.executable, "-m", "search", "search", "--config", str(config), "--address", cluster.address,
         "--storage", str(scratch / "runs"), "--name", "removal"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **ray_env(scratch)},
    )
    try:
        # Remove the worker node once a trial on it has reported (and checkpointed) an epoch.
        deadline = time.monotonic() + 300
        moved = []
        while not moved and time.monotonic() < deadline and search.poll() is None:
            moved = [row["trial_id"] for row in result_rows(run) if row.get("node_id") == worker and row["epoch"] >= 1]
            time.sleep(0.5)
        assert moved, "no trial reported an epoch on the worker node"
        cluster.remove(worker)

        assert search.wait(timeout=480) == 0, (scratch / "search.err").read_text()[-3000:]
    finally:
        if search.poll() is None:
            kill_tree(search.pid)
        log.close()
        cluster.close()

    trials = read_results(str(run)).set_index("trial_id")
    assert len(trials) == 2
    assert set(trials["stop_reason"]) == {"completed"}
    assert set(trials["epochs"]) == {8}
    resumed = trials.loc[moved[0]]
    assert resumed["failures"] >= 1
    assert resumed["node_id"] == cluster.head
    # The restart continued from the checkpoint: no epoch ran twice on the head node.
    epochs_on_head = [row["epoch"] for row in result_rows(run) if row["trial_id"] == moved[0] and row["node_id"] == cluster.head]
    assert min(epochs_on_head) >= 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_job_submission_runs_search_and_results_read(scratch) -> None:
    env = {**os.environ, **ray_env(scratch)}
    config = scratch / "tiny.yaml"
    config.write_text(TINY_SEARCH)
    dashboard = f"http://127.0.0.1:{free_port()}"
    ports = {
        "--port": free_port(),
        "--dashboard-port": int(dashboard.rsplit(":", 1)[1]),
        "--ray-client-server-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--metrics-export-port": free_port(),
        "--runtime-env-agent-port": free_port(),
    }
    head = subprocess.Popen(
        [str(VENV_BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
         "--include-dashboard=true", "--num-cpus=2", f"--object-store-memory={80 * 1024 * 1024}",
         f"--temp-dir={scratch / 'head'}", "--disable-usage-stats", *(f"{flag}={port}" for flag, port in ports.items())],
        stdout=subprocess.DEVNULL, stderr=open(scratch / "head.err", "w"), env=env,
    )
    try:
        _wait_for_dashboard(dashboard, head)

        # The Jobs API rejects a request without the cluster's token.
        with pytest.raises(urllib.error.HTTPError) as rejected:
            urllib.request.urlopen(f"{dashboard}/api/jobs/", timeout=10)
        assert rejected.value.code == 401

        submitted = subprocess.run(
            [str(VENV_BIN / "ray"), "job", "submit", "--address", dashboard, "--working-dir", str(REPO_ROOT), "--",
             "lstm-tune", "search", "--config", str(config), "--address", "auto",
             "--storage", str(scratch / "runs"), "--name", "job"],
            capture_output=True, text=True, timeout=480, env=env, check=False,
        )
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_tree(head.pid)

    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-2000:]
    assert "succeeded" in submitted.stdout
    trials = read_results(str(scratch / "runs" / "job"))
    assert len(trials) == 2
    assert set(trials["status"]) == {"TERMINATED"}
    assert (trials["node_id"].str.len() > 0).all()
    assert (scratch / "runs" / "job" / "best.json").is_file()
    # The code came with the job's working_dir, unpacked on the node.
    shipped = list((scratch / "head").glob("session_*/runtime_resources/working_dir_files/*/search/trainable.py"))
    assert shipped, "the node received no working_dir with the search package"


def _wait_for_dashboard(url: str, head: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert head.poll() is None, "ray start --head exited early"
        try:
            urllib.request.urlopen(f"{url}/api/version", timeout=5)
            return
        except urllib.error.HTTPError:
            return  # the dashboard responds, even if only to reject the request
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"the dashboard at {url} did not answer within {timeout_s} s")


def test_local_run_listens_on_loopback_only(scratch) -> None:
    env = {**os.environ, **ray_env(scratch)}
    # The product itself must keep a local Ray on loopback, so the test leaves this unset.
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    config = scratch / "tiny.yaml"
    config.write_text(TINY_SEARCH)
    log = open(scratch / "search.err", "w")
    search = subprocess.Popen(
        [sys.executable, "-m", "search", "search", "--config", str(config), "--storage", str(scratch / "runs"),
         "--name", "local"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log, env=env,
    )
    try:
        # Trials report once their workers run, so by then every kind of Ray process is up.
        deadline = time.monotonic() + 300
        while not result_rows(scratch / "runs" / "local") and time.monotonic() < deadline and search.poll() is None:
            time.sleep(0.5)
        sockets = listening_sockets(descendants(search.pid))
        assert search.wait(timeout=480) == 0, (scratch / "search.err").read_text()[-3000:]
    finally:
        if search.poll() is None:
            kill_tree(search.pid)
        log.close()

    names = {name for _, name in sockets}
    assert "gcs_server" in names
    assert "raylet" in names
    exposed = [(address, name) for address, name in sockets if not address.startswith(LOOPBACK_PREFIXES)]
    assert exposed == []
