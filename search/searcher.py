"""Optuna TPE search that records in the Optuna study how each trial ended, ASHA stops included."""

from __future__ import annotations

import logging
import math
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from search.config import SpaceConfig
from search.trainable import METRIC, MODE, TIME_ATTR

logger = logging.getLogger(__name__)

TrialState = optuna.trial.TrialState


def optuna_space(space: SpaceConfig) -> dict[str, optuna.distributions.BaseDistribution]:
    """Map the configured ranges to Optuna distributions.

    Depth is uniform because each layer changes the model a lot; units, batch size
    and learning rate are log-uniform because their effect scales with ratios.
    """
    return {
        "depth": optuna.distributions.IntDistribution(space.depth[0], space.depth[1]),
        "units": optuna.distributions.IntDistribution(space.units[0], space.units[1], log=True),
        "batch_size": optuna.distributions.IntDistribution(space.batch_size[0], space.batch_size[1], log=True),
        "learning_rate": optuna.distributions.FloatDistribution(
            space.learning_rate[0], space.learning_rate[1], log=True
        ),
    }


class AshaAwareOptunaSearch(OptunaSearch):
    """Optuna search that records ASHA-stopped trials as pruned and diverged ones as failed.

    Ray's own ``OptunaSearch`` records every trial without an error as
    complete, with the last value it saw. A trial that ASHA stopped after one epoch
    would then count as a finished model with a one-epoch MAE, and TPE would learn
    from a value that no finished model has. Here such a trial is recorded as
    pruned, with its per-epoch values as intermediate values. A trial whose
    validation MAE became NaN or infinite, or whose last report carries an
    ``error``, is recorded as failed, so it never counts as good.

    Args:
        space: Optuna distributions by parameter name.
        max_t: Epochs of a trial that ran to the end; fewer means ASHA stopped it.
        seed: Seed of the TPE sampler.
    """

    def __init__(self, space: dict[str, optuna.distributions.BaseDistribution], max_t: int, seed: int) -> None:
        sampler = optuna.samplers.TPESampler(seed=seed)
        super().__init__(space=space, metric=METRIC, mode=MODE, sampler=sampler)
        self._max_t = max_t
        self._values: dict[str, dict[int, float]] = {}
        self._failed: set[str] = set()  # trials that diverged or raised

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._completed_trials:
            return
        self._record(trial_id, result)

    def _record(self, trial_id: str, result: dict[str, Any]) -> None:
        """Report a result's value to Optuna as the intermediate value of its epoch, or mark the trial failed."""
        epoch = int(result[TIME_ATTR])
        value = result.get(METRIC)
        if value is None or not math.isfinite(value) or result.get("diverged") or result.get("error"):
            self._failed.add(trial_id)
            return

        # A trial restarted from a checkpoint reports its epochs again; Optuna keeps
        # one value per step, so repeated epochs are skipped.
        values = self._values.setdefault(trial_id, {})
        if epoch in values:
            return
        values[epoch] = float(value)
        self._ot_trials[trial_id].report(float(value), epoch)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return

        # Ray Tune hands the result on which ASHA stopped a trial, and the last result
        # of a trial that ran max_t epochs, only to this method, not to on_trial_result.
        if result and not error and TIME_ATTR in result:
            self._record(trial_id, result)

        ot_trial = self._ot_trials[trial_id]
        values = self._values.get(trial_id, {})
        epochs = max(values, default=0)

        last = result or {}
        if error or trial_id in self._failed or last.get("diverged") or last.get("error") or not values:
            state, value = TrialState.FAIL, None
        elif epochs < self._max_t:
            state, value = TrialState.PRUNED, None
        else:
            state, value = TrialState.COMPLETE, min(values.values())

        self._ot_study.tell(ot_trial, value, state=state)
        self._completed_trials.add(trial_id)
        logger.debug("Trial %s recorded in the Optuna study as %s after %d epochs.", trial_id, state.name, epochs)

    def optuna_state(self, trial_id: str) -> TrialState:
        """Return the state the Optuna study holds for a Ray Tune trial."""
        number = self._ot_trials[trial_id].number
        return self._ot_study.trials[number].state

    @property
    def study(self) -> optuna.Study:
        """The Optuna study behind the search."""
        return self._ot_study
