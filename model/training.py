"""Epoch-by-epoch training with a hook after each epoch, evaluation and forecasting."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from model.lstm import build_optimizer


@dataclass(frozen=True)
class EpochResult:
    """Measurements of one finished epoch.

    Attributes:
        epoch: 1-based number of the epoch that just finished.
        loss: Mean training MAE over the epoch.
        val_mae: MAE on the validation set after the epoch.
        epoch_time_s: Wall time of the epoch, validation included, in seconds.
    """

    epoch: int
    loss: float
    val_mae: float
    epoch_time_s: float

    @property
    def is_finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.val_mae)


# Validation runs forward passes only, so it takes batches of at least this many
# series: fewer, larger steps. The MAE is the same up to float rounding.
VALIDATION_BATCH_SIZE = 1024

# The hook returns True to stop training after this epoch.
EpochHook = Callable[[keras.Model, EpochResult], bool | None]


class _EpochHookCallback(keras.callbacks.Callback):
    """Keras callback that hands each epoch's losses to an :data:`EpochHook`."""

    def __init__(self, on_epoch_end: EpochHook) -> None:
        super().__init__()
        self._on_epoch_end = on_epoch_end
        self._epoch_started_at = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_started_at = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        result = EpochResult(
            epoch=epoch + 1,
            loss=float(logs.get("loss", math.nan)),
            val_mae=float(logs.get("val_loss", math.nan)),
            epoch_time_s=time.perf_counter() - self._epoch_started_at,
        )

        # A diverged model only produces more NaNs, so stop it here even when
        # the hook does not ask to.
        if self._on_epoch_end(self.model, result) or not result.is_finite:
            self.model.stop_training = True


def fit_epochs(
    model: keras.Model,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    epochs: int,
    batch_size: int,
    initial_epoch: int = 0,
    on_epoch_end: EpochHook | None = None,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
) -> list[EpochResult]:
    """Train ``model`` from ``initial_epoch`` up to ``epochs``, calling ``on_epoch_end`` after each.

    One ``fit`` call covers every epoch, so Keras traces the training and the
    validation step once, not once per epoch. Training stops early when the hook
    returns True or when the loss or the validation MAE is not finite.

    Returns:
        The results of the epochs that ran, in order.
    """
    results: list[EpochResult] = []

    def record(trained: keras.Model, result: EpochResult) -> bool:
        results.append(result)
        return bool(on_epoch_end(trained, result)) if on_epoch_end else False

    # A model compiled elsewhere than build_stacked_lstm may not have its optimizer's variables yet.
    build_optimizer(model)

    callbacks = [_EpochHookCallback(record), *(extra_callbacks or [])]
    model.fit(
        X,
        y,
        batch_size=batch_size,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=(X_val, y_val),
        validation_batch_size=max(batch_size, VALIDATION_BATCH_SIZE),
        callbacks=callbacks,
        shuffle=True,
        verbose=0,
    )
    return results


def forecast(model: keras.Model, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Return the model's forecast for each input, shape ``(n, horizon)``."""
    return np.asarray(model.predict(X, batch_size=batch_size, verbose=0))


def evaluate_mae(model: keras.Model, X: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> float:
    """Return the mean absolute error of the model's forecast over every example and step."""
    return float(np.mean(np.abs(forecast(model, X, batch_size) - y)))
