"""Time the laptop preset end to end and record its test MAE beside the baselines.

Runs ``lstm-tune search --preset laptop`` in a fresh process on a local Ray, as a
user would, then reads the run's best.json.

    python benchmarks/laptop_preset.py --out laptop.json
    python benchmarks/laptop_preset.py --quick --out smoke.json   # the smoke preset instead
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe_machine  # noqa: E402

TARGET_TEST_MAE = 0.005
TARGET_WALL_TIME_S = 20 * 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="path of the JSON summary to write")
    parser.add_argument("--quick", action="store_true", help="run the smoke preset instead of the laptop preset")
    parser.add_argument("--keep", metavar="DIR", help="store the run under DIR instead of a temporary folder")
    args = parser.parse_args()
    preset = "smoke" if args.quick else "laptop"

    with tempfile.TemporaryDirectory(prefix="lstm-tune-bench-") as scratch:
        storage = Path(args.keep or scratch)
        command = [sys.executable, "-m", "search", "search", "--preset", preset, "--storage", str(storage), "--name", preset]
        started = time.perf_counter()
        completed = subprocess.run(command, check=False)
        wall_time_s = time.perf_counter() - started
        if completed.returncode != 0:
            print(f"lstm-tune search exited with status {completed.returncode}.", file=sys.stderr)
            return completed.returncode
        best = json.loads((storage / preset / "best.json").read_text())

    summary = {
        "preset": preset,
        "command": " ".join(["lstm-tune"] + command[3:]),
        "wall_time_s": round(wall_time_s, 1),
        "search_wall_time_s": round(best["search"]["wall_time_s"], 1),
        "retrain_wall_time_s": round(best["retrain"]["wall_time_s"], 1),
        "test_mae": best["test_mae"],
        "baselines": best["baselines"],
        "best_config": best["config"],
        "meets_test_mae_target": best["test_mae"] <= TARGET_TEST_MAE,
        "meets_wall_time_target": wall_time_s <= TARGET_WALL_TIME_S,
        "machine": describe_machine(),
    }
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")

    print(f"\n{'preset':<24}{preset}")
    print(f"{'wall time':<24}{wall_time_s:.1f} s (target <= {TARGET_WALL_TIME_S} s)")
    print(f"{'tuned test MAE':<24}{best['test_mae']:.5f} (target <= {TARGET_TEST_MAE})")
    for name, value in best["baselines"].items():
        print(f"{name + ' test MAE':<24}{value:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
