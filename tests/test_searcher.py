"""The searcher is fed scripted results, the way Ray Tune's trial runner calls it."""

import math

import optuna
import pytest

from search.config import SpaceConfig
from search.searcher import AshaAwareOptunaSearch, optuna_space

MAX_T = 4


def _searcher() -> AshaAwareOptunaSearch:
    return AshaAwareOptunaSearch(optuna_space(SpaceConfig()), max_t=MAX_T, seed=0)


def _report(searcher: AshaAwareOptunaSearch, trial_id: str, values: list[float]) -> dict:
    result = {}
    for epoch, value in enumerate(values, start=1):
        result = {"epoch": epoch, "val_mae": value, "diverged": not math.isfinite(value)}
        searcher.on_trial_result(trial_id, result)
    return result


@pytest.mark.parametrize(
    ("values", "error", "expected_state", "expected_value"),
    [
        ([0.05, 0.03, 0.02, 0.025], False, optuna.trial.TrialState.COMPLETE, 0.02),  # ran all max_t epochs
        # ASHA stopped it at the first rung; Optuna keeps the last intermediate value.
        ([0.05], False, optuna.trial.TrialState.PRUNED, 0.05),
        ([0.05, float("nan")], False, optuna.trial.TrialState.FAIL, None),  # diverged
        ([0.05, 0.04], True, optuna.trial.TrialState.FAIL, None),  # raised an error
    ],
)
def test_searcher_tells_optuna_how_the_trial_ended(values, error, expected_state, expected_value) -> None:
    searcher = _searcher()
    params = searcher.suggest("t1")
    assert set(params) == {"depth", "units", "batch_size", "learning_rate"}

    last = _report(searcher, "t1", values)
    searcher.on_trial_complete("t1", result=last, error=error)

    [trial] = searcher.study.get_trials()
    assert trial.state == expected_state
    assert trial.value == expected_value
    finite = {epoch: value for epoch, value in enumerate(values, start=1) if math.isfinite(value)}
    assert trial.intermediate_values == finite


def test_searcher_skips_epochs_repeated_after_a_restart() -> None:
    searcher = _searcher()
    searcher.suggest("t1")

    _report(searcher, "t1", [0.05, 0.04])
    # The worker died and the trial resumed from epoch 1's checkpoint.
    searcher.on_trial_result("t1", {"epoch": 2, "val_mae": 0.045, "diverged": False})
    last = {"epoch": 4, "val_mae": 0.01, "diverged": False}
    searcher.on_trial_result("t1", {"epoch": 3, "val_mae": 0.02, "diverged": False})
    searcher.on_trial_result("t1", last)
    searcher.on_trial_complete("t1", result=last)

    [trial] = searcher.study.get_trials()
    assert trial.intermediate_values == {1: 0.05, 2: 0.04, 3: 0.02, 4: 0.01}
    assert trial.state == optuna.trial.TrialState.COMPLETE


def test_searcher_samples_within_the_configured_space() -> None:
    space = SpaceConfig(depth=[2, 2], units=[16, 32], batch_size=[8, 8], learning_rate=[1e-3, 2e-3])
    searcher = AshaAwareOptunaSearch(optuna_space(space), max_t=MAX_T, seed=1)

    for index in range(10):
        params = searcher.suggest(f"t{index}")
        assert params["depth"] == 2
        assert 16 <= params["units"] <= 32
        assert params["batch_size"] == 8
        assert 1e-3 <= params["learning_rate"] <= 2e-3


@pytest.mark.parametrize(
    ("values", "expected_state", "expected_value"),
    [
        ([0.05], optuna.trial.TrialState.PRUNED, 0.05),  # ASHA stopped it on its first result
        ([0.05, 0.03, 0.02, 0.025], optuna.trial.TrialState.COMPLETE, 0.02),  # its max_t-th result ended it
    ],
)
def test_searcher_counts_the_result_that_ended_the_trial(values, expected_state, expected_value) -> None:
    # Ray Tune passes the result on which a trial stops to on_trial_complete only.
    searcher = _searcher()
    searcher.suggest("t1")
    _report(searcher, "t1", values[:-1])
    last = {"epoch": len(values), "val_mae": values[-1], "diverged": False}

    searcher.on_trial_complete("t1", result=last)

    [trial] = searcher.study.get_trials()
    assert trial.state == expected_state
    assert trial.value == expected_value
    assert trial.intermediate_values == dict(enumerate(values, start=1))


def test_searcher_tells_a_trial_that_raised_as_failed() -> None:
    searcher = _searcher()
    searcher.suggest("t1")
    _report(searcher, "t1", [0.05, 0.04])
    last = {"epoch": 2, "val_mae": float("nan"), "diverged": False, "error": "ValueError: bad input"}

    searcher.on_trial_complete("t1", result=last)

    [trial] = searcher.study.get_trials()
    assert trial.state == optuna.trial.TrialState.FAIL


def test_searcher_records_result_that_arrives_only_at_completion() -> None:
    # Ray Tune calls on_trial_complete, but not on_trial_result, with the result
    # on which ASHA stops a trial.
    searcher = _searcher()
    searcher.suggest("t1")

    _report(searcher, "t1", [0.05])
    searcher.on_trial_complete("t1", result={"epoch": 2, "val_mae": 0.04, "diverged": False})

    [trial] = searcher.study.get_trials()
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.intermediate_values == {1: 0.05, 2: 0.04}
