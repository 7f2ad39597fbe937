"""Starting a local Ray or attaching to a running cluster."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import ray

from search.config import ConfigError
from search.storage import is_uri

logger = logging.getLogger(__name__)

# Environment of every Ray worker.
WORKER_ENV = {
    # TensorFlow's C++ start-up notices would otherwise fill the terminal once per worker.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # A reused worker may start its next trial only once the stopped trial's
    # thread has finished the epoch it was in. Ray waits 2 s by default and then
    # fails the new trial, so an epoch longer than that would fail trials.
    "TUNE_FUNCTION_THREAD_TIMEOUT_S": "600",
}


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

LOOPBACK = "127.0.0.1"

# Ray 2.60 reads this variable once, at import, into ray_constants.ENABLE_RAY_CLUSTER.
# While it is true (the default on Linux), ray.init replaces a node address of
# 127.0.0.1 by the machine's routable address, and every Ray server then listens
# on all interfaces.
ENABLE_CLUSTER_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

# The packages that trials import; a driver attached to a cluster ships them to
# every node as py_modules, so workers run the driver's code.
CODE_PACKAGES = ("search", "data", "model")


def start_ray(address: str | None, num_cpus: int) -> None:
    """Start a local Ray for this program, or connect to the cluster at ``address``.

    A local Ray listens on 127.0.0.1 only. A driver attached to a cluster sends
    this program's packages to the workers unless it runs as a Ray job that already
    ships them with ``--working-dir``.

    Args:
        address: None for a local Ray; ``auto`` or ``HOST:PORT`` of a running cluster.
        num_cpus: CPUs of the local Ray; 0 takes every core. Ignored with ``address``.
    """
    if ray.is_initialized():
        return

    runtime_env: dict[str, Any] = {"env_vars": dict(WORKER_ENV)}
    if address:
        if not _job_ships_code():
            runtime_env["py_modules"] = [_package_folder(name) for name in CODE_PACKAGES]
        logger.info("Connecting to the Ray cluster at %s.", address)
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        except ConnectionError as error:
            reason = " ".join(str(error).split())
            raise ConfigError(f"--address: cannot connect to a Ray cluster at '{address}': {reason}") from None
        return

    cpus = num_cpus or os.cpu_count() or 1
    logger.info("Starting a local Ray with %d CPUs on %s.", cpus, LOOPBACK)
    # address="local" always starts a new Ray, even when a cluster started with
    # `ray start` runs on this machine; a plain ray.init() would join that one.
    with loopback_only():
        ray.init(
            address="local",
            num_cpus=cpus,
            include_dashboard=False,
            runtime_env=runtime_env,
            log_to_driver=True,
            configure_logging=True,
            logging_level=logging.WARNING,
            _node_ip_address=LOOPBACK,
        )


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Make the Ray processes started inside this block listen on 127.0.0.1 only.

    The Ray processes inherit the environment variable, and this process reads the
    constant that Ray derived from it at import. Both are restored on exit, so a
    later ``ray.init(address=...)`` of this process reports its routable address again.
    """
    from ray._private import ray_constants

    previous_variable = os.environ.get(ENABLE_CLUSTER_VARIABLE)
    previous_constant = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[ENABLE_CLUSTER_VARIABLE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous_constant
        if previous_variable is None:
            os.environ.pop(ENABLE_CLUSTER_VARIABLE, None)
        else:
            os.environ[ENABLE_CLUSTER_VARIABLE] = previous_variable


def _job_ships_code() -> bool:
    """Return True inside a Ray job whose runtime environment has a working_dir or py_modules."""
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    job_config = os.environ.get(RAY_JOB_CONFIG_JSON_ENV_VAR)
    if not job_config:
        return False
    job_runtime_env = json.loads(job_config).get("runtime_env") or {}
    return bool(job_runtime_env.get("working_dir") or job_runtime_env.get("py_modules"))


def _package_folder(name: str) -> str:
    module = __import__(name)
    return os.path.dirname(os.path.abspath(module.__file__))


def cluster_cpus() -> int:
    """Return the CPUs that the connected Ray reports, at least 1."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def alive_nodes() -> list[dict[str, Any]]:
    """Return Ray's description of every node of the connected cluster that is alive."""
    return [node for node in ray.nodes() if node.get("Alive")]


def check_storage_reaches_every_node(storage: str, shared_storage: bool) -> None:
    """Reject a plain local storage path on a cluster of more than one node.

    Every trial writes its checkpoints and results to the storage from the node it
    runs on, and a restarted trial reads its checkpoint from there, so all nodes
    must see the same storage.

    Raises:
        ConfigError: If ``storage`` is a local path, ``shared_storage`` is false and
            the connected cluster has more than one alive node.
    """
    if is_uri(storage) or shared_storage:
        return
    # NOTE: an autoscaling cluster that has only its head node now passes this
    # check, although the nodes it adds later will not see a local path.
    n_nodes = len(alive_nodes())
    if n_nodes > 1:
        raise ConfigError(
            f"run.storage: got the local path '{storage}', but this Ray cluster has {n_nodes} nodes "
            "that do not see each other's disks; use --storage s3://BUCKET/PATH or gs://BUCKET/PATH, "
            "or set run.shared_storage: true if the path is on a file system that every node mounts."
        )
