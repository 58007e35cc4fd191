"""Attention: every ATen variant of scaled_dot_product_attention, forward and backward, and PyTorch's fused
``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` inference kernels.

For queries (B, H, L, E), keys (B, Hk, S, E) and values (B, Hk, S, Ev), with P (query, key) pairs per head:
  forward MACs  = B*H*P*(E + Ev)      (Q K^T, then softmax(..) V)
  backward MACs = B*H*P*(3E + 2Ev)    (recompute Q K^T; dV, dP, dQ, dK)
P = L*S without a mask; with ``is_causal`` (top-left aligned, query i sees keys 0..i) the fused kernels skip
the masked pairs, so P = sum_i min(i + 1, S). Softmax costs 5 FLOPs per score (max, subtract, exp, sum,
divide); the backward recomputes it and differentiates it (5 + 4 per score).
Grouped-query attention (Hk < H) costs the same MACs per query head.
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost

aten = torch.ops.aten

SOFTMAX_FLOPS = 5
SOFTMAX_BACKWARD_FLOPS = 4


def attended_pairs(queries: int, keys: int, causal: bool) -> int:
    """(query, key) pairs computed per head; a causal mask lets query i see keys 0..i."""
    if not causal:
        return queries * keys
    if queries <= keys:
        return queries * (queries + 1) // 2
    return keys * (keys + 1) // 2 + (queries - keys) * keys


def sdpa_cost(call: OpCall, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, backward: bool) -> OpCost:
    """q, k, v in (B, H, L, E) layout."""
    heads = math.prod(q.shape[:-2])  # B * H
    pairs = heads * attended_pairs(q.shape[-2], k.shape[-2], causal)
    e, ev = q.shape[-1], v.shape[-1]
    if backward:
        return call.cost(macs=pairs * (3 * e + 2 * ev), flops=pairs * (SOFTMAX_FLOPS + SOFTMAX_BACKWARD_FLOPS))
    return call.cost(macs=pairs * (e + ev), flops=pairs * SOFTMAX_FLOPS)


_BHLE = [
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
]
# The lower-level CUDA kernels take (B, L, H, E).
_BLHE = ["_flash_attention_forward", "_efficient_attention_forward"]


def _is_causal(call: OpCall) -> bool:
    # the memory-efficient kernels encode the mask as custom_mask_type: 0 none, 1 top-left, 2 bottom-right
    return bool(call.named("is_causal", False)) or bool(call.named("custom_mask_type", 0))


@register(*ops_named(aten, _BHLE + [name + "_backward" for name in _BHLE]))
def sdpa(call: OpCall) -> OpCost:
    q, k, v = call.named("query"), call.named("key"), call.named("value")
    return sdpa_cost(call, q, k, v, _is_causal(call), call.op.overloadpacket.__name__.endswith("_backward"))


@register(*ops_named(aten, _BLHE + [name.replace("forward", "backward") for name in _BLHE]))
def sdpa_blhe(call: OpCall) -> OpCost:
    q, k, v = (call.named(name).transpose(1, 2) for name in ("query", "key", "value"))
    return sdpa_cost(call, q, k, v, _is_causal(call), "backward" in call.op.overloadpacket.__name__)


def multi_head_attention_macs(batch: int, queries: int, keys: int, embed: int) -> int:
    """In-projections of q (L rows) and k, v (S rows), attention over E = H * head_dim, out-projection."""
    projections = batch * (queries + 2 * keys) * embed * embed + batch * queries * embed * embed
    attention = batch * queries * keys * 2 * embed
    return projections + attention


def multi_head_attention_flops(batch: int, queries: int, keys: int, embed: int, heads: int) -> int:
    """Non-MAC FLOPs: the four bias adds and the softmax of the scores."""
    biases = batch * (2 * queries + 2 * keys) * embed
    return biases + SOFTMAX_FLOPS * batch * heads * queries * keys


@register(aten._native_multi_head_attention)
def native_multi_head_attention(call: OpCall) -> OpCost:
    q, k = call.arg(0), call.arg(1)  # (B, L, E), (B, S, E)
    embed, heads = call.arg(3), call.arg(4)
    batch, queries, keys = q.shape[0], q.shape[1], k.shape[1]
    return call.cost(
        macs=multi_head_attention_macs(batch, queries, keys, embed),
        flops=multi_head_attention_flops(batch, queries, keys, embed, heads),
    )


LAYER_NORM_FLOPS = 8  # statistics 4 + normalise 2 + affine 2, per element (see norm.py)


@register(aten._transformer_encoder_layer_fwd)
def transformer_encoder_layer(call: OpCall) -> OpCost:
    src = call.arg(0)  # (B, L, E)
    embed, heads, ffn = call.arg(1), call.arg(2), call.named("ffn_weight_1").shape[0]
    batch, tokens = src.shape[0], src.shape[1]
    rows = batch * tokens
    macs = multi_head_attention_macs(batch, tokens, tokens, embed) + 2 * rows * embed * ffn
    flops = (
        multi_head_attention_flops(batch, tokens, tokens, embed, heads)
        + rows * (ffn + embed)  # feed-forward biases
        + rows * ffn  # activation
        + 2 * rows * embed  # two residual adds
        + 2 * LAYER_NORM_FLOPS * rows * embed
    )
    return call.cost(macs=macs, flops=flops)
