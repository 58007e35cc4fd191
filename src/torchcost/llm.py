"""LLM inference cost: prefill and per-token decode counted by running the model's own forward on ``meta``
with its real KV cache object, then predicted on any hardware by the roofline.

Nothing here is a per-architecture formula: grouped-query attention, sliding windows, tied embeddings and
mixture-of-experts routing are whatever the model code does. What is assumed is said in ``assumptions``.
The model a spec names is built and checked by ``torchcost.llm_models``; the result types are in
``torchcost.llm_results``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from torchcost import llm_models
from torchcost.errors import renamed
from torchcost.hardware import Hardware, hardware
from torchcost.llm_models import build_llm, check_causal_lm, check_context
from torchcost.llm_results import LatentCache, PhaseCost, SweepPoint
from torchcost.llm_results import LLMProfile as LLMProfile  # re-exported: torchcost.LLMProfile
from torchcost.peak_memory.prefill import prefill_activation_bytes
from torchcost.predict import EXECUTIONS, gpu, predict
from torchcost.predict.kernels import tensor_bytes, weight_bytes
from torchcost.predict.roofline import QUICK_SOURCE, measures_bandwidth
from torchcost.predict.taxonomy import op_class
from torchcost.prepare import FLOATING_DTYPES, copy_to
from torchcost.profiler import profile
from torchcost.records import OpRecord, Profile
from torchcost.sources.hf_cache import with_cache
from torchcost.tensors import reachable_tensors
from torchcost.units import si

BITS = {"fp32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "int4": 4}
MAX_SWEEP_BATCH = 1024


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
    {
        "cache_tensors": reachable_tensors,
        "DTYPES": (FLOATING_DTYPES, "torchcost.prepare.FLOATING_DTYPES"),
        "preset_config": llm_models.preset_config,
        "max_positions": llm_models.max_positions,
        "MAX_POSITION_KEYS": (llm_models.MAX_POSITION_KEYS, "torchcost.llm_models.MAX_POSITION_KEYS"),
    },
)
