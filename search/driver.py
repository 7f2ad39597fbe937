"""The Ray Tune driver: sample with Optuna, stop early with ASHA, run the trials on Ray workers."""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher

from search.config import Config
from search.ray_session import cluster_cpus
from search.searcher import AshaAwareOptunaSearch, optuna_space
from search.storage import join, normalize_storage
from search.trainable import METRIC, MODE, TIME_ATTR, TrialSettings, train_trial

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOutcome:
    """Results of a finished search, for the steps after it."""

    results: tune.ResultGrid
    searcher: AshaAwareOptunaSearch | None  # None after a resume: Ray restores its own copy inside the Tuner
    wall_time_s: float


class TrialLogger(tune.Callback):
    """Log one sentence per trial start, end and error, with the trial id and its numbers."""

    def __init__(self, max_t: int) -> None:
        self._max_t = max_t

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        params = ", ".join(f"{key}={_format_param(value)}" for key, value in sorted(trial.config.items()))
        logger.info("Trial %s started with %s.", trial.trial_id, params)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        epochs = int(result.get(TIME_ATTR, 0))
        best = result.get("best_val_mae", math.nan)
        if result.get("error"):
            logger.warning("Trial %s failed after %d epochs and is not retried: %s", trial.trial_id, epochs, result["error"])
            return
        if result.get("diverged"):
            outcome = "diverged"
        elif epochs < self._max_t:
            outcome = "was stopped early by ASHA"
        else:
            outcome = "completed"
        logger.info("Trial %s %s after %d of %d epochs, best val_mae %.5f.", trial.trial_id, outcome, epochs, self._max_t, best)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        logger.warning("Trial %s failed: %s", trial.trial_id, _first_line(trial.error_file))


def _format_param(value: Any) -> str:
    return f"{value:.2e}" if isinstance(value, float) else str(value)


def _first_line(error_file: str | None) -> str:
    if not error_file:
        return "no error file was written."
    try:
        with open(error_file, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle if line.strip()]
    except OSError:
        return f"see {error_file}."
    return lines[-1] if lines else f"see {error_file}."


def trial_settings(config: Config) -> TrialSettings:
    return TrialSettings(
        length=config.data.length,
        horizon=config.data.horizon,
        n_train=config.data.n_train,
        n_val=config.data.n_val,
        data_seed=config.data.seed,
        search_seed=config.search.seed,
        max_t=config.asha.max_t,
        cpus_per_trial=config.resources.cpus_per_trial,
    )


def build_trainable(config: Config) -> Any:
    """Wrap :func:`train_trial` with its settings and the CPUs each trial holds."""
    trainable = tune.with_parameters(train_trial, settings=trial_settings(config))
    return tune.with_resources(trainable, {"cpu": config.resources.cpus_per_trial})


def max_concurrent_trials(config: Config) -> int:
    """Return the configured limit, or as many trials as the cluster's CPUs hold at once."""
    # NOTE: the CPUs are counted once, at the start, so an autoscaling cluster that
    # starts small gets a small limit; set search.max_concurrent_trials for one.
    if config.search.max_concurrent_trials:
        return config.search.max_concurrent_trials
    return max(1, cluster_cpus() // config.resources.cpus_per_trial)


def build_scheduler(config: Config) -> ASHAScheduler:
    """Build ASHA on the epoch count.

    ASHA's minimum resource r is grace_period, its maximum R is max_t and its
    reduction factor η is reduction_factor, all counted in epochs.
    """
    return ASHAScheduler(
        time_attr=TIME_ATTR,
        max_t=config.asha.max_t,
        grace_period=config.asha.grace_period,
        reduction_factor=config.asha.reduction_factor,
    )


def build_tuner(
    config: Config,
    name: str,
    *,
    trainable: Any = None,
    searcher: Searcher | None = None,
    scheduler: TrialScheduler | None = None,
    callbacks: Sequence[tune.Callback] = (),
    stop: tune.Stopper | None = None,
) -> tuple[tune.Tuner, Searcher]:
    """Assemble the Tuner: Optuna TPE for sampling, ASHA on val_mae per epoch for stopping.

    The keyword arguments replace one piece and keep every other choice, so the
    benchmarks can compare searchers and schedulers under the same Tuner. By
    default the trainable is :func:`build_trainable`, the searcher an
    :class:`AshaAwareOptunaSearch` and the scheduler :func:`build_scheduler`.
    """
    if searcher is None:
        searcher = AshaAwareOptunaSearch(optuna_space(config.space), max_t=config.asha.max_t, seed=config.search.seed)
    if scheduler is None:
        scheduler = build_scheduler(config)

    concurrent = max_concurrent_trials(config)
    logger.info(
        "Searching %d trials, at most %d at once with %d CPU each; ASHA grace_period=%d, max_t=%d, reduction_factor=%d.",
        config.search.samples,
        concurrent,
        config.resources.cpus_per_trial,
        config.asha.grace_period,
        config.asha.max_t,
        config.asha.reduction_factor,
    )

    tuner = tune.Tuner(
        trainable if trainable is not None else build_trainable(config),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=config.search.samples,
            max_concurrent_trials=concurrent,
            # Reusing a worker for the next trial saves importing TensorFlow again.
            # search.ray_session.WORKER_ENV gives the last trial's thread 30 s to end.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=normalize_storage(config.run.storage),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=config.search.max_failures),
            callbacks=[TrialLogger(config.asha.max_t), *callbacks],
            stop=stop,
            verbose=1,
        ),
    )
    return tuner, searcher


def restore_tuner(config: Config, name: str) -> tune.Tuner:
    """Restore the Tuner of an interrupted search from Ray Tune's saved state in ``STORAGE/NAME``.

    Ray Tune restores the searcher with its Optuna study, every trial's status and
    its checkpoints. Trials that ended stay as they are; trials that were running
    or waiting continue from their last checkpoint. A trial in ERROR already used
    its ``search.max_failures`` restarts, so it stays failed as well.

    NOTE: Ray Tune 2.60 saves neither the ASHA scheduler nor its rungs with the
    experiment state, so after a resume ASHA compares only the results reported
    after the restore.
    """
    location = join(normalize_storage(config.run.storage), name)
    return tune.Tuner.restore(
        location,
        trainable=build_trainable(config),
        resume_unfinished=True,
        resume_errored=False,
        restart_errored=False,
    )


def run_search(config: Config, name: str, resume: bool = False) -> SearchOutcome:
    """Run every trial of the search, or the trials an interrupted search left, and return Ray Tune's results."""
    started = time.perf_counter()
    if resume:
        tuner, searcher = restore_tuner(config, name), None
    else:
        tuner, searcher = build_tuner(config, name)

    # Ray Tune replaces the SIGINT handler while it runs and leaves its own in
    # place afterwards, which would make Ctrl-C do nothing during the retrain.
    sigint_handler = signal.getsignal(signal.SIGINT)
    try:
        results = tuner.fit()
    finally:
        signal.signal(signal.SIGINT, sigint_handler)
    return SearchOutcome(results=results, searcher=searcher, wall_time_s=time.perf_counter() - started)
