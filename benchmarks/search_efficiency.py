"""CPU-seconds that each search method needs to reach a target val_mae, and its best val_mae on a fixed budget.

Methods, all on the same data, search space, CPU budget and 2 CPUs:

- ``tpe_asha``: the product's search, Optuna TPE through ``AshaAwareOptunaSearch``
  with ASHA, which records the trials ASHA stopped as pruned in the Optuna study.
- ``tpe_asha_stock``: the same with Ray's stock ``OptunaSearch``, which records an
  ASHA-stopped trial as complete with its last low-rung value.
- ``random_asha``: random sampling with ASHA.
- ``random_fifo``: random sampling, every trial runs ``max_t`` epochs.
- ``kerastuner``: KerasTuner's Hyperband tuner, one trial at a time, no Ray.
- ``optuna``: plain Optuna, TPE with its SuccessiveHalvingPruner, ``n_jobs=2``, no Ray.

CPU-seconds are the CPU time (``time.process_time``) of the processes that train,
counted from the end of their imports, so that a machine shared with other work
inflates them far less than wall time. Each epoch is charged the CPU time its
process used since that process's previous epoch, which includes validation,
checkpoints, model building and data generation between trials. Epochs are put in
the order the driver learned of them, and "CPU-seconds to target" is the sum up
to the first epoch with ``val_mae <= TARGET``. A search stops once the sum reaches
the budget. Each (method, seed) runs in its own process, so thread settings and
imports do not carry over.

    python benchmarks/search_efficiency.py --out search_efficiency.json
    python benchmarks/search_efficiency.py --out search_efficiency.json --quick

KerasTuner is a benchmark-only dependency: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import harness

# NOTE: every Ray Tune method reaches this target within its first few trials, which
# TPE and random search draw alike, so the ratios to random search stay near 1.
TARGET_VAL_MAE = 0.01
METHODS = ["tpe_asha", "tpe_asha_stock", "random_asha", "random_fifo", "kerastuner", "optuna"]
CPUS = 2
COLUMNS = ["method", "seed", "cpu_s_to_target", "best_val_mae", "cpu_s_spent", "epoch_wall_s_spent", "trials", "epochs", "wall_s"]


@dataclass(frozen=True)
class Size:
    """Data sizes, ASHA's settings and the CPU budget of one search."""

    n_train: int
    n_val: int
    max_t: int
    grace_period: int
    reduction_factor: int
    budget_cpu_s: float
    seeds: tuple[int, ...]


# On 2 quiet cores the full size takes about 40 minutes: 18 searches of about
# 2 minutes each. By an estimate from its budget, --quick takes 3 to 5 minutes.
# In a calibration run on 1,000 series, depth 1 with 64 units reached val_mae
# 0.0074 at epoch 12. max_t=27 with grace_period=3 gives rungs at 3, 9 and 27.
FULL = Size(n_train=1000, n_val=200, max_t=27, grace_period=3, reduction_factor=3, budget_cpu_s=180.0, seeds=(0, 1, 2))
QUICK = Size(n_train=500, n_val=100, max_t=9, grace_period=1, reduction_factor=3, budget_cpu_s=30.0, seeds=(0,))


@dataclass(frozen=True)
class Epoch:
    """One finished epoch of one trial."""

    finished_at: float  # time.perf_counter() when the driver learned of it
    trial: str
    epoch: int
    val_mae: float
    cpu_s: float  # CPU time of the training process since its previous epoch
    wall_s: float  # the epoch's training and validation wall time


class EpochLog:
    """Thread-safe list of finished epochs and the CPU-seconds they add up to."""

    def __init__(self, budget_cpu_s: float) -> None:
        self.budget_cpu_s = budget_cpu_s
        self.epochs: list[Epoch] = []
        self._cpu_s = 0.0
        self._lock = threading.Lock()
        self._last_process_cpu_s = time.process_time()

    def add(self, trial: str, epoch: int, val_mae: float, cpu_s: float, wall_s: float) -> None:
        with self._lock:
            self.epochs.append(Epoch(time.perf_counter(), trial, epoch, val_mae, cpu_s, wall_s))
            self._cpu_s += cpu_s

    def add_in_process(self, trial: str, epoch: int, val_mae: float, wall_s: float) -> None:
        """Record an epoch trained in this process, charged this process's CPU time since the last one."""
        with self._lock:
            now = time.process_time()
            cpu_s, self._last_process_cpu_s = now - self._last_process_cpu_s, now
        self.add(trial, epoch, val_mae, cpu_s, wall_s)

    @property
    def spent(self) -> bool:
        with self._lock:
            return self._cpu_s >= self.budget_cpu_s

    # Ray Tune pickles the RunConfig, and with it the stopper that contains this log.
    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def restart_clock(self) -> None:
        """Start charging CPU time from now, after the imports and the data."""
        self._last_process_cpu_s = time.process_time()


