"""Sweep the whole timm zoo on meta at each model's default resolution: the local pool with 1 and 2 workers,
and a local Ray with 2 CPUs. For each: models per minute, peak RSS per worker, the failures grouped by reason.

Each configuration is a fresh ``torchcost.sweep`` (one thread per worker); Ray's own start is timed apart and
left out of its rate. The summary goes to bench/results/sweep.json (bench/report.py puts it in
docs/benchmarks.md); the rows to --rows (a temporary folder by default). Run it on a quiet machine:

    .venv/bin/python bench/sweep.py                                   # the whole zoo, three configurations
    .venv/bin/python bench/sweep.py --limit 20 --results /tmp/sweep.json   # a check on 20 models of the zoo
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "sweep.json"
CONFIGS = {"pool-1": ("pool", 1), "pool-2": ("pool", 2), "ray-2": ("ray", 2)}
TIMEOUT_S = 300.0  # per model
EXAMPLES = 5  # model names kept per failure reason


def zoo(limit: int | None) -> list[str]:
    """Every timm model, or ``limit`` of them evenly spread over the alphabetical list (every family's turn)."""
    import timm

    names = [f"timm:{name}" for name in timm.list_models()]
    if limit is None or limit >= len(names):
        return names
    step = len(names) / limit
    return [names[int(i * step)] for i in range(limit)]


def run(config: str, specs: list[str], rows_dir: Path) -> dict[str, Any]:
    import torchcost

    backend, workers = CONFIGS[config]
    start_s = 0.0
    if backend == "ray":
        import ray

        begin = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        start_s = time.perf_counter() - begin
    out = rows_dir / f"{config}.jsonl"
    begin = time.perf_counter()
    result = torchcost.sweep(specs, out, workers=workers, ray=backend == "ray", timeout=TIMEOUT_S, progress=True)
    wall_s = time.perf_counter() - begin
    if backend == "ray":
        ray.shutdown()
    return summarise(config, result.rows, wall_s, start_s, workers)


def summarise(config: str, rows: list[Any], wall_s: float, start_s: float, workers: int) -> dict[str, Any]:
    from torchcost.sweep.failures import group_failures

    peaks: dict[str, int] = {}
    for row in rows:
        if row.worker and row.worker_peak_rss_bytes:
            peaks[row.worker] = max(peaks.get(row.worker, 0), row.worker_peak_rss_bytes)
    seconds = [row.seconds for row in rows if row.ok and row.seconds is not None]
    return {
        "config": config,
        "workers": workers,
        "models": len(rows),
        "counted": sum(row.ok for row in rows),
        "failed": sum(not row.ok for row in rows),
        "on_cpu": sum(row.device == "cpu" for row in rows),  # needed real data: counted on the cpu
        "wall_s": wall_s,
        "start_s": start_s,  # Ray's start, not in wall_s
        "models_per_minute": 60 * len(rows) / wall_s,
        "task_seconds_median": statistics.median(seconds) if seconds else None,
        "task_seconds_max": max(seconds) if seconds else None,
        "worker_processes": len(peaks),  # more than `workers` when crashes or timeouts replaced some
        "worker_peak_rss_bytes": {"max": max(peaks.values(), default=0), "median": statistics.median(peaks.values())}
        if peaks
        else None,
        "failures": [
            {"reason": g.reason, "count": len(g.specs), "examples": g.specs[:EXAMPLES]} for g in group_failures(rows)
        ],
    }


def environment() -> dict[str, Any]:
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for package in ("torch", "timm", "ray"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
        "versions": versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--limit", type=int, help="sweep this many models spread over the zoo instead of all")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"summary JSON (default {RESULTS})")
    parser.add_argument("--rows", type=Path, help="folder for the rows of each configuration (default: temporary)")
    args = parser.parse_args()
    specs = zoo(args.limit)
    data: dict[str, Any] = {"environment": environment(), "zoo": "timm:*", "zoo_size": len(zoo(None)), "runs": []}
    with tempfile.TemporaryDirectory() as temporary:
        rows_dir = args.rows or Path(temporary)
        rows_dir.mkdir(parents=True, exist_ok=True)
        for config in args.configs:
            summary = run(config, specs, rows_dir)
            data["runs"].append(summary)
            print(
                f"{config}: {summary['models']} models in {summary['wall_s']:.0f} s "
                f"({summary['models_per_minute']:.0f}/min), {summary['failed']} failed"
            )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
