"""Damped-sine forecasting data, generated from seeds so that every worker can make its own."""

from data.damped_sine import DampedSineSet, damped_sine, generate_examples

__all__ = ["DampedSineSet", "damped_sine", "generate_examples"]
