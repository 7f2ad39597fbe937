"""Shared fixtures: a real local Ray for in-process tests and a helper to run the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# TensorFlow's C++ notices would fill the captured output of every test.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


@pytest.fixture
def local_ray():
    """Start a small local Ray with no dashboard and shut it down after the test."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
