"""Trials per second and the driver's peak memory for 500 and 2,000 trials, with no TensorFlow.

A synthetic trainable reports a learning curve that costs nothing to compute,
with a small checkpoint after every epoch as the real trainable does. It runs
through the product's ``build_tuner``: ``AshaAwareOptunaSearch``, ASHA, 1 CPU per
trial, ``reuse_actors=True`` and the same RunConfig. What is left is the cost of
the driver: Optuna's sampler, ASHA, Ray Tune's bookkeeping and checkpoints.

Each trial count runs in its own process on a local Ray with 2 CPUs, so the peak
resident memory of that process (``ru_maxrss``) is the driver's alone. It
excludes Ray's own processes (GCS, raylet, workers).

    python benchmarks/driver_scale.py --out driver_scale.json
    python benchmarks/driver_scale.py --out driver_scale.json --quick
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness

FULL_TRIALS = (500, 2000)
QUICK_TRIALS = (100, 400)
CPUS = 2
MAX_T = 9
GRACE_PERIOD = 1
REDUCTION_FACTOR = 3


def synthetic_trial(config: dict[str, Any]) -> None:
    """Report a learning curve that falls faster for learning rates near 3e-3, one epoch per report."""
    from ray import tune

    distance = abs(math.log10(config["learning_rate"] / 3e-3))
    floor = 0.005 + 0.01 * distance + 0.002 * abs(config["depth"] - 2)
    best = math.inf
    for epoch in range(1, MAX_T + 1):
        val_mae = floor + 0.04 * math.exp(-epoch / (1.0 + distance))
        best = min(best, val_mae)
        metrics = {"epoch": epoch, "val_mae": val_mae, "best_val_mae": best, "epoch_time_s": 0.0, "diverged": False}
        with tempfile.TemporaryDirectory(prefix="lstm-tune-bench-checkpoint-") as folder:
            (Path(folder) / "state.json").write_text(json.dumps({"epoch": epoch, "best_val_mae": best}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def run_one(trials: int) -> dict[str, Any]:
    import ray
    from ray import tune

    from search.config import build_config
    from search.driver import build_tuner

    storage = tempfile.mkdtemp(prefix="lstm-tune-bench-")
    config = build_config(
        overrides={
            "search.samples": trials,
            "asha.max_t": MAX_T,
            "asha.grace_period": GRACE_PERIOD,
            "asha.reduction_factor": REDUCTION_FACTOR,
            "run.storage": storage,
        }
    )
    harness.start_local_ray(CPUS)
    try:
        trainable = tune.with_resources(synthetic_trial, {"cpu": config.resources.cpus_per_trial})
        tuner, _ = build_tuner(config, f"driver-scale-{trials}", trainable=trainable)
        started = time.perf_counter()
        results = tuner.fit()
        wall_s = time.perf_counter() - started
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)

    completed = sum(1 for result in results if result.error is None)
    return {
        "trials": trials,
        "completed": completed,
        "wall_s": wall_s,
        "trials_per_s": completed / wall_s,
        # Linux reports ru_maxrss in KiB.
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--run-one":
        print(json.dumps(run_one(int(sys.argv[2]))))
        return

    args = harness.parse_args(__doc__.splitlines()[0])
    runs = []
    for trials in QUICK_TRIALS if args.quick else FULL_TRIALS:
        completed = subprocess.run(
            [sys.executable, __file__, "--run-one", str(trials)],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        if completed.returncode != 0:
            sys.stderr.write(completed.stderr[-4000:])
            raise SystemExit(f"The run of {trials} trials failed with exit status {completed.returncode}.")
        runs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        harness.print_table(runs[-1:], ["trials", "completed", "wall_s", "trials_per_s", "driver_peak_rss_mb"])

    print()
    harness.print_table(runs, ["trials", "completed", "wall_s", "trials_per_s", "driver_peak_rss_mb"])
    summary = {"runs": runs, "settings": {"cpus": CPUS, "max_t": MAX_T, "grace_period": GRACE_PERIOD, "reduction_factor": REDUCTION_FACTOR}}
    harness.write_summary(args.out, "driver_scale", args.quick, summary)


if __name__ == "__main__":
    main()
