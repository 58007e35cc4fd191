"""Prefill activations for torchcost llm: the KV cache is kept apart, the logits are in."""

import pytest
import torch

from tests.test_llm import TOY, V, llama
from torchcost.hardware import Hardware
from torchcost.llm import cache_bytes, llm_profile
from torchcost.peak_memory.estimate import MemorySettings, estimate
from torchcost.peak_memory.prefill import KV_CACHE, prefill_activation_bytes
from torchcost.sources.hf_cache import with_cache
from torchcost.tensors import reachable_tensors

transformers = pytest.importorskip("transformers")
TOY_CPU = Hardware("toy-cpu", "toy CPU", "cpu", {"fp32": 1e12}, 1e11, 1e10, 4, "test")


def test_the_kv_cache_is_its_own_category():
    model = llama()
    cache = transformers.DynamicCache(config=model.config)
    ids = torch.zeros(2, 8, dtype=torch.long, device="meta")
    settings = MemorySettings(False, None, None, None, None, None)
    labels = {KV_CACHE: lambda: reachable_tensors(cache)}
    result = estimate(model, (ids,), with_cache(model, cache), settings, "meta", "cpu", labels)
    assert result.timeline[-1].bytes[KV_CACHE] == cache_bytes(cache) > 0
    assert result.timeline[0].bytes[KV_CACHE] == 0  # it fills up during the prefill


def test_prefill_activations_hold_at_least_the_logits():
    batch, prompt = 2, 8
    model = llama()
    tokens = torch.zeros(batch, prompt, dtype=torch.long, device="meta")
    cache = transformers.DynamicCache(config=model.config)
    activations = prefill_activation_bytes(model, tokens, cache, TOY_CPU)
    logits = batch * prompt * V * 4  # fp32: the toy model is not cast
    assert logits <= activations < 10 * logits
    result = llm_profile(llama(), prompt, 4, batch, hardware_name=TOY, sweep=False)
    assert result.prefill_activation_bytes is not None and result.prefill_activation_bytes >= logits // 2  # bf16
    assert result.to_dict()["prefill_activation_bytes"] == result.prefill_activation_bytes
