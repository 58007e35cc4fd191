"""Plain data a prediction produces: per op, its host and device times and where it sits on the timeline; in all,
the latency (the end of the last kernel), and the time per module, class and bound."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from torchcost.display import Shown
from torchcost.predict.roofline import Rates

EXECUTIONS = ("eager", "graphs")


@dataclass(frozen=True)
class OpPrediction:
    """One op as the timeline runs it. ``time_s`` is how far it moved the run's end (the ops' ``time_s`` sum to
    the latency); ``overhead_s`` is the host's time to issue it (module calls entered at it included),
    ``device_s`` its kernels' time (on a CPU: its own time)."""

    index: int  # position in Profile.records
    op: str
    op_class: str
    flops: int
    bytes: int
    compute_s: float  # of its kernels: FLOPs at the rate they reach
    memory_s: float  # of its kernels: bytes at the bandwidth they reach
    overhead_s: float  # host: dispatch, launches, module calls
    bound: str  # compute, memory or overhead (the host sets its pace)
    device_s: float = 0.0
    kernels: int = 0
    start_s: float = 0.0  # its first kernel's start (when it launches none: when the host issued it)
    end_s: float = 0.0  # its last kernel's end
    time_s: float = 0.0
    learned_s: float | None = None  # a calibrated CPU's learned model of this op's time, when it has one

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else float("inf")


@dataclass(repr=False)
class Prediction(Shown):
    """Predicted latency of one profiled run on one device, in one execution mode."""

    hardware: str
    dtype: str
    rates: Rates
    execution: str = "eager"
    ops: list[OpPrediction] = field(default_factory=list)
    by_module: dict[str, float] = field(default_factory=dict)
    module_calls_s: float = 0.0  # host time calling the model's modules, beyond their ops
    latency_s: float = 0.0  # the end of the last kernel (or of the host's last op, when that is later)
    host_s: float = 0.0  # the host's busy time: dispatch, launches, module calls
    device_s: float = 0.0  # the device's busy time: the kernels
    notes: list[str] = field(default_factory=list)  # what the prediction assumed

    @property
    def overhead_s(self) -> float:
        """Time the device waits on the host: the part of the run the framework's own cost sets."""
        return sum(op.time_s for op in self.ops if op.bound == "overhead")

    def time_by(self, key: str) -> dict[str, float]:
        """Predicted seconds grouped by ``bound``, ``op_class`` or ``op``."""
        totals: dict[str, float] = defaultdict(float)
        for op in self.ops:
            totals[getattr(op, key)] += op.time_s
        return dict(totals)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hardware": self.hardware,
            "dtype": self.dtype,
            "execution": self.execution,
            "rates": {
                "compute_flops": self.rates.compute,
                "bandwidth": self.rates.bandwidth,
                "overhead_s": self.rates.overhead_s,
                "source": self.rates.source,
            },
            "latency_s": self.latency_s,
            "host_s": self.host_s,
            "device_s": self.device_s,
            "module_calls_s": self.module_calls_s,
            "overhead_s": self.overhead_s,
            "time_by_bound": self.time_by("bound"),
            "time_by_class": self.time_by("op_class"),
            "by_module": self.by_module,
            "notes": list(self.notes),
        }
