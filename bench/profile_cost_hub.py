"""profile() against one plain forward for every torchvision classification model, batch 1, 224x224.

The issue's target is per model ("at most 1.0x one forward for every torchvision classification model"), so this
runs them all, in ``list_models`` order, at the machine's default thread count: each model built with random
weights (eval); one forward and one ``profile(model, x)`` ("first": the model's first profile, after the models
before it taught the dispatch their signatures, which is what a sweep over the hub pays); a second profile (the meta
copy kept from here); then REPEATS interleaved pairs of a plain forward (``torch.no_grad()``) and a profile (the
copy lent), and their medians. ``bench/profile_cost.py`` splits the cost on nine models; this one counts how many
models meet the target. Results go to bench/results/profile_cost_hub.json; run on a quiet machine:

    .venv/bin/python bench/profile_cost_hub.py
    .venv/bin/python bench/profile_cost_hub.py --models squeezenet1_0 alexnet --repeats 3   # a check
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torchvision
from profile_cost import built, environment, options, seconds

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
    }


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
              f"profile {c['profile_s'] * 1e3:.1f} ms ({c['ratio']:.2f}x, {c['per_op_us']:.0f} µs an op), "
              f"first {c['first_ratio']:.2f}x", flush=True)  # fmt: skip
    data = {
        "environment": environment(args.repeats, load, args.code) | {"minutes": (time.perf_counter() - began) / 60},
        "median_ratio": statistics.median(c["ratio"] for c in cases),
        "median_first_ratio": statistics.median(c["first_ratio"] for c in cases),
        "above_one": [c["model"] for c in cases if c["ratio"] > 1.0],
        "cases": cases,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=2) + "\n")
    print(f"median over {len(cases)} models, {data['environment']['threads']} threads: profile() "
          f"{data['median_ratio']:.2f}x a forward ({data['median_first_ratio']:.2f}x its first); above 1.0x: "
          f"{', '.join(data['above_one']) or 'none'}; wrote {args.results}")  # fmt: skip


if __name__ == "__main__":
    main()
