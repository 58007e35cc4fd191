"""profile() against one plain forward for every torchvision classification model, batch 1, 224x224.

The issue's target is per model ("at most 1.0x one forward for every torchvision classification model"), so this
runs them all, in ``list_models`` order, at the machine's default thread count: each model built with random
weights (eval); one forward and one ``profile(model, x)`` ("first": the model's first profile, after the models
before it taught the dispatch their signatures, which is what a sweep over the hub pays); a second profile (the meta
copy kept from here); then REPEATS interleaved pairs of a plain forward (``torch.no_grad()``) and a profile (the
copy lent), and their medians; then REPEATS profiles in a row ("in a row": right after a forward, which streams the
model's weights through the caches, a small model's profile takes up to three times as long). Per op: a profile's
time over its ops; and the cost of one more op, from a least-squares line through every model's time against its
ops (what a model with few ops pays apart from its ops is the line's intercept). ``bench/profile_cost.py`` splits
the cost on nine models; this one counts how many models meet the targets. Results go to
bench/results/profile_cost_hub.json; run on a quiet machine:

    .venv/bin/python bench/profile_cost_hub.py
    .venv/bin/python bench/profile_cost_hub.py --models squeezenet1_0 alexnet --repeats 3   # a check
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torchvision
from profile_cost import built, environment, options, seconds, write_results

import torchcost

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "profile_cost_hub.json"
REPEATS = 5


def case(name: str, repeats: int) -> dict[str, Any]:
    model, x, forward = built(name)
    forward()  # first-call allocations
    first = seconds(lambda: torchcost.profile(model, x))
    second = seconds(lambda: torchcost.profile(model, x))
    forwards, profiles = [], []
    for _ in range(repeats):
        forwards.append(seconds(forward))
        profiles.append(seconds(lambda: torchcost.profile(model, x)))
    in_a_row = [seconds(lambda: torchcost.profile(model, x)) for _ in range(repeats)]
    ops = len(torchcost.profile(model, x).records)
    forward_s, profile_s = statistics.median(forwards), statistics.median(profiles)
    return {
        "model": name,
        "ops": ops,
        "forward_s": forward_s,
        "profile_s": profile_s,
        "first_s": first,
        "second_s": second,
        "ratio": profile_s / forward_s,
        "first_ratio": first / forward_s,
        "per_op_us": profile_s / ops * 1e6,
        "in_a_row_s": statistics.median(in_a_row),
        "per_op_in_a_row_us": statistics.median(in_a_row) / ops * 1e6,
    }


def per_op_line(cases: list[dict[str, Any]]) -> dict[str, float] | None:
    """The least-squares line through the models' profile times against their ops: the cost of one more op and what
    a profile pays apart from its ops (None for models of fewer than two op counts: no line)."""
    if len({c["ops"] for c in cases}) < 2:
        return None
    fit = statistics.linear_regression([c["ops"] for c in cases], [c["profile_s"] for c in cases])
    return {"per_op_us": fit.slope * 1e6, "intercept_ms": fit.intercept * 1e3}


def main() -> None:
    args = options(__doc__, torchvision.models.list_models(module=torchvision.models), REPEATS, RESULTS)
    load = os.getloadavg()[0]
    began = time.perf_counter()
    cases = []
    for number, name in enumerate(args.models, 1):
        cases.append(case(name, args.repeats))
        gc.collect()  # the model just measured goes before the next is built
        c = cases[-1]
        print(f"[{number}/{len(args.models)}] {name}: {c['ops']} ops, forward {c['forward_s'] * 1e3:.1f} ms, "
              f"profile {c['profile_s'] * 1e3:.1f} ms ({c['ratio']:.2f}x, {c['per_op_us']:.0f} µs an op; in a row "
              f"{c['per_op_in_a_row_us']:.0f}), first {c['first_ratio']:.2f}x", flush=True)  # fmt: skip
    data = {
        "environment": environment(args.repeats, load, args.code) | {"minutes": (time.perf_counter() - began) / 60},
        "median_ratio": statistics.median(c["ratio"] for c in cases),
        "median_first_ratio": statistics.median(c["first_ratio"] for c in cases),
        "above_one": [c["model"] for c in cases if c["ratio"] > 1.0],
        "per_op_above_40_us": [c["model"] for c in cases if c["per_op_us"] > 40],
        "per_op_above_40_us_in_a_row": [c["model"] for c in cases if c["per_op_in_a_row_us"] > 40],
        "per_op_line": per_op_line(cases),
        "cases": cases,
    }
    write_results(args.results, data)
    line = data["per_op_line"]
    one_more = f"; one more op {line['per_op_us']:.1f} µs" if line else ""
    print(f"median over {len(cases)} models, {data['environment']['threads']} threads: profile() "
          f"{data['median_ratio']:.2f}x a forward ({data['median_first_ratio']:.2f}x its first); above 1.0x: "
          f"{', '.join(data['above_one']) or 'none'}; per op above 40 µs: {len(data['per_op_above_40_us'])} models "
          f"({len(data['per_op_above_40_us_in_a_row'])} in a row){one_more}; wrote {args.results}")  # fmt: skip


if __name__ == "__main__":
    main()
