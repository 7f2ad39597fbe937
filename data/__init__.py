"""Damped-sine forecasting data, generated from seeds so that every worker can make its own."""

from data.damped_sine import (
    DECAY_MAX,
    DECAY_MIN,
    PERIOD_MAX,
    PERIOD_MIN,
    DampedSineSet,
    damped_sine,
    generate_examples,
)

__all__ = [
    "DECAY_MAX",
    "DECAY_MIN",
    "PERIOD_MAX",
    "PERIOD_MIN",
    "DampedSineSet",
    "damped_sine",
    "generate_examples",
]
