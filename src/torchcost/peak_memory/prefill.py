"""Prefill activations of a causal LM, for ``torchcost llm``: one tracked prefill on meta with the model's own
KV cache, which is kept apart from the activations."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchcost.hardware import Hardware
from torchcost.peak_memory.estimate import MemorySettings, estimate
from torchcost.sources.hf_cache import with_cache
from torchcost.tensors import reachable_tensors

KV_CACHE = "kv_cache"


def prefill_activation_bytes(model: nn.Module, tokens: torch.Tensor, cache: Any, device: Hardware) -> int:
    """Peak bytes of a prefill on ``device`` beyond the weights, buffers, token ids and the KV cache written so
    far: hidden states, attention and MLP intermediates and the logits alive at the peak (on a GPU, in the
    caching allocator's blocks; cuBLAS's workspace left out). ``cache`` is an empty
    KV cache object (every tensor it holds after the run is the cache)."""
    settings = MemorySettings(False, None, None, None, None, None)
    kwargs = with_cache(model, cache)
    target = "cuda" if device.kind == "gpu" else "cpu"
    labels = {KV_CACHE: lambda: reachable_tensors(cache)}
    result = estimate(model, (tokens,), kwargs, settings, "meta", target, labels, device.capability)
    kept = ("parameters", "buffers", KV_CACHE, "library_workspace")
    inputs = result.timeline[0].bytes["inputs_outputs"]  # the token ids, alive from the start
    return result.peak_bytes - sum(result.breakdown.get(k, 0) for k in kept) - inputs