def summarize(epochs: list[Epoch], budget_cpu_s: float) -> dict[str, Any]:
    """Return the CPU-seconds to reach the target (None if never) and the best val_mae within the budget."""
    cpu_s = 0.0
    to_target = None
    best = math.inf
    for epoch in sorted(epochs, key=lambda item: item.finished_at):
        cpu_s += epoch.cpu_s
        if cpu_s > budget_cpu_s * 1.001:
            break
        if math.isfinite(epoch.val_mae):
            best = min(best, epoch.val_mae)
            if to_target is None and epoch.val_mae <= TARGET_VAL_MAE:
                to_target = cpu_s
    return {
        "cpu_s_to_target": to_target,
        "best_val_mae": best if math.isfinite(best) else None,
        "cpu_s_spent": min(cpu_s, budget_cpu_s),
        "epoch_wall_s_spent": sum(epoch.wall_s for epoch in epochs),
        "trials": len({epoch.trial for epoch in epochs}),
        "epochs": len(epochs),
    }


# ---------------------------------------------------------------- Ray Tune methods


def run_ray_method(method: str, size: Size, seed: int, log: EpochLog) -> None:
    """Run one of the Ray Tune methods through the product's ``build_tuner``."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from search.config import build_config
    from search.driver import build_tuner
    from search.ray_session import WORKER_ENV
    from search.searcher import optuna_space
    from search.trainable import METRIC, MODE

    class BudgetStopper(tune.Stopper):
        """Records each result's epoch and stops the whole search once the budget is spent."""

        def __init__(self) -> None:
            self.last_cpu_s: dict[int, float] = {}  # by worker process id

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            pid = result["worker_pid"]
            previous = self.last_cpu_s.get(pid, result["process_cpu_after_import_s"])
            self.last_cpu_s[pid] = result["process_cpu_s"]
            log.add(
                trial_id,
                int(result["epoch"]),
                float(result["val_mae"]),
                result["process_cpu_s"] - previous,
                float(result["epoch_time_s"]),
            )
            return False

        def stop_all(self) -> bool:
            return log.spent

    storage = tempfile.mkdtemp(prefix="lstm-tune-bench-")
    config = build_config(
        overrides={
            "data.n_train": size.n_train,
            "data.n_val": size.n_val,
            "search.samples": 10_000,  # the budget ends the search, not the sample count
            "search.seed": seed,
            "data.seed": seed,
            "asha.max_t": size.max_t,
            "asha.grace_period": size.grace_period,
            "asha.reduction_factor": size.reduction_factor,
            "run.storage": storage,
        }
    )

    space = optuna_space(config.space)
    searcher = None  # build_tuner's default: the product's AshaAwareOptunaSearch
    scheduler = None  # build_tuner's default: ASHA
    if method == "tpe_asha_stock":
        searcher = OptunaSearch(space=space, metric=METRIC, mode=MODE, sampler=optuna.samplers.TPESampler(seed=seed))
    elif method in ("random_asha", "random_fifo"):
        searcher = OptunaSearch(space=space, metric=METRIC, mode=MODE, sampler=optuna.samplers.RandomSampler(seed=seed))
    if method == "random_fifo":
        scheduler = FIFOScheduler()

    harness.start_local_ray(CPUS, runtime_env={"env_vars": dict(WORKER_ENV)})
    try:
        tuner, _ = build_tuner(config, f"{method}-{seed}", searcher=searcher, scheduler=scheduler, stop=BudgetStopper())
        tuner.fit()
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
    if not log.epochs:
        raise RuntimeError(f"{method}: the stopper saw no result; Ray Tune may have used a copy of it.")


