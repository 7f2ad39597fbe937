"""Starting a local Ray or attaching to a running cluster."""

from __future__ import annotations

import logging
import os

import ray

logger = logging.getLogger(__name__)

# Environment of every Ray worker: TensorFlow's C++ start-up notices would
# otherwise fill the terminal once per worker. Before Ray Tune 2.60 reuses a
# worker it waits TUNE_FUNCTION_THREAD_TIMEOUT_S (2 s by default) for the last
# trial's thread to end, and fails the next trial if it has not. A stopped
# trial's thread can need longer than 2 s on a loaded machine.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TUNE_FUNCTION_THREAD_TIMEOUT_S": "30"}


def start_ray(address: str | None, num_cpus: int) -> None:
    """Start a local Ray for this program, or connect to the cluster at ``address``.

    Args:
        address: None for a local Ray; ``auto`` or ``HOST:PORT`` of a running cluster.
        num_cpus: CPUs of the local Ray; 0 takes every core. Ignored with ``address``.
    """
    if ray.is_initialized():
        return

    runtime_env = {"env_vars": dict(WORKER_ENV)}
    if address:
        logger.info("Connecting to the Ray cluster at %s.", address)
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        return

    cpus = num_cpus or os.cpu_count() or 1
    logger.info("Starting a local Ray with %d CPUs.", cpus)
    # address="local" always starts a new Ray, even when a cluster started with
    # `ray start` runs on this machine; a plain ray.init() would join that one.
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        runtime_env=runtime_env,
        log_to_driver=True,
        configure_logging=True,
        logging_level=logging.WARNING,
    )


def cluster_cpus() -> int:
    """Return the CPUs that the connected Ray reports, at least 1."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
