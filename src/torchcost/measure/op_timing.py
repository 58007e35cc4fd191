"""Measured time of every counted operator, from ``torch.profiler``, matched to the profile's records.

The model runs a few times, without the counting mode, under the profiler. Each counted forward op is matched
to the profiler event of the same ATen op in the same order (composite ops such as ``aten::linear`` appear
around the ops they become and are skipped; the kernels an op calls are nested inside its event and are
skipped too). Modules get the sum of their ops' times, so no hook has to synchronise the device.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.autograd.profiler_util import FunctionEvent

from torchcost.errors import ProfilingError
from torchcost.measure.latency import measurement_conditions
from torchcost.prepare import InputSize, ModelState, prepare
from torchcost.profiler import profile as count
from torchcost.records import CostTotals, OpRecord, Profile

ITERATION = "torchcost::iteration"


def measure_ops(
    profile: Profile,
    model: nn.Module,
    *inputs: Any,
    input_size: InputSize | None = None,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    iterations: int = 5,
    warmup: int = 2,
    threads: int | None = None,
    **kwargs: Any,
) -> Profile:
    """Fill ``measured_s`` on the profile's forward records, modules and operators (median over iterations).

    ``profile`` must come from ``torchcost.profile`` with the same model, inputs and dtype. Each measured op is
    matched to the record of the run on its device: a profile counted elsewhere (on meta, the default) is counted
    again on the measuring device first, in place. Returns the same profile object.
    """
    prepared = prepare(model, inputs, kwargs, input_size, dtype, device)
    if prepared.device.type == "meta":
        raise ProfilingError("per-op times are measured on a device with data: give device='cpu' or 'cuda'")
    if str(prepared.device) != profile.device:
        recounted = count(model, *inputs, input_size=input_size, dtype=dtype, device=prepared.device, **kwargs)
        for name in ("device", "records", "modules", "operators", "uncounted", "memory_access", "flops", "macs"):
            setattr(profile, name, getattr(recounted, name))
    per_iteration = _profiled_iterations(prepared.model, prepared.inputs, prepared.kwargs, iterations, warmup, threads)
    forward = [i for i, r in enumerate(profile.records) if r.phase == "forward"]
    samples: list[list[float]] = [[] for _ in forward]
    for events in per_iteration:
        for slot, seconds in enumerate(match([profile.records[i] for i in forward], events)):
            if seconds is not None:
                samples[slot].append(seconds)
    records = list(profile.records)
    for slot, index in enumerate(forward):
        if samples[slot]:
            records[index] = dataclasses.replace(records[index], measured_s=statistics.median(samples[slot]))
    _attach(profile, records)
    return profile


def match(records: list[OpRecord], events: list[FunctionEvent]) -> list[float | None]:
    """Seconds for each record: the next event (in start order) with the record's op name, not nested inside
    the previously matched event; None where no such event follows."""
    times: list[float | None] = []
    position = 0
    for record in records:
        name = record.op.replace(".", "::", 1)
        found = next((j for j in range(position, len(events)) if events[j].name == name), None)
        if found is None:
            times.append(None)
            continue
        event = events[found]
        times.append(_seconds(event))
        end = event.time_range.end
        position = found + 1
        while position < len(events) and events[position].time_range.start < end:
            position += 1  # the matched op's own callees
    return times


def _seconds(event: FunctionEvent) -> float:
    device_us = getattr(event, "device_time_total", 0) or 0
    return (device_us or event.cpu_time_total) / 1e6


def _preorder(event: FunctionEvent) -> Iterator[FunctionEvent]:
    for child in sorted(event.cpu_children, key=lambda e: e.time_range.start):
        yield child
        yield from _preorder(child)


def _profiled_iterations(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    iterations: int,
    warmup: int,
    threads: int | None,
) -> list[list[FunctionEvent]]:
    activities = [torch.profiler.ProfilerActivity.CPU]
    if next(iter(model.parameters()), torch.empty(0)).is_cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # above its USDT level (5): no kineto log lines on stderr
    state = ModelState(model)
    with measurement_conditions(threads or torch.get_num_threads(), None, flush_denormal=True):
        try:
            model.eval()
            with torch.no_grad():  # as the counting run, so that the op sequences agree
                for _ in range(warmup):
                    model(*args, **kwargs)
                with torch.profiler.profile(activities=activities) as prof:
                    for _ in range(iterations):
                        with torch.profiler.record_function(ITERATION):
                            model(*args, **kwargs)
        finally:
            state.restore()
    marks = sorted((e for e in prof.events() if e.name == ITERATION), key=lambda e: e.time_range.start)
    return [list(_preorder(mark)) for mark in marks]


def _attach(profile: Profile, records: list[OpRecord]) -> None:
    profile.records = records
    modules = {m.name: m for m in profile.modules}
    operators = {o.op: o for o in profile.operators}
    for stats in [*modules.values(), *operators.values()]:
        stats.measured_s = None
    for record in records:
        if record.measured_s is None:
            continue
        targets: list[CostTotals] = [modules[name] for name in record.modules]
        if record.op in operators:
            targets.append(operators[record.op])
        for stats in targets:
            stats.measured_s = (stats.measured_s or 0.0) + record.measured_s
