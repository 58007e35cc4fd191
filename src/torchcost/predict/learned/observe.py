"""Measure sampled ops of every class on this machine and turn them into observations (features, time).

Each sample is counted as a profile counts it (so its features are those ``predict`` will see) and timed with
``torch.utils.benchmark`` (the median of blocked runs). The machine must be quiet: its load is checked before
and after, and a calibration taken while other work ran is refused (see ``calibrate``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from torchcost.counting.mode import CountingMode
from torchcost.counting.module_stack import ModuleStack
from torchcost.predict.learned.features import features
from torchcost.predict.learned.regression import Observation
from torchcost.predict.learned.sampling import SAMPLERS, Sample
from torchcost.predict.taxonomy import op_class
from torchcost.records import OpRecord

SAMPLES_PER_CLASS = {"quick": 10, "default": 64}  # 48 left the first calibration of a 2-core VM at 24% held out
MIN_TIME_S = {"quick": 0.02, "default": 0.05}  # of timed runs per sample
MODULE_CHAIN = 64


def main_record(sample: Sample) -> OpRecord | None:
    """The record of the sampled op (the costliest one of its class), as a profile of it would hold."""
    stack = ModuleStack({})
    with torch.no_grad(), stack, CountingMode(stack) as mode:
        sample.call()
    mine = [r for r in mode.records if op_class(r) == sample.op_class]
    return max(mine, key=lambda r: (r.cost.flops, r.cost.memory_access), default=None)


def observe(
    seconds: Callable[[Callable[[], Any], float], float],
    effort: str,
    cache_bytes: int,
    seed: int = 0,
    advance: Callable[[], None] = lambda: None,
    classes: Sequence[str] = tuple(SAMPLERS),
    per_class: int | None = None,
) -> list[Observation]:
    """Sample, count and time ``per_class`` (by default ``SAMPLES_PER_CLASS[effort]``) ops of each class."""
    rng = random.Random(seed)
    observations = []
    for name in classes:
        sampler = SAMPLERS[name]
        for _ in range(per_class or SAMPLES_PER_CLASS[effort]):
            sample = sampler(rng)
            record = main_record(sample)
            if record is not None:
                took = timed_as_measured(seconds, sample.call, MIN_TIME_S[effort])
                observations.append(Observation(name, tuple(features(record, cache_bytes)), took, sample.label))
            advance()
    return observations


def timed_as_measured(
    seconds: Callable[[Callable[[], Any], float], float], call: Callable[[], Any], min_time: float
) -> float:
    """Timed as ``torchcost.measure`` times a model: in inference mode, denormals flushed."""
    torch.set_flush_denormal(True)
    try:
        with torch.inference_mode():
            return seconds(call, min_time)
    finally:
        torch.set_flush_denormal(False)  # PyTorch's default


class _Pass(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def module_call_seconds(seconds: Callable[[Callable[[], Any], float], float], min_time: float) -> float:
    """What calling a module costs beyond its ops (``nn.Module.__call__``, hooks, the Python of ``forward``)."""
    chain = nn.Sequential(*[_Pass() for _ in range(MODULE_CHAIN)])
    x = torch.zeros(1)
    return timed_as_measured(seconds, lambda: chain(x), min_time) / MODULE_CHAIN


PROBE_RUNS = 5  # the probe's time is the least of this many short runs: a virtual machine's hiccups drop out


def reference_seconds(seconds: Callable[[Callable[[], Any], float], float], min_time: float) -> float:
    """A fixed probe (a 256 x 256 matrix product), timed at the start and the end of a calibration: when other
    work takes the cores all along, its time moves, and the calibration is not kept. The least of a few short
    runs (on a shared 2-core VM one run of it moves by up to 25% from one minute to the next; the least of five,
    by under 10%)."""
    a = torch.randn(256, 256)
    with torch.no_grad():
        return min(seconds(lambda: torch.mm(a, a), min_time / PROBE_RUNS) for _ in range(PROBE_RUNS))
