"""Plain data of a multi-GPU estimate: one rank's memory, the step's time by part, and the whole estimate."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torchcost.display import Shown
from torchcost.hardware.interconnect import Interconnect
from torchcost.multi_gpu.layout import Layout


@dataclass(frozen=True)
class RankMemory:
    """What one GPU of a pipeline stage holds at the peak of a step (bytes)."""

    stage: str  # which pipeline stage's rank: first (embedding, most microbatches in flight)
    params: int  # parameter elements of the stage on one tensor-parallel rank, before ZeRO sharding
    parameter_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    transient_bytes: int  # temporaries and kernel workspaces at the peak of the rank's run
    gathered_bytes: int  # FSDP (ZeRO-3): weights gathered whole at once (two layers and the root's own)
    in_flight: float  # microbatches whose activations the stage holds at once
    total_bytes: int  # the peak: the most of the above alive at once
    peak_at: str  # when: "backward starts" or, under FSDP, also a layer's backward or "backward ends"

    @property
    def model_state_bytes(self) -> int:
        return self.parameter_bytes + self.gradient_bytes + self.optimizer_bytes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"model_state_bytes": self.model_state_bytes}


@dataclass(frozen=True)
class Collective:
    """One kind of collective a step runs: its buffer (bytes: what all-reduce reduces, all-gather produces,
    reduce-scatter takes in, a send sends), the group's size, how many per step, and the seconds of one."""

    name: str
    kind: str  # all_reduce, all_gather, reduce_scatter or send
    nbytes: float
    group: int
    count: int
    hidden: bool  # it can run beside compute (data-parallel), rather than between two ops that wait for it
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepTime:
    """One optimizer step (seconds): the critical stage's work, the collectives and the pipeline's idle time."""

    critical_stage: str
    compute_s: float  # kernels of every microbatch, recomputation included
    recompute_s: float
    tp_comm_s: float  # tensor-parallel collectives (never hidden: each waits on the layer before it)
    cp_exposed_s: float  # context-parallel ring sends not hidden behind attention
    ep_comm_s: float  # expert-parallel all-to-alls (each waits on the router, or on the experts)
    pp_comm_s: float  # pipeline sends
    bubble_s: float  # the pipeline's fill and drain
    dp_comm_s: float  # data-parallel (or FSDP) collectives, all of them
    dp_exposed_s: float  # ... of which not hidden behind backward
    optimizer_s: float
    total_s: float
    collectives: list[Collective] = field(default_factory=list)

    @property
    def comm_exposed_s(self) -> float:
        return self.tp_comm_s + self.cp_exposed_s + self.ep_comm_s + self.pp_comm_s + self.dp_exposed_s

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["collectives"] = [c.to_dict() for c in self.collectives]
        return found | {"comm_exposed_s": self.comm_exposed_s}


@dataclass(repr=False)
class ParallelEstimate(Shown):
    """Memory per rank and step time of one training step under one layout."""

    model: str
    hardware: str
    layout: Layout
    seq_len: int
    memory: RankMemory
    step: StepTime
    tokens_per_s: float
    model_flops: int  # per step, without recomputation
    mfu: float | None  # model FLOPs per second over the GPUs' peak
    device_memory: float | None
    context_bytes: int  # the CUDA context and libraries, outside PyTorch's allocator
    links: Interconnect
    notes: list[str] = field(default_factory=list)

    @property
    def device_bytes(self) -> int:
        """What the GPU holds at the peak: the rank's peak and the CUDA context beside the allocator."""
        return self.memory.total_bytes + self.context_bytes

    @property
    def fits(self) -> bool | None:
        if self.device_memory is None:
            return None
        return self.device_bytes <= self.device_memory

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "hardware": self.hardware,
            "layout": self.layout.to_dict(),
            "seq_len": self.seq_len,
            "memory": self.memory.to_dict(),
            "step": self.step.to_dict(),
            "tokens_per_s": self.tokens_per_s,
            "model_flops": self.model_flops,
            "mfu": self.mfu,
            "device_memory_bytes": self.device_memory,
            "context_bytes": self.context_bytes,
            "fits": self.fits,
            "links": self.links.to_dict(),
            "notes": list(self.notes),
        }
