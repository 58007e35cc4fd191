"""``Layout``: how a training job spreads over GPUs (data, tensor and pipeline parallel sizes, ZeRO sharding,
microbatches, the pipeline schedule and recomputation), checked before anything is built."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torchcost.errors import ProfilingError

RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class Layout:
    """One parallel layout. Ranks are numbered tensor-parallel first, then context-parallel, data-parallel and
    pipeline stages (Megatron-LM's default order), so a tensor-parallel group sits inside a node when ``tp`` fits
    one."""

    dp: int = 1
    tp: int = 1
    pp: int = 1
    cp: int = 1  # context parallelism: each rank takes 1/cp of every sequence; K and V go round a ring
    ep: int = 1  # expert parallelism: the data-parallel ranks split each MoE block's experts into ep groups
    zero: int = 0  # 0: none; 1: optimizer state; 2: and gradients; 3 (FSDP): and parameters, sharded over dp
    sp: bool = False  # sequence parallelism: the tensor-parallel ranks split the sequence outside the matmuls
    microbatch: int = 1  # sequences per microbatch
    microbatches: int = 1  # microbatches per step on each data-parallel rank (the pipeline's, or accumulation)
    vpp: int = 1  # model chunks per pipeline rank: the interleaved 1F1B schedule when above 1
    recompute: str = "none"  # none, selective (the attention core) or full (each layer keeps only its input)

    @property
    def gpus(self) -> int:
        return self.dp * self.tp * self.pp * self.cp

    @property
    def replicas(self) -> int:
        """Ranks holding the same weights, which reduce gradients together and share ZeRO's shards: dp x cp."""
        return self.dp * self.cp

    @property
    def expert_replicas(self) -> int:
        """Ranks holding the same experts, which reduce their gradients and share their ZeRO shards: dp x cp / ep."""
        return self.replicas // self.ep

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step."""
        return self.microbatch * self.microbatches * self.dp

    def check(self, layers: int) -> None:
        """Refuse, in one line, a layout no framework could run on a model of ``layers`` blocks."""
        sizes = {"dp": self.dp, "tp": self.tp, "pp": self.pp, "cp": self.cp, "ep": self.ep}
        sizes["microbatch"] = self.microbatch
        sizes |= {"microbatches": self.microbatches, "vpp": self.vpp}
        for name, size in sizes.items():
            if size < 1:
                raise ProfilingError(
                    f"{name}={size}: it must be 1 or more", cli=f"--{name} {size}: it must be 1 or more"
                )
        if self.zero not in (0, 1, 2, 3):
            raise ProfilingError(f"zero={self.zero}: ZeRO stages are 0, 1, 2 and 3 (3 is FSDP)")
        if self.recompute not in RECOMPUTE:
            raise ProfilingError(f"recompute={self.recompute!r}: give one of {', '.join(RECOMPUTE)}")
        if self.dp % self.ep:
            raise ProfilingError(
                f"ep {self.ep} must divide dp {self.dp}: expert parallelism splits the data-parallel ranks"
            )
        if self.sp and self.tp == 1:
            raise ProfilingError("sequence parallelism splits over the tensor-parallel ranks: give tp of 2 or more")
        if layers % (self.pp * self.vpp):
            raise ProfilingError(
                f"the model's {layers} layers do not split into pp x vpp = {self.pp * self.vpp} equal stages; "
                f"give a pp x vpp that divides {layers}"
            )
        if self.vpp > 1 and self.microbatches % self.pp:
            raise ProfilingError(
                f"the interleaved schedule needs microbatches ({self.microbatches}) to be a multiple of pp ({self.pp})"
            )

    def describe(self) -> str:
        parts = [f"dp {self.dp}", f"tp {self.tp}", f"pp {self.pp}"] + ([f"cp {self.cp}"] if self.cp > 1 else [])
        parts += [f"ep {self.ep}"] if self.ep > 1 else []
        parts += [f"vpp {self.vpp}"] if self.vpp > 1 else []
        parts += ["sp"] if self.sp else []
        parts += [f"zero {self.zero}"] if self.zero else []
        parts += [f"{self.recompute} recompute"] if self.recompute != "none" else []
        return ", ".join(parts) + f"; {self.microbatches} x {self.microbatch} sequences"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"gpus": self.gpus, "global_batch": self.global_batch}

    def check_sequence(self, seq_len: int) -> None:
        """Context parallelism splits each sequence into 2 x cp chunks (two per rank, balancing causal work)."""
        if self.cp > 1 and seq_len % (2 * self.cp):
            raise ProfilingError(
                f"a sequence of {seq_len} does not split into 2 x cp = {2 * self.cp} equal chunks; give a --seq-len "
                f"that is a multiple of {2 * self.cp}"
            )
