"""Plain data that counting produces and reports consume. Nothing here runs a model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torchcost.display import Shown

Shape = tuple[int, ...]


@dataclass(frozen=True)
class OpCost:
    """What one operator call costs. FLOPs include 2 per MAC; bytes are at the tensors' real dtypes."""

    flops: int = 0
    macs: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    @property
    def memory_access(self) -> int:
        return self.bytes_read + self.bytes_written

    def __add__(self, other: OpCost) -> OpCost:
        return OpCost(
            self.flops + other.flops,
            self.macs + other.macs,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
        )


@dataclass(frozen=True)
class MemoryAccess:
    """Bytes read and written while running (not the bytes needed to store the weights)."""

    read: int = 0
    write: int = 0

    @property
    def total(self) -> int:
        return self.read + self.write

    def to_dict(self) -> dict[str, int]:
        return {"read": self.read, "write": self.write, "total": self.total}


@dataclass(frozen=True)
class OpRecord:
    """One operator call as it was dispatched, with the module paths that enclosed it."""

    op: str
    phase: str  # "forward" or "backward"
    modules: tuple[str, ...]  # every enclosing module path, outermost first ("" is the root)
    cost: OpCost
    input_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...]
    counted: bool = True
    measured_s: float | None = None  # median time from torch.profiler, when measured
    input_dtypes: tuple[str, ...] = ()  # of the input tensors, in the order of input_shapes ("float16")
    output_dtypes: tuple[str, ...] = ()
    # the call this record is part of, when a GPU runs that call as one fused kernel where the counted device ran
    # its parts ("scaled_dot_product_attention#3 causal": its math reference, forward or backward)
    fused: str = ""
    family: str = ""  # the family its formula was registered with ("matmul"), or ""

    @classmethod
    def of(cls, *values: Any) -> OpRecord:
        """A record of every field, in order: what ``OpRecord(...)`` makes, in half the time (a frozen dataclass's
        ``__init__`` sets each field through ``object.__setattr__``; the dispatch makes one record per op)."""
        record = object.__new__(cls)
        record.__dict__.update(zip(_OP_RECORD_FIELDS, values, strict=True))
        return record

    def under(self, modules: tuple[str, ...]) -> OpRecord:
        """The same call's record with other enclosing modules (a replayed call's), made as ``of`` makes one."""
        record = object.__new__(OpRecord)
        record.__dict__.update(self.__dict__)
        record.__dict__["modules"] = modules
        return record


_OP_RECORD_FIELDS = tuple(OpRecord.__dataclass_fields__)


@dataclass(frozen=True)
class ParamCount:
    """Learnable parameters (each shared tensor once) and buffers, as element counts."""

    total: int = 0
    trainable: int = 0
    frozen: int = 0
    buffers: int = 0
    shared: int = 0  # parameters saved by sharing: counting each use separately would add this many

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(kw_only=True)
class CostTotals:
    """MACs, FLOPs and bytes summed over op calls."""

    macs: int = 0
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    measured_s: float | None = None  # sum of the measured times of its ops, when measured

    @property
    def memory_access(self) -> MemoryAccess:
        return MemoryAccess(self.bytes_read, self.bytes_written)

    def add(self, cost: OpCost) -> None:
        self.merge(cost)

    def merge(self, totals: OpCost | CostTotals) -> None:
        """Add another sum's MACs, FLOPs and bytes (or one op call's)."""
        self.macs += totals.macs
        self.flops += totals.flops
        self.bytes_read += totals.bytes_read
        self.bytes_written += totals.bytes_written

    def totals_dict(self) -> dict[str, Any]:
        return {
            "macs": self.macs,
            "flops": self.flops,
            "memory_access_bytes": self.memory_access.to_dict(),
            "measured_s": self.measured_s,
        }


