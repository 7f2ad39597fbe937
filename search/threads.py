"""TensorFlow thread settings that match the CPUs a process holds."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up notices; warnings and errors still show."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def configure_threads(cpus: int) -> None:
    """Give TensorFlow ``cpus`` intra-op threads and one inter-op thread.

    Without this, each of several trials on one machine starts a thread per core and
    they slow each other down. TensorFlow accepts the setting only before its
    runtime starts. A worker process that runs a second trial keeps the setting of
    its first, which had the same number of CPUs.
    """
    quiet_tensorflow()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        current = tf.config.threading.get_intra_op_parallelism_threads()
        if current != cpus:
            logger.warning(
                "TensorFlow already runs with %d intra-op threads (0 means one per core) in process %d, "
                "so the requested %d threads are ignored.",
                current,
                os.getpid(),
                cpus,
            )
