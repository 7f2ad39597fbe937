import math

import keras
import numpy as np
import pytest

from data import generate_examples
from model import build_stacked_lstm, count_parameters, evaluate_mae, fit_epochs, forecast, load_model, save_model
from model.baselines import constant_forecast, mae, persistence_forecast


def test_notebook_configuration_has_11705_parameters() -> None:
    model = build_stacked_lstm(depth=4, units=20, length=50, horizon=5)

    assert count_parameters(model) == 11_705


@pytest.mark.parametrize(
    ("depth", "units", "expected_lstm_layers"),
    [(1, 8, 1), (2, 16, 2), (4, 20, 4)],
)
def test_stacked_lstm_layers_and_output_shape(depth, units, expected_lstm_layers) -> None:
    model = build_stacked_lstm(depth=depth, units=units, length=12, horizon=3)

    lstm_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    assert len(lstm_layers) == expected_lstm_layers
    # Every LSTM but the last hands its whole sequence to the next one.
    assert [layer.return_sequences for layer in lstm_layers] == [True] * (depth - 1) + [False]
    assert model.output_shape == (None, 3)
    assert model.loss == "mae"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 0}, "depth must be a positive integer, got 0"),
        ({"units": -4}, "units must be a positive integer, got -4"),
        ({"horizon": 0}, "horizon must be a positive integer, got 0"),
        ({"learning_rate": 0.0}, "learning_rate must be positive, got 0.0"),
    ],
)
def test_build_stacked_lstm_rejects_invalid_sizes(kwargs, message) -> None:
    arguments = {"depth": 1, "units": 4, "length": 10, "horizon": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_stacked_lstm(**arguments)


def test_fit_epochs_hook_stops_training() -> None:
    keras.utils.set_random_seed(0)
    data = generate_examples(32, length=10, horizon=2, seed=0)
    model = build_stacked_lstm(depth=1, units=4, length=10, horizon=2, learning_rate=1e-2)
    seen = []

    def hook(trained, result):
        seen.append(result.epoch)
        return result.epoch == 2

    results = fit_epochs(model, data.X, data.y, data.X, data.y, epochs=5, batch_size=8, on_epoch_end=hook)

    assert seen == [1, 2]
    assert [result.epoch for result in results] == [1, 2]
    assert all(math.isfinite(result.val_mae) for result in results)


def test_fit_epochs_val_mae_over_all_series() -> None:
    # 1,100 validation series make one full and one partial validation batch,
    # which must be weighted by their sizes.
    keras.utils.set_random_seed(0)
    train = generate_examples(16, length=10, horizon=2, seed=0)
    val = generate_examples(1100, length=10, horizon=2, seed=1)
    model = build_stacked_lstm(depth=1, units=4, length=10, horizon=2, learning_rate=1e-2)

    [result] = fit_epochs(model, train.X, train.y, val.X, val.y, epochs=1, batch_size=8)

    assert result.val_mae == pytest.approx(evaluate_mae(model, val.X, val.y), rel=1e-5)


def test_fit_epochs_stops_on_nan_loss() -> None:
    data = generate_examples(16, length=6, horizon=2, seed=0)
    X = data.X.copy()
    X[0, 0, 0] = np.nan  # one NaN input makes the loss NaN from the first batch on
    model = build_stacked_lstm(depth=1, units=4, length=6, horizon=2)

    results = fit_epochs(model, X, data.y, data.X, data.y, epochs=5, batch_size=16)

    assert len(results) == 1
    assert not results[0].is_finite


@pytest.mark.parametrize("source", ["built", "loaded"])
def test_training_step_traced_once(source, tmp_path) -> None:
    # 70 series in batches of 16 end with a partial batch, which must not cause a retrace either.
    data = generate_examples(70, seed=3)
    model = build_stacked_lstm(2, 4, data.X.shape[1], data.y.shape[1])
    if source == "loaded":
        model = load_model(save_model(model, tmp_path / "model.keras"))

    traced = []
    train_step = model.train_step

    def counting_train_step(batch):
        traced.append(batch)
        return train_step(batch)

    model.train_step = counting_train_step
    fit_epochs(model, data.X, data.y, data.X, data.y, epochs=3, batch_size=16)

    assert len(traced) == 1


def test_save_and_load_round_trip_gives_same_forecast(tmp_path) -> None:
    data = generate_examples(8, length=10, horizon=2, seed=0)
    model = build_stacked_lstm(depth=2, units=4, length=10, horizon=2)

    path = save_model(model, tmp_path / "model.keras")
    loaded = load_model(path)

    np.testing.assert_allclose(forecast(loaded, data.X), forecast(model, data.X), atol=1e-6)


def test_save_model_rejects_other_suffixes(tmp_path) -> None:
    model = build_stacked_lstm(depth=1, units=4, length=10, horizon=2)

    with pytest.raises(ValueError, match="must end in '.keras'"):
        save_model(model, tmp_path / "model.h5")


def test_load_model_refuses_lambda_layers_in_safe_mode(tmp_path) -> None:
    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Lambda(lambda tensor: tensor * 2)(inputs)
    unsafe = keras.Model(inputs, outputs)
    unsafe.save(tmp_path / "unsafe.keras")

    with pytest.raises(ValueError, match="safe_mode"):
        load_model(tmp_path / "unsafe.keras")


def test_evaluate_mae_matches_numpy() -> None:
    data = generate_examples(16, length=10, horizon=2, seed=1)
    model = build_stacked_lstm(depth=1, units=4, length=10, horizon=2)

    expected = float(np.mean(np.abs(forecast(model, data.X) - data.y)))
    assert evaluate_mae(model, data.X, data.y) == pytest.approx(expected, rel=1e-6)


def test_baselines_constant_and_persistence() -> None:
    X = np.array([[[0.2], [0.7]], [[0.9], [0.4]]], dtype=np.float32)
    y = np.array([[0.5, 0.6], [0.4, 0.4]], dtype=np.float32)

    np.testing.assert_array_equal(constant_forecast(X, 2), [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(persistence_forecast(X, 2), [[0.7, 0.7], [0.4, 0.4]], rtol=1e-6)
    assert mae(persistence_forecast(X, 2), y) == pytest.approx((0.2 + 0.1 + 0 + 0) / 4)
