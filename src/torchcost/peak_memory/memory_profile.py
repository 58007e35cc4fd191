"""``MemoryProfile``: the peak memory of a run, what it is made of, when it happens and where. Plain data."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from torchcost.records import TensorSpec
from torchcost.units import si

# Category key -> label. Every byte alive at a step is in exactly one category (docs/conventions.md).
CATEGORIES: dict[str, str] = {
    "parameters": "parameters",
    "buffers": "buffers",
    "gradients": "gradients",
    "optimizer_state": "optimizer state",
    "activations": "activations saved for backward",
    "temporaries": "temporaries",
    "inputs_outputs": "inputs and outputs",
    "workspace": "kernel workspace",  # held by a kernel only while it runs (modelled: peak_memory/workspace.py)
}
# Categories only some runs have, after the others: on CUDA, cuBLAS's workspaces (peak_memory/cuda_libraries.py)
EXTRA_LABELS = {"library_workspace": "cuBLAS workspaces"}


def label(category: str) -> str:
    return CATEGORIES.get(category) or EXTRA_LABELS.get(category) or category.replace("_", " ")


@dataclass(frozen=True)
class TimelinePoint:
    """Live bytes per category as one op call ends, its outputs made and its inputs not yet freed, with the
    workspace its kernel held while it ran (step 0: before the first op)."""

    step: int
    op: str
    phase: str  # start, forward, backward or optimizer
    module: str  # the innermost module path running the op ("" is the root; "-" outside the model)
    bytes: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.bytes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "op": self.op,
            "phase": self.phase,
            "module": self.module,
            "total": self.total,
            "bytes": dict(self.bytes),
        }


@dataclass(frozen=True)
class PeakAt:
    """Where the peak is: the op call after which live memory was highest, its module path and phase."""

    step: int
    op: str
    module: str
    phase: str

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "op": self.op, "module": self.module, "phase": self.phase}


@dataclass(frozen=True)
class ModuleMemory:
    """One module: activation bytes made in it and held for backward (children included), and the highest
    live memory (the whole program's) while it ran, in forward and in backward."""

    name: str
    type: str
    depth: int
    activation_bytes: int
    forward_peak_bytes: int | None  # None: it did not run in that phase
    backward_peak_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "depth": self.depth,
            "activation_bytes": self.activation_bytes,
            "forward_peak_bytes": self.forward_peak_bytes,
            "backward_peak_bytes": self.backward_peak_bytes,
        }


@dataclass
class MemoryProfile:
    """Peak memory of one inference (forward) or one training step, tracked storage by storage."""

    model: str
    inputs: list[TensorSpec]
    device: str  # where it ran: meta (no memory allocated), cpu or cuda
    target: str  # the device kind the figures are for: cpu, or cuda (the caching allocator's blocks)
    train: bool
    optimizer: str | None
    dtype: str | None
    autocast: str | None
    checkpoint: str | None
    peak_bytes: int
    breakdown: dict[str, int]  # category -> bytes alive at the peak
    peak_at: PeakAt
    phase_peaks: dict[str, int]  # the highest live bytes in each phase
    timeline: list[TimelinePoint] = field(repr=False)
    modules: list[ModuleMemory] = field(repr=False)
    notes: list[str] = field(default_factory=list)
    reserved_bytes: int | None = None  # CUDA: the caching allocator's segments, cached free blocks included
    context_bytes: int | None = None  # CUDA: the allowance for the context, outside the allocator

    @property
    def device_bytes(self) -> int:
        """What the device must hold: on CUDA, reserved bytes and the context (what nvidia-smi shows); else
        the peak."""
        if self.reserved_bytes is None:
            return self.peak_bytes
        return self.reserved_bytes + (self.context_bytes or 0)

    def to_dict(self, timeline: bool = True) -> dict[str, Any]:
        """JSON-ready dict; ``timeline=False`` leaves out the per-op timeline (one entry per op call)."""
        return {
            "model": self.model,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "device": self.device,
            "target": self.target,
            "train": self.train,
            "optimizer": self.optimizer,
            "dtype": self.dtype,
            "autocast": self.autocast,
            "checkpoint": self.checkpoint,
            "peak_bytes": self.peak_bytes,
            "reserved_bytes": self.reserved_bytes,
            "context_bytes": self.context_bytes,
            "device_bytes": self.device_bytes,
            "breakdown": dict(self.breakdown),
            "peak_at": self.peak_at.to_dict(),
            "phase_peaks": dict(self.phase_peaks),
            "modules": [m.to_dict() for m in self.modules],
            "notes": list(self.notes),
            **({"timeline": [point.to_dict() for point in self.timeline]} if timeline else {}),
        }

    def __repr__(self) -> str:
        kind = "training step" if self.train else "inference"
        where = self.peak_at.module or "(root)"
        parts = ", ".join(f"{label(key)} {si(value, 'B')}" for key, value in self.breakdown.items() if value)
        return (
            f"MemoryProfile({self.model}, {kind} on {self.device}: peak {si(self.peak_bytes, 'B')} "
            f"after {self.peak_at.op} in {where} ({self.peak_at.phase}); {parts})"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(label(key))}</td><td style='text-align:right'>{si(value, 'B')}</td></tr>"
            for key, value in self.breakdown.items()
        )
        where = html.escape(f"{self.peak_at.op} in {self.peak_at.module or '(root)'} ({self.peak_at.phase})")
        kind = "training step" if self.train else "inference"
        return (
            f"<p><b>{html.escape(self.model)}</b>: {kind} peak <b>{si(self.peak_bytes, 'B')}</b> after {where}</p>"
            f"<table>{rows}</table>"
        )
