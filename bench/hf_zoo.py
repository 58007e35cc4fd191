"""Every transformers model type that the installed transformers maps to an AutoModel class (any task's), profiled
with its default inputs on the default device (``hf:TYPE``: the library's default config, inputs made by the model's
own processors; counted on meta, and on the CPU where the model looks at values that depend on its weights), through
the sweep's worker pool. Records success, time and the reason of each failure, grouped;
bench/report.py puts the summary in docs/benchmarks.md.

    .venv/bin/python bench/hf_zoo.py                          # every type (about 15 min on 2 cores)
    .venv/bin/python bench/hf_zoo.py --types llava qwen2_vl   # a few, to check
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "hf_zoo.json"
TIMEOUT_S = 300.0  # per model type
EXAMPLES = 8  # model types kept per failure reason


def auto_model_types() -> list[str]:
    """Model types some AutoModel class (bare model or any task head) maps to a model class."""
    from transformers.models.auto import modeling_auto

    types: set[str] = set()
    for name, mapping in vars(modeling_auto).items():
        if name.startswith("MODEL") and name.endswith("MAPPING_NAMES") and isinstance(mapping, dict):
            types |= set(mapping)
    return sorted(types)


def run(types: list[str], rows_path: Path, workers: int) -> dict[str, Any]:
    import torchcost
    from torchcost.sweep.failures import group_failures

    begin = time.perf_counter()
    specs = [f"hf:{name}" for name in types]
    result = torchcost.sweep(specs, rows_path, workers=workers, timeout=TIMEOUT_S, progress=True)
    wall_s = time.perf_counter() - begin
    rows = result.rows
    seconds = [row.seconds for row in rows if row.ok and row.seconds is not None]
    return {
        "types": len(rows),
        "profiled": sum(row.ok for row in rows),
        "on_meta": sum(row.ok and row.device == "meta" for row in rows),
        "on_cpu": sorted(row.spec.removeprefix("hf:") for row in rows if row.ok and row.device != "meta"),
        "failed": sum(not row.ok for row in rows),
        "blocked_elsewhere": {
            why: sorted(row.spec.removeprefix("hf:") for row in rows if row.error and blocked(row.error))
            for why, blocked in BLOCKED_ELSEWHERE.items()
        },
        "with_uncounted_ops": sorted(row.spec for row in rows if row.ok and row.uncounted_calls),
        "wall_s": wall_s,
        "seconds_median": statistics.median(seconds) if seconds else None,
        "seconds_max": max(seconds) if seconds else None,
        "failures": [
            {"reason": g.reason, "count": len(g.specs), "types": [s.removeprefix("hf:") for s in g.specs]}
            for g in group_failures(rows)
        ],
    }


def _unbuildable(error: str) -> bool:
    """transformers cannot build the model from its own default config for this type (see sources/hf.py)."""
    unset = "building the model from this config failed" in error or "the config leaves" in error
    return unset or "Class validation error" in error  # the default config fails its own checks


# Failures that torchcost cannot remove, by what their error says
BLOCKED_ELSEWHERE = {
    "cannot be built from transformers' default config": _unbuildable,
    "need a library not installed here": lambda error: bool(
        re.search(r"requires the \w+ library|needs \w+, which is not installed", error)
    ),
    "have no forward": lambda error: "is missing the required" in error,
    "need a video-tracking inference_session": lambda error: "inference_session" in error,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--types", nargs="+", help="only these model types")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"summary JSON (default {RESULTS})")
    rows = Path(tempfile.gettempdir()) / "hf_zoo_rows.jsonl"
    parser.add_argument("--rows", type=Path, default=rows, help=f"one row per type (default {rows})")
    args = parser.parse_args()
    types = args.types or auto_model_types()
    args.rows.unlink(missing_ok=True)
    summary = run(types, args.rows, args.workers)
    summary["environment"] = {
        "date": time.strftime("%Y-%m-%d"),
        "transformers": metadata.version("transformers"),
        "torch": metadata.version("torch"),
        "workers": args.workers,
        "load_average_at_start": os.getloadavg()[0],
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(summary, indent=2) + "\n")
    share = summary["profiled"] / summary["types"]
    print(
        f"{summary['profiled']} of {summary['types']} types profiled ({share:.0%}), {summary['on_meta']} of them on "
        f"meta; wrote {args.results}"
    )


if __name__ == "__main__":
    main()
