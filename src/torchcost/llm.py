"""LLM inference cost: prefill and per-token decode counted by running the model's own forward on ``meta``
with its real KV cache object, then predicted on any hardware by the roofline.

Nothing here is a per-architecture formula: grouped-query attention, sliding windows, tied embeddings and
mixture-of-experts routing are whatever the model code does. What is assumed is said in ``assumptions``.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from torchcost.errors import ProfilingError, renamed
from torchcost.hardware import Hardware, hardware
from torchcost.peak_memory.prefill import prefill_activation_bytes
from torchcost.predict import EXECUTIONS, gpu, predict
from torchcost.predict.kernels import tensor_bytes, weight_bytes
from torchcost.predict.roofline import QUICK_SOURCE, measures_bandwidth
from torchcost.predict.taxonomy import op_class
from torchcost.prepare import FLOATING_DTYPES, copy_to
from torchcost.profiler import profile
from torchcost.records import OpRecord, Profile
from torchcost.sources import MODEL_FILE_SUFFIXES, load_model, presets
from torchcost.sources.base import require
from torchcost.sources.hf import config_from_values
from torchcost.sources.hf_cache import cache_keyword, with_cache
from torchcost.tensors import reachable_tensors
from torchcost.units import si

BITS = {"fp32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "int4": 4}
MAX_SWEEP_BATCH = 1024


# Where configs keep the longest context the model takes (GPT-2: n_positions, most others: max_position_embeddings)
MAX_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def preset_config(name: str) -> Any:
    """The transformers config of a shipped checkpoint preset (``torchcost list``)."""
    transformers = require("transformers", "transformers")
    shipped = presets.preset(name)
    if shipped is None:
        raise ProfilingError(_unknown_preset(name))
    return config_from_values(transformers, dict(shipped.config), shipped.name)


def build_llm(spec: str) -> nn.Module:
    """A checkpoint preset (``llama-3.1-8b``), a Hub id (``hf:Qwen/Qwen3-8B``) or any model spec
    torchcost.sources knows, built on meta."""
    if ":" not in spec and not spec.endswith(MODEL_FILE_SUFFIXES) and presets.preset(spec) is None:
        raise ProfilingError(_unknown_preset(spec))
    return load_model(spec, "meta").model


def _unknown_preset(name: str) -> str:
    close = difflib.get_close_matches(name, presets.names(), n=3, cutoff=0.4)
    maybe = f"did you mean {', '.join(close)}? " if close else ""
    return (
        f"unknown LLM preset {name!r}; {maybe}torchcost list shows the presets; or give a model spec such as "
        "hf:Qwen/Qwen3-8B, hf:llama or hf:path/to/config.json"
    )


def check_causal_lm(spec: str, model: nn.Module) -> None:
    """Refuse, in one line, a model that is not a decoder taking a KV cache (``cache`` or ``past_key_values``)."""
    if cache_keyword(model) is None or getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        raise ProfilingError(
            f"{spec} is not a causal LM ({type(model).__name__} is not a decoder that takes a KV cache); "
            "give one such as hf:gpt2, hf:llama or a preset"
        )


def max_positions(model: nn.Module) -> int | None:
    """The longest context the model's config allows, when it says."""
    config = getattr(model, "config", None)
    found = (getattr(config, key, None) for key in MAX_POSITION_KEYS)
    return next((value for value in found if isinstance(value, int) and value > 0), None)


