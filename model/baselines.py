"""Simple forecasters that a tuned model has to beat."""

from __future__ import annotations

import numpy as np

from model.lstm import build_stacked_lstm
from model.training import fit_epochs, forecast

# The configuration of the hand-written model this project started from: four
# LSTM layers of 20 units, Keras' default Adam, batch 10, 5 epochs on 500 series.
NOTEBOOK_DEPTH = 4
NOTEBOOK_UNITS = 20
NOTEBOOK_BATCH_SIZE = 10
NOTEBOOK_EPOCHS = 5
NOTEBOOK_N_TRAIN = 500
NOTEBOOK_LEARNING_RATE = 1e-3


def constant_forecast(X: np.ndarray, horizon: int, value: float = 0.5) -> np.ndarray:
    """Forecast ``value`` at every step: the centre line the damped sines decay towards."""
    return np.full((len(X), horizon), value, dtype=np.float32)


def persistence_forecast(X: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast the last observed value at every step."""
    return np.repeat(X[:, -1, :1], horizon, axis=1)


def notebook_forecast(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    X: np.ndarray,
    seed: int = 0,
) -> np.ndarray:
    """Train the reference 4x20 model the way it was first trained, then forecast ``X``.

    The caller passes the 500 training series. The validation set is only watched and
    never used to pick weights, so the baseline stays the model as first trained.
    """
    import keras

    keras.utils.set_random_seed(seed)
    length, horizon = X_train.shape[1], y_train.shape[1]
    model = build_stacked_lstm(NOTEBOOK_DEPTH, NOTEBOOK_UNITS, length, horizon, NOTEBOOK_LEARNING_RATE)
    fit_epochs(model, X_train, y_train, X_val, y_val, epochs=NOTEBOOK_EPOCHS, batch_size=NOTEBOOK_BATCH_SIZE)
    return forecast(model, X)


def mae(forecast_values: np.ndarray, y: np.ndarray) -> float:
    """Return the mean absolute error over every example and step."""
    return float(np.mean(np.abs(forecast_values - y)))
