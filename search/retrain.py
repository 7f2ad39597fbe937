"""Retrain the best configuration on more data and score it and the baselines on the test set."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from search.config import Config
from search.threads import configure_threads
from search.trainable import RETRAIN_STREAM, VAL_STREAM

logger = logging.getLogger(__name__)

NOTEBOOK_STREAM = 4  # seed stream of the notebook baseline's 500 training series

# Names of the baselines in best.json and in the report.
CONSTANT = "constant_0.5"
PERSISTENCE = "persistence"
NOTEBOOK = "notebook_4x20"


@dataclass
class RetrainOutcome:
    """The retrained model's scores and how the retrain went."""

    test_mae: float
    val_mae: float
    epochs: int
    best_epoch: int
    wall_time_s: float
    baselines: dict[str, float] = field(default_factory=dict)


def load_test_set(config: Config) -> Any:
    """Return the fixed test set; its seed is apart from the training seeds so runs compare."""
    from data import generate_examples

    return generate_examples(config.data.n_test, config.data.length, config.data.horizon, seed=config.data.test_seed)


def configure_driver_threads(config: Config) -> None:
    """Set the driver's TensorFlow threads to ``resources.num_cpus``, or one per core when it is 0.

    The notebook baseline and the retrain both train in this process, and TensorFlow
    takes a thread setting only before its runtime starts, so both call this first.
    """
    configure_threads(config.resources.num_cpus or os.cpu_count() or 1)


def score_baselines(config: Config, test: Any) -> dict[str, float]:
    """Return the test MAE of the constant, persistence and (unless skipped) notebook baselines."""
    from data import generate_examples
    from model.baselines import constant_forecast, mae, notebook_forecast, persistence_forecast

    horizon = config.data.horizon
    scores = {
        CONSTANT: mae(constant_forecast(test.X, horizon), test.y),
        PERSISTENCE: mae(persistence_forecast(test.X, horizon), test.y),
    }

    if config.retrain.notebook_baseline:
        logger.info("Training the notebook's 4x20 LSTM baseline: 500 series, batch 10, 5 epochs.")
        configure_driver_threads(config)
        started = time.perf_counter()
        train = generate_examples(500, config.data.length, horizon, seed=[config.data.seed, NOTEBOOK_STREAM])
        val = generate_examples(config.data.n_val, config.data.length, horizon, seed=[config.data.seed, VAL_STREAM])
        predicted = notebook_forecast(train.X, train.y, val.X, val.y, test.X, seed=config.search.seed)
        scores[NOTEBOOK] = mae(predicted, test.y)
        logger.info("Notebook baseline trained in %.1f s: test MAE %.5f.", time.perf_counter() - started, scores[NOTEBOOK])

    return scores


def retrain(config: Config, params: dict[str, Any], test: Any) -> tuple[Any, RetrainOutcome]:
    """Train ``params`` on ``retrain.n_train`` series for up to ``retrain.epochs`` epochs.

    The retrain keeps the weights of its best validation epoch and halves the
    learning rate when the validation MAE stalls, so that more epochs cannot make
    the final model worse than a shorter run would have been.

    Returns:
        The retrained Keras model and its scores.
    """
    configure_driver_threads(config)
    import keras

    from data import generate_examples
    from model import build_stacked_lstm, evaluate_mae, fit_epochs

    settings = config.retrain
    length, horizon = config.data.length, config.data.horizon
    train = generate_examples(settings.n_train, length, horizon, seed=[config.data.seed, RETRAIN_STREAM])
    val = generate_examples(config.data.n_val, length, horizon, seed=[config.data.seed, VAL_STREAM])

    keras.utils.set_random_seed(config.search.seed)
    model = build_stacked_lstm(
        depth=int(params["depth"]),
        units=int(params["units"]),
        length=length,
        horizon=horizon,
        learning_rate=float(params["learning_rate"]),
    )

    started = time.perf_counter()

    def log_epoch(trained: Any, result: Any) -> bool:
        logger.info(
            "Retrain epoch %d/%d: loss %.5f, val_mae %.5f, %.1f s.",
            result.epoch,
            settings.epochs,
            result.loss,
            result.val_mae,
            result.epoch_time_s,
        )
        return False

    def stop_after_budget(trained: Any, result: Any) -> bool:
        log_epoch(trained, result)
        over_budget = settings.max_time_s and time.perf_counter() - started >= settings.max_time_s
        if over_budget and result.epoch < settings.epochs:
            logger.info("Retrain stops after epoch %d: its %d s budget (retrain.max_time_s) is spent.", result.epoch, settings.max_time_s)
        return bool(over_budget)

    # EarlyStopping restores the best epoch's weights when training ends, whether
    # patience, the epoch limit or the time budget ended it (Keras 3.15 on_train_end).
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, settings.patience // 3)),
    ]
    history = fit_epochs(
        model,
        train.X,
        train.y,
        val.X,
        val.y,
        epochs=settings.epochs,
        batch_size=int(params["batch_size"]),
        on_epoch_end=stop_after_budget,
        extra_callbacks=callbacks,
    )

    val_maes = [result.val_mae for result in history]
    finite = [value for value in val_maes if math.isfinite(value)]
    best_epoch = val_maes.index(min(finite)) + 1 if finite else 0
    outcome = RetrainOutcome(
        test_mae=evaluate_mae(model, test.X, test.y),
        val_mae=min(finite) if finite else math.nan,
        epochs=len(history),
        best_epoch=best_epoch,
        wall_time_s=time.perf_counter() - started,
    )
    logger.info(
        "Retrain finished after %d epochs in %.1f s: best val_mae %.5f at epoch %d, test MAE %.5f.",
        outcome.epochs,
        outcome.wall_time_s,
        outcome.val_mae,
        outcome.best_epoch,
        outcome.test_mae,
    )
    return model, outcome