def check_context(spec: str, model: nn.Module, prompt_len: int, gen_len: int) -> None:
    """Refuse a context longer than the model takes: past it, a learned position table (GPT-2) has no entry,
    and a rotary model runs outside what it was trained for, so the counts would describe no real run."""
    longest = max_positions(model)
    if longest is None or prompt_len + gen_len <= longest:
        return
    gen = min(gen_len, longest // 2)
    said = f"{{}} + {{}} = {prompt_len + gen_len:,} tokens, but {spec} takes at most {longest:,} positions (its config)"
    fix = f"; e.g. {{}}{longest - gen} {{}}{gen}"
    raise ProfilingError(
        said.format("prompt_len", "gen_len") + fix.format("prompt_len=", "gen_len="),
        cli=said.format("--prompt-len", "--gen-len") + fix.format("--prompt-len ", "--gen-len "),
    )


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


def cache_bytes(cache: Any) -> int:
    return sum(t.numel() * t.element_size() for t in reachable_tensors(cache, depth=4))


def _new_cache(model: nn.Module) -> Any:
    import transformers

    return transformers.DynamicCache(config=getattr(model, "config", None))


def _tokens(batch: int, length: int) -> torch.Tensor:
    return torch.zeros(batch, length, dtype=torch.long, device="meta")


def _filled_cache(model: nn.Module, batch: int, context: int) -> Any:
    """A KV cache holding ``context`` tokens, filled by an (uncounted) prefill on meta."""
    cache = _new_cache(model)
    with torch.no_grad():
        model(_tokens(batch, context), **with_cache(model, cache))
    return cache


def _weights_read(model: nn.Module) -> int:
    """Parameter elements a forward pass reads in full: all but embedding tables that are only gathered."""
    linear_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    gathered = {
        id(m.weight): m.weight.numel()
        for m in model.modules()
        if isinstance(m, nn.Embedding) and id(m.weight) not in linear_ids
    }
    params = {id(p): p.numel() for p in model.parameters()}
    return sum(n for key, n in params.items() if key not in gathered)


@dataclass(frozen=True)
class _Precision:
    dtype: str
    kv_dtype: str
    weight_bits: int
    execution: str  # the headline's, where the device can run it

    def weight_scale(self) -> float:
        return self.weight_bits / BITS[self.dtype]

    def kv_scale(self) -> float:
        return BITS[self.kv_dtype] / BITS[self.dtype]


def _phase(
    counted: Profile, device: Hardware, precision: _Precision, weights: int, kv_read: int, context: int, tokens: int
) -> PhaseCost:
    """Predicted time of one counted pass, eager and (on a GPU) as a CUDA graph, with the weight and KV-cache
    reads at their stored precisions."""
    dtype_bytes = BITS[precision.dtype] // 8
    extra = weights * dtype_bytes * (precision.weight_scale() - 1) + kv_read * (precision.kv_scale() - 1)
    stored = _at_precision(counted, precision)
    eager = predict(stored, device, precision.dtype)
    graphs = predict(stored, device, precision.dtype, execution="graphs") if gpu.applies(device) else None
    headline = graphs if graphs is not None and precision.execution == "graphs" else eager
    by_bound = headline.time_by("bound")
    return PhaseCost(
        context,
        tokens,
        counted.macs,
        counted.flops,
        int(counted.memory_access.total + extra),
        headline.latency_s,
        by_bound.get("compute", 0.0),
        by_bound.get("memory", 0.0),
        by_bound.get("overhead", 0.0),
        eager.latency_s,
        graphs.latency_s if graphs is not None else None,
        headline.execution,
    )


def _at_precision(counted: Profile, precision: _Precision) -> Profile:
    """The pass with its weight reads at ``weight_bits`` and its KV-cache reads at ``kv_dtype``: a matrix
    product's 2-D last operand (or an expert product's) is a weight; a fused attention's keys and values are the
    cache."""
    weight, kv = precision.weight_scale(), precision.kv_scale()
    if weight == 1 and kv == 1:
        return counted
    return dataclasses.replace(counted, records=[_stored(r, weight, kv) for r in counted.records])


def _stored(record: OpRecord, weight: float, kv: float) -> OpRecord:
    cls = op_class(record)
    shapes, dtypes = record.input_shapes, record.input_dtypes
    extra: float
    if cls == "matmul" and weight_bytes(record):
        extra = weight_bytes(record) * (weight - 1)
    elif cls == "attention" and len(shapes) >= 3 and "backward" not in record.op:
        extra = sum(tensor_bytes(shapes[i], dtypes[i] if len(dtypes) > i else "bfloat16") for i in (1, 2)) * (kv - 1)
    else:
        return record
    cost = dataclasses.replace(record.cost, bytes_read=max(0, record.cost.bytes_read + round(extra)))
    return dataclasses.replace(record, cost=cost)


def _decode_step(model: nn.Module, batch: int, context: int, cache: Any | None = None) -> tuple[Profile, int, int]:
    """One counted decode step at ``context``: its profile, the KV bytes it read, the KV bytes after it."""
    cache = cache if cache is not None else _filled_cache(model, batch, context)
    kv_read = cache_bytes(cache)
    step = profile(model, _tokens(batch, 1), **with_cache(model, cache))
    return step, kv_read, cache_bytes(cache)


def llm_profile(
    model: nn.Module | str,
    prompt_len: int = 2048,
    gen_len: int = 256,
    batch: int = 1,
    dtype: str = "bf16",
    kv_dtype: str | None = None,
    weight_bits: int | None = None,
    hardware_name: str | Hardware = "h100",
    sweep: bool = True,
    execution: str | None = None,
) -> LLMProfile:
    """Prefill and decode cost of a causal LM (a transformers-style model taking a KV cache).

    Counting runs the model's forward on meta: one prefill over ``prompt_len`` tokens, then single-token
    decode steps with the real KV cache at the first, middle and last generated position.

    Each pass is predicted eager (transformers' own loop) and, on a GPU, replayed as a CUDA graph (what serving
    engines run). ``execution`` picks the headline: by default "graphs" on a GPU, "eager" elsewhere.
    """
    if gen_len < 1 or prompt_len < 1 or batch < 1:
        raise ValueError("prompt_len, gen_len and batch must be at least 1")
    if execution not in (None, *EXECUTIONS):
        raise ValueError(f"unknown execution {execution!r}; use one of {', '.join(EXECUTIONS)}")
    for name in (dtype, kv_dtype or dtype):
        if name not in BITS:
            raise ValueError(f"unknown precision {name!r}; use one of {', '.join(BITS)}")
    start = time.perf_counter()
    spec = model if isinstance(model, str) else type(model).__name__
    module = build_llm(model) if isinstance(model, str) else model
    check_causal_lm(spec, module)
    check_context(spec, module, prompt_len, gen_len)
    module = copy_to(module, torch.device("meta"), FLOATING_DTYPES[dtype]).eval()
    device = hardware(hardware_name) if isinstance(hardware_name, str) else hardware_name
    if execution == "graphs" and not gpu.applies(device):
        raise ValueError(f"execution='graphs' replays CUDA graphs, and {device.name} is not a GPU; use eager")
    precision = _Precision(dtype, kv_dtype or dtype, weight_bits or BITS[dtype], execution or "graphs")
    weights = _weights_read(module)

    cache = _new_cache(module)
    prefill_count = profile(module, _tokens(batch, prompt_len), **with_cache(module, cache))
    prompt_cache_bytes = cache_bytes(cache)
    prefill = _phase(prefill_count, device, precision, weights, 0, 0, prompt_len)

    contexts = sorted({prompt_len, prompt_len + gen_len // 2, prompt_len + gen_len - 1})
    decode = []
    full_cache_bytes = prompt_cache_bytes  # after the last step the cache holds prompt_len + gen_len tokens
    for context in contexts:
        step, kv_read, full_cache_bytes = _decode_step(module, batch, context, cache if context == prompt_len else None)
        decode.append(_phase(step, device, precision, weights, kv_read, context, 1))
    first_step = profile(module, _tokens(batch, 1), **with_cache(module, _new_cache(module)))

    kv_scale = precision.kv_scale()
    params_total = prefill_count.params.total
    result = LLMProfile(
        model=spec,
        hardware=device.name,
        batch=batch,
        prompt_len=prompt_len,
        gen_len=gen_len,
        dtype=dtype,
        kv_dtype=precision.kv_dtype,
        weight_bits=precision.weight_bits,
        params_total=params_total,
        params_active=_active_params(first_step) // batch,
        weights_bytes=math.ceil(params_total * precision.weight_bits / 8),
        kv_cache_bytes_per_token=prompt_cache_bytes * kv_scale / (batch * prompt_len),
        kv_cache_bytes=int(full_cache_bytes * kv_scale),
        prefill=prefill,
        decode=decode,
        device_memory=device.memory,
        assumptions=_assumptions(precision, device, experts=_has_experts(module)),
        latent_cache=_latent_cache(module, precision),
    )
    if result.latent_cache is not None:
        result.assumptions.append(_latent_note(result, result.latent_cache))
    result.prefill_activation_bytes = prefill_activation_bytes(
        module, _tokens(batch, prompt_len), _new_cache(module), device
    )
    if sweep:
        result.sweep = _sweep(module, device, precision, weights, prompt_len + gen_len // 2, result)
    result.counting_s = time.perf_counter() - start
    return result


def _active_params(first_step: Profile) -> int:
    """Weights the tokens of one decode step on an empty cache multiply through: the MACs of the ops run by a
    module that holds weights (linear layers, experts, routers), not those of attention over the keys."""
    holds_weights = {m.name for m in first_step.modules if m.own_params}
    return sum(r.cost.macs for r in first_step.records if r.modules and r.modules[-1] in holds_weights)


def _latent_cache(model: nn.Module, precision: _Precision) -> LatentCache | None:
    """The two forms of a multi-head latent attention cache, from the config (None without MLA)."""
    config = getattr(model, "config", None)
    rank = getattr(config, "kv_lora_rank", None)
    if config is None or not rank:
        return None
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    rope, nope, value = config.qk_rope_head_dim, config.qk_nope_head_dim, config.v_head_dim
    element = BITS[precision.kv_dtype] / 8
    return LatentCache(layers * (rank + rope) * element, layers * heads * (nope + rope + value) * element)


def _latent_note(result: LLMProfile, cache: LatentCache) -> str:
    stored = "the compressed latent" if abs(result.kv_cache_bytes_per_token - cache.latent) < 1 else "another form"
    return (
        f"multi-head latent attention: transformers caches {stored} ({si(result.kv_cache_bytes_per_token, 'B')} "
        f"per token), as MLA-aware engines do ({si(cache.latent, 'B')}: kv_lora_rank + qk_rope_head_dim per layer); "
        f"an engine that caches every head's keys and values needs {si(cache.expanded, 'B')} per token. transformers "
        "re-expands the latent through kv_b_proj at every decode step (counted); engines that absorb kv_b_proj "
        "into the query and output projections skip that work"
    )


def _sweep(
    module: nn.Module, device: Hardware, precision: _Precision, weights: int, context: int, base: LLMProfile
) -> list[SweepPoint]:
    """Decode throughput at the middle context for batch 1, 2, 4, ... until the device memory is full."""
    points = []
    per_sequence = base.kv_cache_bytes / base.batch
    batch = 1
    while batch <= MAX_SWEEP_BATCH:
        memory = base.weights_bytes + per_sequence * batch
        fits = device.memory is None or memory <= device.memory
        step, kv_read, _ = _decode_step(module, batch, context)
        phase = _phase(step, device, precision, weights, kv_read, context, 1)
        points.append(SweepPoint(batch, memory, fits, phase.time_s, batch / phase.time_s))
        if not fits:
            break
        batch *= 2
    return points


def _has_experts(model: nn.Module) -> bool:
    """A mixture-of-experts model: some module is named for its experts (``mlp.experts``)."""
    return any(name.rsplit(".", 1)[-1] == "experts" for name, _ in model.named_modules())


def _assumptions(precision: _Precision, device: Hardware, experts: bool) -> list[str]:
    graphs = gpu.applies(device) and precision.execution == "graphs"
    timing = (
        "times: the headline is the decode step replayed as a CUDA graph (what serving engines and "
        "torch.compile's cudagraphs run: no per-op host cost, kernels back to back); 'eager' is transformers' own "
        "loop, each op dispatched from Python (the host's cost per op included)"
        if graphs
        else "times: eager execution, each op dispatched in turn (the per-op cost included)"
    )
    notes = [
        "counted on meta with the model's own forward and KV cache (transformers' DynamicCache)",
        timing,
        f"activations at {precision.dtype}; weight and KV-cache reads rescaled to {precision.weight_bits}-bit "
        f"weights and {precision.kv_dtype} KV cache",
        "memory = weights + KV cache at the full context; activations and framework buffers not included",
    ]
    if experts:
        notes.append(
            "mixture of experts: routing is unknown on meta; each token goes to its top-k experts and tokens are "
            "spread evenly, so a step reads min(experts, routed tokens) experts' weights"
        )
    spec = QUICK_SOURCE if measures_bandwidth(device) else "spec peaks x default efficiency"
    rates = "calibrated" if device.calibration else "kernel models" if graphs else spec
    notes.append(f"rates: {device.name}, {rates}")
    return notes


__getattr__ = renamed(
    __name__,
    {"cache_tensors": reachable_tensors, "DTYPES": (FLOATING_DTYPES, "torchcost.prepare.FLOATING_DTYPES")},
)
