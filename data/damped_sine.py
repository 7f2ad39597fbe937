"""Damped sine waves in [0, 1] cut into forecasting examples.

The value of a series at step ``i`` is::

    0.5 + 0.5 * sin(2 * pi * i / period) * exp(-decay * i)

with ``period`` an integer drawn uniformly from 10 to 20 inclusive and ``decay``
drawn uniformly from [0.01, 0.1]. An example is ``length`` input steps followed by
``horizon`` target steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERIOD_MIN = 10
PERIOD_MAX = 20  # inclusive
DECAY_MIN = 0.01
DECAY_MAX = 0.1


@dataclass(frozen=True)
class DampedSineSet:
    """A set of forecasting examples and the parameters of the series they were cut from.

    Attributes:
        X: Inputs, float32 of shape ``(n, length, 1)``.
        y: Targets, float32 of shape ``(n, horizon)``.
        period: Period of each series in steps, shape ``(n,)``.
        decay: Decay rate of each series per step, shape ``(n,)``.
    """

    X: np.ndarray
    y: np.ndarray
    period: np.ndarray
    decay: np.ndarray

    def __len__(self) -> int:
        return len(self.X)


def damped_sine(steps: np.ndarray, period: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """Evaluate the damped sine at ``steps`` for each (period, decay) pair.

    Args:
        steps: Step indices, shape ``(t,)``.
        period: Periods, shape ``(n,)``.
        decay: Decay rates, shape ``(n,)``.

    Returns:
        float64 array of shape ``(n, t)``.
    """
    steps = np.asarray(steps, dtype=np.float64)[None, :]
    period = np.asarray(period, dtype=np.float64)[:, None]
    decay = np.asarray(decay, dtype=np.float64)[:, None]
    return 0.5 + 0.5 * np.sin(2.0 * np.pi * steps / period) * np.exp(-decay * steps)


def generate_examples(
    n: int, length: int = 50, horizon: int = 5, seed: int | Sequence[int] = 0
) -> DampedSineSet:
    """Draw ``n`` damped sine series and split each into ``length`` inputs and ``horizon`` targets.

    The same ``(n, length, horizon, seed)`` always gives the same arrays, so a worker
    can rebuild a data set from its seed instead of receiving it from the driver.

    Args:
        n: Number of examples. Must be positive.
        length: Input steps per example. Must be positive. Defaults to 50.
        horizon: Target steps per example. Must be positive. Defaults to 5.
        seed: Seed of the numpy generator; a list of integers such as ``[seed, stream]``
            gives independent sets from one base seed. Defaults to 0.

    Raises:
        ValueError: If ``n``, ``length`` or ``horizon`` is not a positive integer.
    """
    for name, value in (("n", n), ("length", length), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")

    # Draw the periods first and the decays second: this order is part of what a
    # seed means, so changing it would change every data set.
    rng = np.random.default_rng(seed)
    period = rng.integers(PERIOD_MIN, PERIOD_MAX + 1, size=n)
    decay = rng.uniform(DECAY_MIN, DECAY_MAX, size=n)

    series = damped_sine(np.arange(length + horizon), period, decay).astype(np.float32)
    X = series[:, :length, None]
    y = series[:, length:]
    return DampedSineSet(X=np.ascontiguousarray(X), y=np.ascontiguousarray(y), period=period, decay=decay)
