"""Bad input to the command line: one line on stderr, exit status 2, no traceback and no run touched.

Each case runs the real command in a fresh process. The storage folder contains a run
named ``existing``. Every file in the storage folder must be byte-identical after each
case, and no case may start Ray or create a file.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from search.config import build_config, dump_yaml
from tests.conftest import run_cli

# Each case: the command-line arguments and a text that the error line must contain.
# Arguments may use {storage} (a folder holding the run 'existing'), {files} (a
# folder with bad config files) and {port} (a loopback port where nothing listens).
CASES = {
    # config file
    "config missing": (["search", "--config", "{files}/absent.yaml"], "--config: file '"),
    "config is a folder": (["search", "--config", "{files}"], "is a folder, not a YAML config file"),
    "config not UTF-8": (["search", "--config", "{files}/binary.yaml"], "--config: cannot read"),
    "config not YAML": (["search", "--config", "{files}/broken.yaml"], "is not valid YAML at line"),
    "config not a mapping": (["search", "--config", "{files}/list.yaml"], "contains a list, expected a mapping"),
    "unknown section": (["search", "--config", "{files}/typo_section.yaml"], "dta: unknown key. Did you mean 'data'?"),
    "unknown key": (["search", "--config", "{files}/typo_key.yaml"], "data.lenght: unknown key. Did you mean 'data.length'?"),
    "wrong type": (["search", "--config", "{files}/wrong_type.yaml"], "data.n_train: got 'ten', expected an integer"),
    "section not a mapping": (["search", "--config", "{files}/section_scalar.yaml"], "asha: got 5, expected a mapping"),
    "range not a list": (["search", "--config", "{files}/range_scalar.yaml"], "space.units: got 64, expected a list"),
    # values out of range
    "depth 0": (["search", "--config", "{files}/depth_zero.yaml"], "space.depth: got low bound 0, must be >= 1"),
    "learning rate 0": (["search", "--config", "{files}/lr_zero.yaml"], "space.learning_rate: got low bound 0"),
    "learning rate negative": (["search", "--config", "{files}/lr_negative.yaml"], "space.learning_rate: got low bound -0.001"),
    "log-uniform bound 0": (["search", "--config", "{files}/batch_zero.yaml"], "space.batch_size: got low bound 0"),
    "low above high": (["search", "--config", "{files}/units_swapped.yaml"], "space.units: got [64, 8], but low must not exceed high"),
    "horizon 0": (["search", "--config", "{files}/horizon_zero.yaml"], "data.horizon: got 0, must be an integer >= 1"),
    "length 0": (["search", "--config", "{files}/length_zero.yaml"], "data.length: got 0, must be an integer >= 1"),
    "max_concurrent_trials negative": (
        ["search", "--config", "{files}/concurrent_negative.yaml"],
        "search.max_concurrent_trials: got -1, must be an integer >= 0",
    ),
    "grace_period above max_t": (["search", "--config", "{files}/grace_above_max_t.yaml"], "asha.grace_period: got 5"),
    # command-line options
    "samples 0": (["search", "--samples", "0"], "--samples: got 0, expected a whole number >= 1"),
    "samples negative": (["search", "--samples=-3"], "--samples: got -3, expected a whole number >= 1"),
    "samples not a number": (["search", "--samples", "many"], "--samples: got 'many', expected a whole number"),
    "unknown preset": (["search", "--preset", "huge"], "--preset: invalid choice: 'huge'"),
    "name with dot-dot": (["search", "--storage", "{storage}", "--name", ".."], "--name: got '..'"),
    "name with separator": (["search", "--storage", "{storage}", "--name", "a/b"], "--name: got 'a/b'"),
    "name that exists": (["search", "--storage", "{storage}", "--name", "existing"], "a run named 'existing' already exists"),
    "storage under a file": (["search", "--storage", "{files}/list.yaml/runs", "--name", "new"], "--storage: cannot write to"),
    "storage under a read-only folder": (["search", "--storage", "{files}/read-only/runs", "--name", "new"], "--storage: cannot write to"),
    "address nothing listens": (
        ["search", "--storage", "{storage}", "--name", "new", "--address", "127.0.0.1:{port}"],
        "--address: cannot connect to '127.0.0.1:{port}'",
    ),
    "address malformed": (["search", "--address", "head-node"], "--address: got 'head-node', expected 'auto' or HOST:PORT"),
    "overwrite a folder that is no run": (
        ["search", "--storage", "{storage}", "--name", "not-a-run", "--overwrite"],
        "is not a run folder (no lstm-tune.yaml inside), so it is not deleted",
    ),
    # --resume
    "resume a run that does not exist": (
        ["search", "--resume", "--storage", "{storage}", "--name", "absent"],
        "--resume: no run named 'absent'",
    ),
    "resume without a name": (["search", "--resume", "--storage", "{storage}"], "--resume: needs --name"),
    "resume with a config file": (
        ["search", "--resume", "--storage", "{storage}", "--name", "existing", "--config", "{files}/list.yaml"],
        "--config: cannot be combined with --resume",
    ),
    "resume with overwrite": (
        ["search", "--resume", "--storage", "{storage}", "--name", "existing", "--overwrite"],
        "--overwrite: cannot be combined with --resume",
    ),
    "resume a run without search state": (
        ["search", "--resume", "--storage", "{storage}", "--name", "existing"],
        "stopped before Ray Tune saved its search state",
    ),
    # results and report
    "results of a missing folder": (["results", "{storage}/absent"], "RUN: '"),
    "results of a folder that is no run": (["results", "{storage}/not-a-run"], "is not a run folder"),
    "results sorted by an unknown column": (["results", "{storage}/existing", "--sort", "speed"], "--sort: got 'speed'"),
    "results top 0": (["results", "{storage}/existing", "--top", "0"], "--top: got 0"),
    "report of a missing folder": (["report", "{storage}/absent"], "is not a folder"),
    "report of a run without best.json": (["report", "{storage}/existing"], "has no best.json"),
}

BAD_FILES = {
    "binary.yaml": b"\xff\xfe\x00bad",
    "broken.yaml": b"data: [1, 2\n",
    "list.yaml": b"- 1\n- 2\n",
    "typo_section.yaml": b"dta:\n  length: 3\n",
    "typo_key.yaml": b"data:\n  lenght: 3\n",
    "wrong_type.yaml": b"data:\n  n_train: ten\n",
    "section_scalar.yaml": b"asha: 5\n",
    "range_scalar.yaml": b"space:\n  units: 64\n",
    "depth_zero.yaml": b"space:\n  depth: [0, 3]\n",
    "lr_zero.yaml": b"space:\n  learning_rate: [0, 0.1]\n",
    "lr_negative.yaml": b"space:\n  learning_rate: [-1.0e-3, 1.0e-2]\n",
    "batch_zero.yaml": b"space:\n  batch_size: [0, 8]\n",
    "units_swapped.yaml": b"space:\n  units: [64, 8]\n",
    "horizon_zero.yaml": b"data:\n  horizon: 0\n",
    "length_zero.yaml": b"data:\n  length: 0\n",
    "concurrent_negative.yaml": b"search:\n  max_concurrent_trials: -1\n",
    "grace_above_max_t.yaml": b"asha:\n  max_t: 4\n  grace_period: 5\n",
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Make the storage folder with the run 'existing', the bad config files and a port where nothing listens."""
    storage = tmp_path_factory.mktemp("storage")
    run = storage / "existing"
    run.mkdir()
    (run / "lstm-tune.yaml").write_text(dump_yaml(build_config(preset="smoke", overrides={"run.name": "existing"})))
    (run / "results.csv").write_text("trial_id,status\nabc,TERMINATED\n")
    (storage / "not-a-run").mkdir()
    (storage / "not-a-run" / "notes.txt").write_text("not a run\n")

    files = tmp_path_factory.mktemp("files")
    for name, content in BAD_FILES.items():
        (files / name).write_bytes(content)
    (files / "read-only").mkdir(mode=0o555)

    # A bound socket that never listens: a connection to its port is refused,
    # and no other program can take the port while the tests run.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        yield {"storage": storage, "files": files, "port": closed_port.getsockname()[1]}


def _snapshot(folder: Path) -> dict[str, str]:
    """Return the SHA-256 of every file under ``folder``, and every folder, by relative path."""
    snapshot = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        snapshot[relative] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
    return snapshot


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_exit_2(inputs, case) -> None:
    args, expected = CASES[case]
    if case == "storage under a read-only folder" and os.geteuid() == 0:
        pytest.skip("root writes into a folder with mode 0555")
    args = [arg.format(**inputs) for arg in args]
    expected = expected.format(**inputs)
    before = _snapshot(inputs["storage"])

    completed = run_cli(*args, timeout_s=60)

    lines = completed.stderr.splitlines()
    assert completed.returncode == 2, completed.stderr
    assert len(lines) == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert expected in lines[0]
    assert lines[0].startswith("lstm-tune")
    assert completed.stdout == ""
    assert _snapshot(inputs["storage"]) == before
