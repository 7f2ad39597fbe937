"""Starting a local Ray or attaching to a running cluster."""

from __future__ import annotations

import logging
import os
import socket

import ray

from search.config import ConfigError

logger = logging.getLogger(__name__)

# Environment of every Ray worker. TF_CPP_MIN_LOG_LEVEL hides TensorFlow's C++
# start-up notices, which would otherwise fill the terminal once per worker.
# TUNE_FUNCTION_THREAD_TIMEOUT_S is how long a reused worker waits for the training
# thread of the trial ASHA stopped to exit. Ray Tune 2.60 waits 2 s by default, and
# on a busy machine a longer wait made it fail the next trial with "Trainable runner
# reuse requires reset_config() to be implemented and return True", without a
# retry. 60 s is an estimate that leaves a wide margin over the default.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TUNE_FUNCTION_THREAD_TIMEOUT_S": "60"}


# Seconds to wait for a TCP connection to a cluster's address. ray.init itself
# retries an address that accepts no connection for minutes before it gives up.
ADDRESS_TIMEOUT_S = 10


def check_address(address: str) -> None:
    """Check that ``auto`` or ``[ray://]HOST:PORT`` was given and that HOST:PORT accepts connections.

    The check opens and closes one TCP connection, so a wrong address fails within
    ``ADDRESS_TIMEOUT_S`` seconds. ``auto`` is left to ``ray.init``, which fails at
    once when no cluster runs on this machine.

    NOTE: a port that accepts connections but is not a Ray cluster's GCS passes
    this check, and ``ray.init`` then retries it for minutes.

    Raises:
        ConfigError: If the address is malformed or accepts no connection.
    """
    if address == "auto":
        return
    host, separator, port_text = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")  # an IPv6 host is written [::1]:6379
    if not separator or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"--address: got '{address}', expected 'auto' or HOST:PORT of a Ray cluster, such as 10.0.0.5:6379.")

    try:
        with socket.create_connection((host, int(port_text)), timeout=ADDRESS_TIMEOUT_S):
            pass
    except TimeoutError:
        raise ConfigError(
            f"--address: connection to '{address}' timed out after {ADDRESS_TIMEOUT_S} s; check that the Ray cluster runs "
            "and that its port is reachable, or leave out --address to start a local Ray."
        ) from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(
            f"--address: cannot connect to '{address}': {reason}; check that the Ray cluster runs there, "
            "or leave out --address to start a local Ray."
        ) from None


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
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        except ConnectionError as error:
            reason = " ".join(str(error).split())
            raise ConfigError(f"--address: cannot connect to a Ray cluster at '{address}': {reason}") from None
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
