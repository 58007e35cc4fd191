"""What profiling costs against one plain forward pass, at the machine's default thread count (what a user gets).

For each torchvision model: the median of REPEATS plain forwards (eval, ``torch.no_grad()``), of ``profile(model,
x)`` with its default ``device="auto"`` (a meta copy: no kernel computes) twice, once with what earlier calls on
the model left (what counting learnt of the ops' signatures, ``counting.mode.REPLAYS``, and the model's meta copy,
``meta_copies.META_COPIES``: a sweep, a comparison, a batch grid) and once on a model object never profiled, with
what was learnt of signatures forgotten for that call ("cold": the first profile of a model in a process; the
object is a ``deepcopy`` made before the clock starts), and of ``profile(model, x, device="cpu")`` (the forward
runs under the counting mode), interleaved in one process so that the machine's state is shared by all; then the
first CALLS profiles of a fresh model object, in order (a meta copy is kept from a model's second profile on, and
lent from its third). Results go to bench/results/profile_cost.json; run on a quiet machine:

    .venv/bin/python bench/profile_cost.py
    .venv/bin/python bench/profile_cost.py --models resnet18 --repeats 3     # a check
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torchvision

import torchcost
from torchcost.counting.mode import REPLAYS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "profile_cost.json"
MODELS = ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_1_6gf", "densenet121", "resnet18",
          "resnet50", "convnext_tiny", "vit_b_16"]  # fmt: skip
REPEATS = 7
CALLS = 5


def seconds(fn: Any) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def options(doc: str | None, models: list[str], repeats: int, results: Path) -> argparse.Namespace:
    """The command line these benchmarks share: models, repeats, where the results go, what code was measured."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=models)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--results", type=Path, default=results)
    parser.add_argument("--code", default="", help="what code was measured (a commit), kept with the results")
    return parser.parse_args()


def environment(repeats: int, load: float, code: str) -> dict[str, Any]:
    """The conditions kept with a run's results: date, threads, torch, repeats, load at the start, the code."""
    return {
        "date": time.strftime("%Y-%m-%d"),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "repeats": repeats,
        "load_average_at_start": load,
        **({"code": code} if code else {}),
    }


def write_results(path: Path, data: dict[str, Any]) -> None:
    """A run's results, as JSON, where ``--results`` says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def built(name: str) -> tuple[torch.nn.Module, torch.Tensor, Any]:
    """A torchvision model with random weights (eval), its batch-1 224x224 input, and its plain forward."""
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, 224, 224)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    return model, x, forward


def case(name: str, repeats: int) -> dict[str, Any]:
    model, x, forward = built(name)
    unseen = [copy.deepcopy(model) for _ in range(repeats + 1)]  # for the cold calls, one each

    def cold() -> None:
        kept = dict(vars(REPLAYS))  # put back after: the other calls keep what they learnt
        REPLAYS.clear()
        try:
            torchcost.profile(unseen.pop(), x)
        finally:
            vars(REPLAYS).update(kept)

    runs: dict[str, list[float]] = {"forward": [], "auto": [], "cold": [], "cpu": []}
    calls = {"forward": forward, "auto": lambda: torchcost.profile(model, x), "cold": cold, "cpu": lambda: (
        torchcost.profile(model, x, device="cpu"))}  # fmt: skip
    for call in calls.values():  # warm-up: first-call allocations and lazy imports
        call()
    for _ in range(repeats):
        for kind, call in calls.items():
            runs[kind].append(seconds(call))
    median = {kind: statistics.median(times) for kind, times in runs.items()}
    in_order = []  # a model object's first CALLS profiles, one list per fresh object
    for _ in range(repeats):
        again = functools.partial(torchcost.profile, copy.deepcopy(model), x)
        in_order.append([seconds(again) for _ in range(CALLS)])
    return {
        "model": name,
        "profile_calls_s": [statistics.median(times[i] for times in in_order) for i in range(CALLS)],
        "forward_s": median["forward"],
        "profile_auto_s": median["auto"],
        "profile_cold_s": median["cold"],
        "profile_cpu_s": median["cpu"],
        "auto_ratio": median["auto"] / median["forward"],
        "cold_ratio": median["cold"] / median["forward"],
        "cpu_ratio": median["cpu"] / median["forward"],
    }


def main() -> None:
    args = options(__doc__, MODELS, REPEATS, RESULTS)
    load = os.getloadavg()[0]
    cases = []
    for name in args.models:
        cases.append(case(name, args.repeats))
        c = cases[-1]
        in_order = ", ".join(f"{t * 1e3:.1f}" for t in c["profile_calls_s"])
        print(f"{name}: forward {c['forward_s'] * 1e3:.1f} ms, profile {c['auto_ratio']:.2f}x (auto), "
              f"{c['cold_ratio']:.2f}x (auto, cold), {c['cpu_ratio']:.2f}x (cpu); calls 1-{CALLS} of one model: "
              f"{in_order} ms", flush=True)  # fmt: skip
    data = {
        "environment": environment(args.repeats, load, args.code),
        "median_auto_ratio": statistics.median(c["auto_ratio"] for c in cases),
        "median_cold_ratio": statistics.median(c["cold_ratio"] for c in cases),
        "median_cpu_ratio": statistics.median(c["cpu_ratio"] for c in cases),
        "cases": cases,
    }
    write_results(args.results, data)
    print(f"median over {len(cases)} models, {data['environment']['threads']} threads: profile() "
          f"{data['median_auto_ratio']:.2f}x a forward (auto), {data['median_cold_ratio']:.2f}x (auto, cold), "
          f"{data['median_cpu_ratio']:.2f}x (cpu); "
          f"wrote {args.results}")  # fmt: skip


if __name__ == "__main__":
    main()
