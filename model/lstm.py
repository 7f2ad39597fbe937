"""Stacked-LSTM forecaster: ``depth`` LSTM layers of ``units`` each and a Dense(horizon) head."""

from __future__ import annotations

import keras


def build_stacked_lstm(
    depth: int,
    units: int,
    length: int,
    horizon: int,
    learning_rate: float = 1e-3,
) -> keras.Model:
    """Build and compile a stacked LSTM that maps ``length`` steps to ``horizon`` steps.

    Every LSTM layer but the last returns its whole sequence so that the next layer
    gets every step. The last one returns its final state, which the Dense head maps
    to the forecast. The model is compiled with MAE loss and Adam, whose
    variables are created here so that ``fit`` traces its training step once.

    Args:
        depth: Number of LSTM layers, at least 1.
        units: Units per LSTM layer, at least 1.
        length: Input steps per example.
        horizon: Forecast steps per example.
        learning_rate: Adam's learning rate. Defaults to ``1e-3``, Keras' own default.

    Raises:
        ValueError: If a size is not a positive integer or the learning rate is not positive.
    """
    for name, value in (("depth", depth), ("units", units), ("length", length), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}.")

    layers: list[keras.layers.Layer] = [keras.Input(shape=(length, 1), name="history")]
    for index in range(depth):
        is_last = index == depth - 1
        layers.append(keras.layers.LSTM(units, return_sequences=not is_last, name=f"lstm_{index + 1}"))
    layers.append(keras.layers.Dense(horizon, name="forecast"))

    model = keras.Sequential(layers, name=f"stacked_lstm_{depth}x{units}")
    model.compile(loss="mae", optimizer=keras.optimizers.Adam(learning_rate=learning_rate))
    build_optimizer(model)
    return model


def build_optimizer(model: keras.Model) -> None:
    """Create the optimizer's slot variables now, before the first training step.

    Adam creates its moment variables on its first update. Inside ``fit`` that
    happens while TensorFlow traces the training step, and a traced function that
    created variables is traced a second time, which costs as much as the first.
    With the variables in place the step is traced once.
    """
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def count_parameters(model: keras.Model) -> int:
    """Return the number of trainable and non-trainable weights' scalars."""
    return int(model.count_params())
