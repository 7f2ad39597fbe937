"""A real search on a local Ray: ASHA-stopped trials end as PRUNED in the Optuna study, finished ones as COMPLETE."""

from __future__ import annotations

import optuna
import pytest
import ray

from search.config import build_config
from search.driver import run_search
from search.ray_session import WORKER_ENV
from search.trainable import TIME_ATTR


@pytest.fixture
def local_ray_with_worker_env():
    """Start a small local Ray whose workers get the product's environment, as the command line sets it."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        runtime_env={"env_vars": dict(WORKER_ENV)},
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def test_asha_stopped_trials_are_pruned_in_optuna(local_ray_with_worker_env, tmp_path) -> None:
    config = build_config(preset="smoke", overrides={"run.storage": str(tmp_path)})
    max_t = config.asha.max_t

    outcome = run_search(config, "pruned-in-optuna")

    states: dict[str, optuna.trial.TrialState] = {}
    epochs: dict[str, int] = {}
    for result in outcome.results:
        assert result.error is None, result.error
        trial_id = result.metrics["trial_id"]
        epochs[trial_id] = int(result.metrics[TIME_ATTR])
        states[trial_id] = outcome.searcher.optuna_state(trial_id)

    assert len(states) == config.search.samples
    stopped = [trial_id for trial_id in states if epochs[trial_id] < max_t]
    completed = [trial_id for trial_id in states if epochs[trial_id] == max_t]
    # Both kinds must occur, or the test would show nothing about one of them.
    assert stopped, f"ASHA stopped no trial: epochs {epochs}"
    assert completed, f"no trial ran all {max_t} epochs: epochs {epochs}"
    for trial_id in stopped:
        assert states[trial_id] == optuna.trial.TrialState.PRUNED, f"{trial_id} stopped at epoch {epochs[trial_id]}"
    for trial_id in completed:
        assert states[trial_id] == optuna.trial.TrialState.COMPLETE, trial_id

    # The study contains one trial per Ray Tune trial and no other.
    study_states = sorted(trial.state.name for trial in outcome.searcher.study.get_trials())
    assert study_states == sorted(state.name for state in states.values())
