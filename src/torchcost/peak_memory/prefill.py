"""Prefill activations of a causal LM, for ``torchcost llm``: one tracked prefill on meta with the model's own
KV cache, which is kept apart from the activations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from torchcost.peak_memory.estimate import Settings, estimate

KV_CACHE = "kv_cache"


def prefill_activation_bytes(
    model: nn.Module, tokens: torch.Tensor, cache: Any, cache_tensors: Callable[[Any], list[torch.Tensor]], target: str
) -> int:
    """Peak bytes of a prefill beyond the weights, buffers, token ids and the KV cache written so far: hidden
    states, attention and MLP intermediates and the logits alive at the peak. ``cache`` is an empty KV cache
    object; ``cache_tensors`` finds the tensors it holds."""
    settings = Settings(False, None, None, None, None, None)
    kwargs = {"past_key_values": cache, "use_cache": True}
    result = estimate(model, (tokens,), kwargs, settings, "meta", target, {KV_CACHE: lambda: cache_tensors(cache)})
    kept = ("parameters", "buffers", KV_CACHE)
    inputs = result.timeline[0].bytes["inputs_outputs"]  # the token ids, alive from the start
    return result.peak_bytes - sum(result.breakdown.get(k, 0) for k in kept) - inputs
