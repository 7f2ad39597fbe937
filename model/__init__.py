"""The stacked-LSTM forecaster: build, train epoch by epoch, evaluate, save and load."""

from model.lstm import build_stacked_lstm, count_parameters
from model.persistence import load_model, save_model
from model.training import EpochResult, evaluate_mae, fit_epochs, forecast

__all__ = [
    "EpochResult",
    "build_stacked_lstm",
    "count_parameters",
    "evaluate_mae",
    "fit_epochs",
    "forecast",
    "load_model",
    "save_model",
]
