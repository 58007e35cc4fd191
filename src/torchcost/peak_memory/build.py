"""From storage lifetimes to a ``MemoryProfile``: each storage's category, live bytes per category after every
op, the peak and where it is, and per-module figures."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from torchcost.peak_memory.memory_profile import CATEGORIES, ModuleMemory, PeakAt, TimelinePoint
from torchcost.peak_memory.tracker import Lifetimes

OUTSIDE = "-"  # module shown for ops run outside the model (the loss, the optimizer)


@dataclass
class Built:
    timeline: list[TimelinePoint]
    peak: TimelinePoint
    phase_peaks: dict[str, int]
    modules: list[ModuleMemory]


def categories(seen: Lifetimes) -> list[str]:
    """Each storage's category. Known up front (parameters, inputs, ...) or labelled after the run (gradients,
    outputs, ...); otherwise, in a training step, a storage made in forward and still alive when backward
    starts is an activation held for backward, and anything else is a temporary."""
    found = []
    start = seen.backward_from
    for index, life in enumerate(seen.lives):
        category = life.category or seen.labelled.get(index)
        if category is None:
            held = start is not None and life.phase == "forward" and (life.died is None or life.died > start)
            category = "activations" if held else "temporaries"
        found.append(category)
    return found


def live_bytes(seen: Lifetimes, kinds: list[str], order: list[str]) -> list[list[int]]:
    """Live bytes of each category (in ``order``) at steps 0..N."""
    steps = len(seen.steps)
    change = {category: [0] * (steps + 2) for category in order}
    for life, category in zip(seen.lives, kinds, strict=True):
        change[category][life.born] += life.nbytes
        if life.died is not None:
            change[category][life.died] -= life.nbytes
    series = []
    for category in order:
        running, values = 0, []
        for delta in change[category][: steps + 1]:
            running += delta
            values.append(running)
        series.append(values)
    return series


def build(seen: Lifetimes, kinds: list[str], model: nn.Module) -> Built:
    order = [*CATEGORIES, *dict.fromkeys(k for k in kinds if k not in CATEGORIES)]
    series = live_bytes(seen, kinds, order)
    series[order.index("workspace")] = [0] + [call.workspace for call in seen.steps]
    timeline = [TimelinePoint(0, "(start)", "start", OUTSIDE, {c: series[i][0] for i, c in enumerate(order)})]
    for step, call in enumerate(seen.steps, start=1):
        point_bytes = {category: series[i][step] for i, category in enumerate(order)}
        module = call.modules[-1] if call.modules else OUTSIDE
        timeline.append(TimelinePoint(step, call.op, call.phase, module, point_bytes))
    totals = [point.total for point in timeline]
    peak = timeline[totals.index(max(totals))]
    phase_peaks: dict[str, int] = {}
    for point, total in zip(timeline[1:], totals[1:], strict=True):
        phase_peaks[point.phase] = max(phase_peaks.get(point.phase, 0), total)
    return Built(timeline, peak, phase_peaks, _modules(seen, kinds, totals, model))


def _modules(seen: Lifetimes, kinds: list[str], totals: list[int], model: nn.Module) -> list[ModuleMemory]:
    saved: dict[str, int] = {}
    for life, category in zip(seen.lives, kinds, strict=True):
        if category == "activations":
            for name in life.modules:
                saved[name] = saved.get(name, 0) + life.nbytes
    peaks: dict[tuple[str, str], int] = {}
    for step, call in enumerate(seen.steps, start=1):
        for name in call.modules:
            key = (name, call.phase)
            peaks[key] = max(peaks.get(key, 0), totals[step])
    return [
        ModuleMemory(
            name=name,
            type=type(module).__name__,
            depth=0 if name == "" else name.count(".") + 1,
            activation_bytes=saved.get(name, 0),
            forward_peak_bytes=peaks.get((name, "forward")),
            backward_peak_bytes=peaks.get((name, "backward")),
        )
        for name, module in model.named_modules()
    ]


def peak_at(point: TimelinePoint) -> PeakAt:
    return PeakAt(point.step, point.op, point.module, point.phase)