# ---------------------------------------------------------------- peers without Ray


def _space_from_keras_tuner(hp: Any) -> dict[str, Any]:
    from search.config import SpaceConfig

    space = SpaceConfig()
    return {
        "depth": hp.Int("depth", space.depth[0], space.depth[1]),
        "units": hp.Int("units", space.units[0], space.units[1], sampling="log"),
        "batch_size": hp.Int("batch_size", space.batch_size[0], space.batch_size[1], sampling="log"),
        "learning_rate": hp.Float("learning_rate", space.learning_rate[0], space.learning_rate[1], sampling="log"),
    }


def run_kerastuner(size: Size, seed: int, log: EpochLog, train: Any, val: Any) -> None:
    """Run KerasTuner's Hyperband with the same space, ``max_t`` as max_epochs and the same factor."""
    import keras
    import keras_tuner

    from model import build_stacked_lstm

    class BudgetOracle(keras_tuner.oracles.HyperbandOracle):
        def populate_space(self, trial_id: str) -> dict[str, Any]:
            if log.spent:
                return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}
            return super().populate_space(trial_id)

    class Model(keras_tuner.HyperModel):
        def build(self, hp: Any) -> keras.Model:
            params = _space_from_keras_tuner(hp)
            return build_stacked_lstm(params["depth"], params["units"], train.X.shape[1], train.y.shape[1], params["learning_rate"])

        def fit(self, hp: Any, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
            kwargs["batch_size"] = hp.get("batch_size")
            return model.fit(*args, **kwargs)

    class EpochRecorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._started = 0.0
            self.trial = ""

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.trial = str(id(self.model))

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            val_mae = float((logs or {}).get("val_loss", math.nan))
            log.add_in_process(self.trial, epoch + 1, val_mae, time.perf_counter() - self._started)
            if log.spent:
                self.model.stop_training = True

    oracle = BudgetOracle(
        objective=keras_tuner.Objective("val_loss", "min"),
        max_epochs=size.max_t,
        factor=size.reduction_factor,
        hyperband_iterations=1000,  # the budget ends the search
        seed=seed,
    )
    with tempfile.TemporaryDirectory(prefix="lstm-tune-bench-kt-") as folder:
        tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=Model(), directory=folder, project_name="hyperband", overwrite=True)
        tuner.search(train.X, train.y, validation_data=(val.X, val.y), callbacks=[EpochRecorder()], verbose=0, shuffle=True)


def run_plain_optuna(size: Size, seed: int, log: EpochLog, train: Any, val: Any) -> None:
    """Run plain Optuna: TPE, SuccessiveHalvingPruner with ASHA's settings, two trials at once in threads."""
    import optuna

    from model import build_stacked_lstm, fit_epochs
    from search.config import SpaceConfig
    from search.searcher import optuna_space

    space = optuna_space(SpaceConfig())
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=size.grace_period, reduction_factor=size.reduction_factor
        ),
    )

    def objective(trial: optuna.Trial) -> float:
        params: dict[str, Any] = {}
        for name, distribution in space.items():
            if isinstance(distribution, optuna.distributions.IntDistribution):
                params[name] = trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)
            else:
                params[name] = trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
        model = build_stacked_lstm(
            int(params["depth"]), int(params["units"]), train.X.shape[1], train.y.shape[1], float(params["learning_rate"])
        )
        pruned = False

        def on_epoch_end(_model: Any, result: Any) -> bool:
            nonlocal pruned
            log.add_in_process(str(trial.number), result.epoch, result.val_mae, result.epoch_time_s)
            if not result.is_finite:
                return True
            trial.report(result.val_mae, result.epoch)
            pruned = trial.should_prune() or log.spent
            return pruned

        results = fit_epochs(
            model, train.X, train.y, val.X, val.y, epochs=size.max_t, batch_size=int(params["batch_size"]), on_epoch_end=on_epoch_end
        )
        if log.spent:
            trial.study.stop()
        if pruned:
            raise optuna.TrialPruned()
        values = [result.val_mae for result in results if result.is_finite]
        if not values:
            raise optuna.TrialPruned()  # diverged at once; Optuna records it as pruned, not as a value
        return min(values)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=10_000, n_jobs=2)


