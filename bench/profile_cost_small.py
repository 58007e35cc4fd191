"""What a profile costs apart from its ops: the cost of one more module, called or not, and the cost of a profile
that finds the caches cold.

- one more leaf module call: a ``Sequential`` of a 1x1 convolution and 1, then 101 leaves (ReLU, 1x1 convolution,
  BatchNorm2d), profiled on its lent meta copy; the slope between the two, per leaf;
- one more module never called: the same with the leaves held in an ``nn.ModuleList`` the forward does not use;
- cold caches: a model of one convolution (and ``--models``, torchvision models) profiled in a row, right after
  streaming 256 MB through the caches, and after a 50 ms sleep (what an interleaved benchmark's profile finds after
  a forward).

Medians; pin it to one core on a quiet machine for the slopes. Results go to bench/results/profile_cost_small.json:

    taskset -c 0 .venv/bin/python bench/profile_cost_small.py
    taskset -c 0 .venv/bin/python bench/profile_cost_small.py --models vgg11 alexnet --repeats 50
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision
from profile_cost import environment, options, seconds, write_results
from torch import nn

import torchcost

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "profile_cost_small.json"
LEAVES: dict[str, Callable[[], nn.Module]] = {
    "ReLU": nn.ReLU,
    "Conv2d 1x1": lambda: nn.Conv2d(8, 8, 1),
    "BatchNorm2d": lambda: nn.BatchNorm2d(8),
}


class Unused(nn.Module):
    """A convolution, and ``n`` modules its forward never calls."""

    def __init__(self, make: Callable[[], nn.Module], n: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)
        self.unused = nn.ModuleList([make() for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def warm_median(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """The median of ``repeats`` profiles in a row, from the model's seventh (its copy lent, its calls learnt)."""
    for _ in range(6):
        torchcost.profile(model, x)
    return statistics.median(seconds(lambda: torchcost.profile(model, x)) for _ in range(repeats))


def per_module(repeats: int) -> dict[str, dict[str, float]]:
    x = torch.randn(1, 8, 16, 16)
    found = {}
    for kind, make in LEAVES.items():

        def called(n: int, make: Callable[[], nn.Module] = make) -> nn.Module:
            return nn.Sequential(nn.Conv2d(8, 8, 1), *[make() for _ in range(n)]).eval()

        def unused(n: int, make: Callable[[], nn.Module] = make) -> nn.Module:
            return Unused(make, n).eval()

        found[kind] = {
            name: (warm_median(build(101), x, repeats) - warm_median(build(1), x, repeats)) / 100 * 1e6
            for name, build in (("called_us", called), ("never_called_us", unused))
        }
        print(f"one more {kind}: {found[kind]['called_us']:.1f} µs called, {found[kind]['never_called_us']:.1f} µs "
              "never called", flush=True)  # fmt: skip
    return found


def cold(name: str, model: nn.Module, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """A profile's median in a row, after streaming 256 MB through the caches, and after a 50 ms sleep."""
    stream = torch.ones(64, 1024, 1024)  # 256 MB
    warm_median(model, x, 1)
    runs: dict[str, list[float]] = {"in_a_row_ms": [], "after_streaming_ms": [], "after_sleep_ms": []}
    for _ in range(repeats):
        stream.mul_(1.0)
        runs["after_streaming_ms"].append(seconds(lambda: torchcost.profile(model, x)) * 1e3)
        runs["in_a_row_ms"].append(seconds(lambda: torchcost.profile(model, x)) * 1e3)
        time.sleep(0.05)
        runs["after_sleep_ms"].append(seconds(lambda: torchcost.profile(model, x)) * 1e3)
    found = {kind: statistics.median(times) for kind, times in runs.items()}
    print(f"{name}: in a row {found['in_a_row_ms']:.2f} ms, after streaming 256 MB {found['after_streaming_ms']:.2f} "
          f"ms, after a 50 ms sleep {found['after_sleep_ms']:.2f} ms", flush=True)  # fmt: skip
    return found


def main() -> None:
    args = options(__doc__, ["vgg11", "alexnet"], 30, RESULTS)
    load = os.getloadavg()[0]
    data: dict[str, Any] = {"environment": environment(args.repeats, load, args.code)}
    data["per_module"] = per_module(args.repeats)
    one_conv = nn.Sequential(nn.Conv2d(3, 8, 3)).eval()
    data["cold"] = {"one convolution": cold("one convolution", one_conv, torch.randn(1, 3, 32, 32), args.repeats)}
    for name in args.models:
        model = torchvision.models.get_model(name, weights=None).eval()
        data["cold"][name] = cold(name, model, torch.randn(1, 3, 224, 224), args.repeats)
    write_results(args.results, data)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
