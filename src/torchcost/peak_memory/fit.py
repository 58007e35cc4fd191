"""``max_batch()``: the largest batch whose peak memory fits a device, found on meta with a few tracked runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchcost.hardware import Hardware, hardware
from torchcost.peak_memory.estimate import MemorySettings, estimate, settings_for
from torchcost.prepare import move, with_batch
from torchcost.step import LossFn, OptimizerSpec

LIMIT = 1 << 20  # the search stops here when memory does not grow with the batch
STALL = 3  # after this many tries that move the same end of the bracket, halve it (peaks far from a line)


@dataclass
class BatchFit:
    """The largest batch that fits (0: not even one), the bytes it needs, and every batch tried with the bytes
    it needs: the peak, or on a GPU the allocator's reserved bytes and the CUDA context allowance."""

    batch: int
    needed_bytes: int | None  # the peak, or on a GPU reserved + context
    memory_bytes: float
    hardware: str
    target: str
    train: bool
    tried: dict[int, int] = field(default_factory=dict)  # batch -> bytes needed

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "needed_bytes": self.needed_bytes,
            "memory_bytes": self.memory_bytes,
            "hardware": self.hardware,
            "target": self.target,
            "train": self.train,
            "tried": {str(batch): peak for batch, peak in sorted(self.tried.items())},
        }


def max_batch(
    model: nn.Module,
    inputs: Any,
    hardware_name: str | Hardware,
    *,
    train: bool = False,
    optimizer: OptimizerSpec | None = None,
    loss: LossFn | None = None,
    dtype: torch.dtype | str | None = None,
    autocast: torch.dtype | str | None = None,
    checkpoint: str | None = None,
    kwargs: dict[str, Any] | None = None,
) -> BatchFit:
    """The largest batch (first dimension of every input tensor) whose peak memory fits the device's memory
    (on a GPU: the bytes the caching allocator reserves, and the CUDA context allowance).

    Each candidate is one ``memory(..., device="meta")`` run; the candidates come from the line through the
    peaks already found (peak memory is close to affine in the batch), so a search takes a handful of runs.
    ``inputs`` is one tensor or a tuple of positional inputs, ``kwargs`` the keyword inputs.
    """
    device = hardware(hardware_name) if isinstance(hardware_name, str) else hardware_name
    settings = settings_for(train, optimizer, loss, dtype, autocast, checkpoint)
    return fit_batch(model, inputs if isinstance(inputs, tuple) else (inputs,), kwargs or {}, settings, device)


def fit_batch(
    model: nn.Module, inputs: tuple[Any, ...], kwargs: dict[str, Any], settings: MemorySettings, device: Hardware
) -> BatchFit:
    """``max_batch`` with the run settings made already."""
    if device.memory is None:
        raise ValueError(f"the memory of {device.name} is unknown; name a device of the spec table (torchcost hw)")
    target = "cuda" if device.kind == "gpu" else "cpu"
    on_meta = move((inputs, kwargs), torch.device("meta"), None)
    tried: dict[int, int] = {}

    def fits(batch: int) -> bool:
        args, keywords = with_batch(on_meta, batch)
        found = estimate(model, args, keywords, settings, "meta", target, capability=device.capability)
        tried[batch] = found.device_bytes
        return tried[batch] <= capacity

    capacity = device.memory
    result = BatchFit(0, None, capacity, device.name, target, settings.train, tried)
    if not fits(1):
        return result
    low, high, moved = 1, None, ""
    while high is None or high - low > 1:
        stalled = moved[-STALL:] in ("l" * STALL, "h" * STALL)
        candidate = _next(tried, low, high, capacity, bisect=stalled)
        if candidate is None:
            break
        if fits(candidate):
            low, moved = candidate, moved + "l"
        else:
            high, moved = candidate, moved + "h"
        moved = "" if stalled else moved
    result.batch, result.needed_bytes = low, tried[low]
    return result


def _next(tried: dict[int, int], low: int, high: int | None, capacity: float, bisect: bool) -> int | None:
    """The next batch to try: where the line through the nearest known peaks reaches the capacity, kept inside
    (low, high), or halfway with ``bisect``. None past the search limit."""
    if high is None:
        if low >= LIMIT:
            return None
        below = max((b for b in tried if b < low), default=None)
        if below is None:
            return min(2 * low, LIMIT)
        slope = (tried[low] - tried[below]) / (low - below)
        step = int((capacity - tried[low]) / slope) if slope > 0 else LIMIT
        return min(low + max(step, 1), LIMIT)
    slope = (tried[high] - tried[low]) / (high - low)
    if bisect or slope <= 0:
        return (low + high) // 2
    return min(max(low + int((capacity - tried[low]) / slope), low + 1), high - 1)