# ---------------------------------------------------------------- one search per process


def run_one(method: str, size: Size, seed: int, result_file: Path) -> None:
    log = EpochLog(size.budget_cpu_s)
    started = time.perf_counter()
    if method in ("kerastuner", "optuna"):
        from search.threads import configure_threads

        # Plain Optuna runs two trials at once in one process, so its TensorFlow
        # gets both CPUs. KerasTuner runs one trial at a time, and with one
        # thread, as a Ray trial does, it uses one CPU and leaves the other idle.
        configure_threads(CPUS if method == "optuna" else 1)
        import keras

        from data import generate_examples
        from search.trainable import TRAIN_STREAM, VAL_STREAM

        keras.utils.set_random_seed(seed)
        train = generate_examples(size.n_train, seed=[seed, TRAIN_STREAM])
        val = generate_examples(size.n_val, seed=[seed, VAL_STREAM])
        log.restart_clock()
        if method == "kerastuner":
            run_kerastuner(size, seed, log, train, val)
        else:
            run_plain_optuna(size, seed, log, train, val)
    else:
        run_ray_method(method, size, seed, log)

    summary = summarize(log.epochs, size.budget_cpu_s)
    summary["wall_s"] = time.perf_counter() - started
    result_file.write_text(json.dumps(summary))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--run-one":
        parser = argparse.ArgumentParser()
        parser.add_argument("--run-one", choices=METHODS, required=True)
        parser.add_argument("--seed", type=int, required=True)
        parser.add_argument("--quick", action="store_true")
        parser.add_argument("--result-file", type=Path, required=True)
        args = parser.parse_args()
        run_one(args.run_one, QUICK if args.quick else FULL, args.seed, args.result_file)
        return

    parser = harness.build_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run; defaults to 0 1 2, or 0 with --quick")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    if args.seeds:
        size = replace(size, seeds=tuple(args.seeds))

    runs: dict[str, list[dict[str, Any]]] = {method: [] for method in METHODS}
    rows = []
    for seed in size.seeds:
        for method in METHODS:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
                result_file = Path(handle.name)
            command = [sys.executable, __file__, "--run-one", method, "--seed", str(seed), "--result-file", str(result_file)]
            if args.quick:
                command.append("--quick")
            completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if completed.returncode != 0:
                sys.stderr.write(completed.stderr[-4000:])
                raise SystemExit(f"{method} with seed {seed} failed with exit status {completed.returncode}.")
            run = json.loads(result_file.read_text())
            result_file.unlink()
            runs[method].append(run)
            rows.append({"method": method, "seed": seed, **run})
            harness.print_table(rows[-1:], COLUMNS)

    print()
    harness.print_table(rows, COLUMNS)

    cpu_s_to_target = {method: [run["cpu_s_to_target"] for run in runs[method]] for method in METHODS}
    best_val_mae = {method: [run["best_val_mae"] for run in runs[method]] for method in METHODS}

    def ratio(method: str) -> float | None:
        # A method that never reached the target within the budget is counted at
        # the budget, so its ratio is a lower bound.
        ratios = []
        for ours, theirs in zip(cpu_s_to_target["tpe_asha"], cpu_s_to_target[method]):
            if ours is None:
                continue
            ratios.append((theirs if theirs is not None else size.budget_cpu_s) / ours)
        return harness.median(ratios)

    summary = {
        "target_val_mae": TARGET_VAL_MAE,
        "size": asdict(size),
        "cpu_s_to_target": cpu_s_to_target,
        "best_val_mae": best_val_mae,
        "ratio_random_asha": ratio("random_asha"),
        "ratio_random_fifo": ratio("random_fifo"),
        "ratio_kerastuner": ratio("kerastuner"),
        "ratio_optuna": ratio("optuna"),
        "ratio_tpe_asha_stock": ratio("tpe_asha_stock"),
        "runs": runs,
    }
    for key in ("ratio_random_asha", "ratio_random_fifo", "ratio_kerastuner", "ratio_optuna", "ratio_tpe_asha_stock"):
        print(f"{key}: {summary[key]}")
    harness.write_summary(args.out, "search_efficiency", args.quick, summary)


if __name__ == "__main__":
    main()
