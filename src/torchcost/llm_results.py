"""What ``torchcost.llm`` reports: the cost of each pass, the batch sweep and the whole ``LLMProfile``."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PhaseCost:
    """One prefill, or one decode step (one new token for each of ``batch`` sequences)."""

    context: int  # tokens already in the cache before this pass
    tokens: int  # tokens processed per sequence in this pass
    macs: int
    flops: int
    bytes: int  # memory access, with weights and KV cache at the chosen precisions
    time_s: float  # in the headline execution mode (``execution``)
    compute_s: float  # of which compute-bound ops
    memory_s: float  # of which memory-bound ops
    overhead_s: float  # of which ops the host's dispatch or a kernel's fixed cost sets the pace of
    eager_s: float  # eager PyTorch (transformers' own forward, op by op)
    graphs_s: float | None = None  # replayed as a CUDA graph (what a serving engine runs); GPUs only
    execution: str = "eager"

    @property
    def bound(self) -> str:
        """Which of compute, memory and overhead takes most of the time."""
        shares = {"overhead": self.overhead_s, "compute": self.compute_s, "memory": self.memory_s}
        return max(shares, key=lambda name: shares[name])

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0


@dataclass(frozen=True)
class SweepPoint:
    batch: int
    memory_bytes: float
    fits: bool
    time_per_token_s: float
    tokens_per_s: float


@dataclass(frozen=True)
class LatentCache:
    """Multi-head latent attention (DeepSeek V2/V3): the KV cache per token and sequence, in bytes, in the two
    forms engines keep it."""

    latent: float  # the compressed latent, (kv_lora_rank + qk_rope_head_dim) per layer: what MLA-aware engines cache
    expanded: float  # keys and values of every head, heads x (qk_head_dim + v_head_dim) per layer: engines without MLA


@dataclass
class LLMProfile:
    model: str
    hardware: str
    batch: int
    prompt_len: int
    gen_len: int
    dtype: str
    kv_dtype: str
    weight_bits: int
    params_total: int
    params_active: int  # weights one token multiplies through (mixture of experts: the routed ones)
    weights_bytes: int
    kv_cache_bytes_per_token: float  # per sequence and token
    kv_cache_bytes: int  # all sequences at the full context (prompt + generated)
    prefill: PhaseCost
    decode: list[PhaseCost]
    sweep: list[SweepPoint] = field(default_factory=list)
    device_memory: float | None = None  # bytes the hardware has, when known
    counting_s: float = 0.0
    assumptions: list[str] = field(default_factory=list)
    latent_cache: LatentCache | None = None  # multi-head latent attention: the cache in its two forms
    prefill_activation_bytes: int | None = None  # prefill peak beyond weights, token ids and KV cache (memory())

    @property
    def memory_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes

    @property
    def fits(self) -> bool | None:
        """Whether weights + KV cache fit in the device's memory (None when its memory is unknown)."""
        return None if self.device_memory is None else self.memory_bytes <= self.device_memory

    @property
    def time_to_first_token_s(self) -> float:
        return self.prefill.time_s

    @property
    def time_per_output_token_s(self) -> float:
        """Mean decode step time over the generated tokens (linear between the counted contexts), in the headline
        execution mode."""
        return _mean_over_contexts([(p.context, p.time_s) for p in self.decode])

    @property
    def eager_time_per_output_token_s(self) -> float:
        """The same, run eagerly op by op (transformers' own decode loop)."""
        return _mean_over_contexts([(p.context, p.eager_s) for p in self.decode])

    @property
    def execution(self) -> str:
        """The headline's execution mode: graphs (a CUDA-graph decode, as serving engines run it) on a GPU."""
        return self.decode[0].execution

    @property
    def tokens_per_s(self) -> float:
        return self.batch / self.time_per_output_token_s

    def to_dict(self) -> dict[str, Any]:
        def phase(p: PhaseCost) -> dict[str, Any]:
            return {
                "context": p.context,
                "tokens": p.tokens,
                "macs": p.macs,
                "flops": p.flops,
                "bytes": p.bytes,
                "intensity": p.intensity,
                "bound": p.bound,
                "compute_s": p.compute_s,
                "memory_s": p.memory_s,
                "overhead_s": p.overhead_s,
                "eager_s": p.eager_s,
                "graphs_s": p.graphs_s,
            }

        return {
            "model": self.model,
            "hardware": self.hardware,
            "batch": self.batch,
            "prompt_len": self.prompt_len,
            "gen_len": self.gen_len,
            "dtype": self.dtype,
            "kv_dtype": self.kv_dtype,
            "weight_bits": self.weight_bits,
            "params_total": self.params_total,
            "params_active": self.params_active,
            "prefill": {**phase(self.prefill), "time_s": self.prefill.time_s},
            "decode": [{**phase(p), "time_per_token_s": p.time_s} for p in self.decode],
            "kv_cache_bytes_per_token": self.kv_cache_bytes_per_token,
            "kv_cache_bytes": self.kv_cache_bytes,
            "weights_bytes": self.weights_bytes,
            "memory_bytes": self.memory_bytes,
            "device_memory_bytes": self.device_memory,
            "fits": self.fits,
            "time_to_first_token_s": self.time_to_first_token_s,
            "time_per_output_token_s": self.time_per_output_token_s,
            "execution": self.execution,
            "eager_time_per_output_token_s": self.eager_time_per_output_token_s,
            "tokens_per_s": self.tokens_per_s,
            "sweep": [asdict(point) for point in self.sweep],
            "counting_s": self.counting_s,
            "assumptions": list(self.assumptions),
            "prefill_activation_bytes": self.prefill_activation_bytes,
            **({"latent_cache_bytes_per_token": asdict(self.latent_cache)} if self.latent_cache else {}),
        }


def _mean_over_contexts(points: list[tuple[int, float]]) -> float:
    """The mean of a step time over the contexts between the first and last point (linear in between)."""
    if len(points) == 1:
        return points[0][1]
    area = sum((c2 - c1) * (t1 + t2) / 2 for (c1, t1), (c2, t2) in itertools.pairwise(points))
    return area / (points[-1][0] - points[0][0])
