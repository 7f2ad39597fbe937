import math

import numpy as np
import pytest

from data import DECAY_MAX, DECAY_MIN, PERIOD_MAX, PERIOD_MIN, damped_sine, generate_examples


def test_generate_examples_matches_the_formula_at_every_step() -> None:
    examples = generate_examples(4, length=50, horizon=5, seed=3)

    for row in range(4):
        period, decay = int(examples.period[row]), float(examples.decay[row])
        expected = [0.5 + 0.5 * math.sin(2 * math.pi * i / period) * math.exp(-decay * i) for i in range(55)]
        np.testing.assert_allclose(examples.X[row, :, 0], expected[:50], atol=1e-6)
        np.testing.assert_allclose(examples.y[row], expected[50:], atol=1e-6)


def test_generate_examples_shapes_and_dtypes() -> None:
    examples = generate_examples(7, length=12, horizon=3, seed=0)

    assert examples.X.shape == (7, 12, 1)
    assert examples.y.shape == (7, 3)
    assert examples.X.dtype == np.float32
    assert examples.y.dtype == np.float32
    assert len(examples) == 7


def test_generate_examples_draws_parameters_within_their_ranges() -> None:
    examples = generate_examples(5000, length=5, horizon=1, seed=1)

    assert examples.period.min() == PERIOD_MIN
    assert examples.period.max() == PERIOD_MAX
    assert np.issubdtype(examples.period.dtype, np.integer)
    assert examples.decay.min() >= DECAY_MIN
    assert examples.decay.max() <= DECAY_MAX
    # Every integer period from 10 to 20 inclusive appears.
    assert set(np.unique(examples.period)) == set(range(PERIOD_MIN, PERIOD_MAX + 1))


def test_generate_examples_same_seed_same_arrays() -> None:
    first = generate_examples(20, seed=42)
    second = generate_examples(20, seed=42)

    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.y, second.y)


@pytest.mark.parametrize(
    ("seed_a", "seed_b"),
    [
        (0, 1),  # different integer seeds
        ([0, 1], [0, 2]),  # same base seed, different streams: how train and validation sets are drawn
    ],
)
def test_generate_examples_different_seeds_differ(seed_a, seed_b) -> None:
    first = generate_examples(20, seed=seed_a)
    second = generate_examples(20, seed=seed_b)

    assert not np.array_equal(first.X, second.X)


def test_damped_sine_values_stay_in_unit_interval() -> None:
    values = damped_sine(np.arange(200), np.array([10, 20]), np.array([0.01, 0.1]))

    assert values.min() >= 0.0
    assert values.max() <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be a positive integer, got 0"),
        ({"n": 5, "length": 0}, "length must be a positive integer, got 0"),
        ({"n": 5, "horizon": -1}, "horizon must be a positive integer, got -1"),
        ({"n": 2.5}, "n must be a positive integer, got 2.5"),
        ({"n": True}, "n must be a positive integer, got True"),
    ],
)
def test_generate_examples_rejects_invalid_sizes(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        generate_examples(**kwargs)
