"""Parts shared by every benchmark: the command line, the machine description, the table and the JSON summary."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# The benchmarks import the product's packages from the repository they live in,
# whether or not it is installed.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def build_parser(description: str) -> argparse.ArgumentParser:
    """Build a parser with ``--out FILE.json`` and ``--quick``, the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True, help="path of the JSON summary to write")
    parser.add_argument("--quick", action="store_true", help="run a smaller version that only checks the benchmark works")
    return parser


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser(description).parse_args(argv)


def machine() -> dict[str, Any]:
    """Describe the machine: CPU model from /proc/cpuinfo, cores, the current load and the Python version."""
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load_1m, _, _ = os.getloadavg()
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "load_average_1m_at_end": round(load_1m, 2),
        "python": platform.python_version(),
    }


def median(values: list[float]) -> float | None:
    finite = [value for value in values if value is not None]
    return statistics.median(finite) if finite else None


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print ``rows`` as an aligned text table with the given column order."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, list):
            return "[" + ", ".join(cell(item) for item in value) + "]"
        return str(value)

    text = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in text)) for i, column in enumerate(columns)]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths)))
    for line in text:
        print("  ".join(value.ljust(width) for value, width in zip(line, widths)))


def write_summary(path: Path, name: str, quick: bool, summary: dict[str, Any]) -> None:
    """Write the benchmark's summary with its name, date, machine and command to ``path``."""
    document = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": quick,
        "machine": machine(),
        **summary,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Wrote {path}.")


def start_local_ray(cpus: int, runtime_env: dict[str, Any] | None = None) -> None:
    """Start a local Ray with ``cpus`` CPUs, a 200 MB object store and no dashboard.

    Like the product's own local Ray, it listens on 127.0.0.1 only. Worker output
    stays in Ray's log files, so the benchmark's table is not interleaved with it.
    """
    import ray

    from search.ray_session import LOOPBACK, loopback_only

    with loopback_only():
        ray.init(
            address="local",
            num_cpus=cpus,
            include_dashboard=False,
            object_store_memory=200 * 1024 * 1024,
            runtime_env=runtime_env,
            log_to_driver=False,
            _node_ip_address=LOOPBACK,
        )