@dataclass
class ModuleStats(CostTotals):
    """Costs attributed to one module: every op that ran while it was on the module stack."""

    name: str  # dotted path from the root; "" is the root module
    type: str
    depth: int
    params: int  # parameters in this module and its children, each shared tensor once
    own_params: int  # parameters registered directly on this module
    calls: int = 0
    output_shapes: list[Shape] = field(default_factory=list)
    user_formula: bool = False  # counted by a formula registered with register_module, not by its ops

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            **({"user_formula": True} if self.user_formula else {}),
            "depth": self.depth,
            "params": self.params,
            "own_params": self.own_params,
            "calls": self.calls,
            **self.totals_dict(),
            "output_shapes": [list(s) for s in self.output_shapes],
        }


@dataclass
class OperatorStats(CostTotals):
    """All calls of one ATen operator (an overload packet such as ``aten.convolution``), summed."""

    op: str
    count: int = 0

    def add(self, cost: OpCost) -> None:
        self.count += 1
        super().add(cost)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "count": self.count, **self.totals_dict()}


@dataclass(frozen=True)
class UncountedOp:
    """An operator with no formula and no usable decomposition: its cost is unknown, not zero."""

    op: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "count": self.count}


@dataclass(frozen=True)
class TensorSpec:
    shape: Shape
    dtype: str
    name: str | None = None  # the keyword an input was passed as

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, **({"name": self.name} if self.name else {})}


@dataclass
class TrainingStep:
    """FLOPs of one steady-state training step by phase; time and MFU once a step time is known."""

    optimizer: str
    forward_flops: int
    backward_flops: int
    optimizer_flops: int
    trainable_params: int
    tokens: int | None  # token models: batch x sequence length
    step_s: float | None = None
    step_source: str | None = None  # "measured" or "predicted on <hardware>"
    peak_flop_per_s: float | None = None  # the hardware's peak at the run's dtype

    @property
    def model_flops(self) -> int:
        return self.forward_flops + self.backward_flops

    @property
    def six_n_flops(self) -> int | None:
        """6 x trainable parameters x tokens, for token models."""
        return None if self.tokens is None else 6 * self.trainable_params * self.tokens

    @property
    def mfu(self) -> float | None:
        if not self.step_s or not self.peak_flop_per_s:
            return None
        return self.model_flops / (self.step_s * self.peak_flop_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "forward_flops": self.forward_flops,
            "backward_flops": self.backward_flops,
            "optimizer_flops": self.optimizer_flops,
            "model_flops": self.model_flops,
            "trainable_params": self.trainable_params,
            "tokens": self.tokens,
            "six_n_flops": self.six_n_flops,
            "step_s": self.step_s,
            "step_source": self.step_source,
            "peak_flop_per_s": self.peak_flop_per_s,
            "mfu": self.mfu,
        }


@dataclass(repr=False)
class Profile(Shown):
    """Everything counted for one model and one set of inputs."""

    model: str
    inputs: list[TensorSpec]
    device: str
    backward: bool
    params: ParamCount
    size_bytes: int
    size_if: dict[str, int]  # "what if" storage size of the weights at other dtypes
    macs: int
    flops: int
    memory_access: MemoryAccess
    modules: list[ModuleStats]
    operators: list[OperatorStats]
    uncounted: list[UncountedOp]
    records: list[OpRecord] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)  # what was assumed or made (e.g. how the inputs were made)
    training: TrainingStep | None = None  # counted with an optimizer: the training step's cost
    autocast: str | None = None  # counted as CUDA's torch.autocast runs the forward in this dtype ("float16")
    channels_last: bool = False  # counted with the 4-D weights and inputs in torch.channels_last memory format

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the per-call ``records`` are left out (they are for programmatic use)."""
        return {
            "model": self.model,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "device": self.device,
            "backward": self.backward,
            **({"autocast": self.autocast} if self.autocast is not None else {}),
            **({"channels_last": True} if self.channels_last else {}),
            "params": self.params.to_dict(),
            "size_bytes": self.size_bytes,
            "size_bytes_if": dict(self.size_if),
            "macs": self.macs,
            "flops": self.flops,
            "memory_access_bytes": self.memory_access.to_dict(),
            "modules": [m.to_dict() for m in self.modules],
            "operators": [o.to_dict() for o in self.operators],
            "uncounted": [u.to_dict() for u in self.uncounted],
            **({"notes": list(self.notes)} if self.notes else {}),
            **({"training": self.training.to_dict()} if self.training is not None else {}),
        }
