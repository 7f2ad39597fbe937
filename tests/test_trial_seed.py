import pytest

from search.trainable import trial_seed

CONFIG = {"depth": 2, "units": 38, "batch_size": 8, "learning_rate": 3.39e-3}


def test_same_config_same_seed() -> None:
    reordered = dict(reversed(list(CONFIG.items())))

    assert trial_seed(0, CONFIG) == trial_seed(0, dict(CONFIG))
    assert trial_seed(0, CONFIG) == trial_seed(0, reordered)


@pytest.mark.parametrize(
    ("search_seed", "changes"),
    [
        (1, {}),
        (0, {"depth": 3}),
        (0, {"units": 39}),
        (0, {"batch_size": 9}),
        (0, {"learning_rate": 3.4e-3}),
    ],
)
def test_any_change_gives_another_seed(search_seed, changes) -> None:
    assert trial_seed(search_seed, {**CONFIG, **changes}) != trial_seed(0, CONFIG)


def test_seed_fits_keras_seed_range() -> None:
    seed = trial_seed(12345, CONFIG)

    assert 0 <= seed < 2**31
