"""CPU utilization of the laptop preset's search, and the fixed cost of a trial on a reused worker.

Utilization is the sum of the trials' training time (Ray Tune's ``time_total_s``,
the ``training_time_s`` column of a run) over the search's wall time times its
concurrent trial slots. The fixed cost of a trial is what it spends before its
first training step, split into imports (with TensorFlow's thread setup and
``clear_session``), data generation, model building and graph tracing. Only
trials after their worker's first count, because with ``reuse_actors=True`` the
first trial of a worker pays for importing TensorFlow once for all of them.

Graph tracing is estimated as the first epoch's time minus the median time of
the trial's later epochs, since every epoch does the same work and only the
first traces the training and validation steps.

    python benchmarks/orchestration.py --out orchestration.json
    python benchmarks/orchestration.py --out orchestration.json --quick
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from typing import Any

import harness

from ray import tune


class ResultRecorder(tune.Callback):
    """Keeps every result the driver receives, by trial id; Ray Tune calls it from the driver's one loop thread."""

    def __init__(self) -> None:
        self.results: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        self.results[trial.trial_id].append(dict(result))


def fixed_cost(results: list[dict[str, Any]]) -> dict[str, float] | None:
    """Split one trial's cost before its first training step, or None if it has too few epochs to estimate tracing."""
    epochs = sorted(results, key=lambda result: result["epoch"])
    if len(epochs) < 2 or epochs[0]["epoch"] != 1:
        return None
    first = epochs[0]
    later = statistics.median(result["epoch_time_s"] for result in epochs[1:])
    parts = {
        "import": first["setup_import_s"],
        "data": first["setup_data_s"],
        "build": first["setup_build_s"],
        "trace": max(0.0, first["epoch_time_s"] - later),
    }
    parts["total"] = sum(parts.values())
    return parts


def main() -> None:
    args = harness.parse_args(__doc__.splitlines()[0])

    from search.config import build_config
    from search.driver import build_tuner, max_concurrent_trials
    from search.ray_session import start_ray

    storage = tempfile.mkdtemp(prefix="lstm-tune-bench-")
    overrides: dict[str, Any] = {"run.storage": storage}
    if args.quick:
        overrides.update({"search.samples": 8, "data.n_train": 500, "data.n_val": 125, "asha.max_t": 9})
    config = build_config(preset="laptop", overrides=overrides)

    import ray

    start_ray(None, config.resources.num_cpus)
    try:
        slots = max_concurrent_trials(config)
        recorder = ResultRecorder()
        tuner, _ = build_tuner(config, "orchestration", callbacks=[recorder])
        started = time.perf_counter()
        tuner.fit()
        wall_s = time.perf_counter() - started
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)

    trial_time_s = sum(max(result["time_total_s"] for result in results) for results in recorder.results.values())
    epoch_time_s = sum(result["epoch_time_s"] for results in recorder.results.values() for result in results)

    # Seconds between one epoch's end and the next report, spent on the
    # checkpoint and the report itself.
    report_overhead = [
        result["time_this_iter_s"] - result["epoch_time_s"]
        for results in recorder.results.values()
        for result in results
        if result["epoch"] > 1
    ]

    costs = []
    for trial_id, results in recorder.results.items():
        if results[0]["worker_trial"] > 1:
            cost = fixed_cost(results)
            if cost is not None:
                costs.append({"trial": trial_id, "worker_pid": results[0]["worker_pid"], **cost})
    harness.print_table(costs, ["trial", "worker_pid", "import", "data", "build", "trace", "total"])

    workers = {results[0]["worker_pid"] for results in recorder.results.values()}
    summary = {
        "utilization": trial_time_s / (wall_s * slots),
        "training_utilization": epoch_time_s / (wall_s * slots),
        "fixed_cost_s_median": harness.median([cost["total"] for cost in costs]),
        "fixed_cost_breakdown_s": {
            part: harness.median([cost[part] for cost in costs]) for part in ("import", "data", "build", "trace")
        },
        "report_overhead_s_median": harness.median(report_overhead),
        "wall_s": wall_s,
        "slots": slots,
        "trials": len(recorder.results),
        "worker_processes": len(workers),
        "trials_on_reused_workers": len(costs),
        "config": {
            "samples": config.search.samples,
            "n_train": config.data.n_train,
            "n_val": config.data.n_val,
            "max_t": config.asha.max_t,
            "grace_period": config.asha.grace_period,
            "reduction_factor": config.asha.reduction_factor,
        },
    }
    print(
        f"utilization {summary['utilization']:.3f} (training only {summary['training_utilization']:.3f}) over "
        f"{wall_s:.0f} s and {slots} slots; median fixed cost {summary['fixed_cost_s_median']} s "
        f"over {len(costs)} trials on reused workers; {len(workers)} worker processes for {len(recorder.results)} trials"
    )
    harness.write_summary(args.out, "orchestration", args.quick, summary)


if __name__ == "__main__":
    main()
