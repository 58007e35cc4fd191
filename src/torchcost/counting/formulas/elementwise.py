"""Elementwise ops, reductions and softmax.

Any ATen op tagged ``pointwise`` (add, mul, relu, gelu, sigmoid, where, their in-place and backward forms...)
costs 1 FLOP per output element, whatever its instruction count in a math library: a counting convention,
like the MAC count itself. Any op tagged ``reduction`` (sum, mean, amax, argmax, ...) costs 1 FLOP per input
element. The exceptions below are written out.
"""

from __future__ import annotations

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost

aten = torch.ops.aten

SOFTMAX_FLOPS = 5  # max, subtract, exp, sum, divide
SOFTMAX_BACKWARD_FLOPS = 4  # grad * y, sum, subtract, multiply
VARIANCE_FLOPS = 4  # mean: add; then subtract, square, add
VECTOR_NORM_FLOPS = 2  # square (or abs), add
LOGSUMEXP_FLOPS = 4  # max, subtract, exp, add
# x * clamp(x + 3, 0, 6) / 6: add, clamp below, clamp above, multiply, divide (its decomposition's count; PyTorch
# does not tag it pointwise, and decomposing it on every call cost about 1 ms)
HARDSWISH_FLOPS = 5


def pointwise(call: OpCall) -> OpCost:
    """1 FLOP per output element (the generic rule for ops tagged pointwise)."""
    return call.cost(flops=call.output.numel() if call.outputs else 0)


def reduction(call: OpCall) -> OpCost:
    """1 FLOP per input element (the generic rule for ops tagged reduction)."""
    return call.cost(flops=call.arg(0).numel())


@register(*ops_named(aten, ["_softmax", "_log_softmax", "_safe_softmax"]))
def softmax(call: OpCall) -> OpCost:
    return call.cost(flops=SOFTMAX_FLOPS * call.arg(0).numel())


@register(*ops_named(aten, ["_softmax_backward_data", "_log_softmax_backward_data"]))
def softmax_backward(call: OpCall) -> OpCost:
    return call.cost(flops=SOFTMAX_BACKWARD_FLOPS * call.arg(0).numel())


@register(aten.hardswish, aten.hardswish_)
def hardswish(call: OpCall) -> OpCost:
    return call.cost(flops=HARDSWISH_FLOPS * call.output.numel())


@register(aten.var, aten.std, aten.var_mean, aten.std_mean)
def variance(call: OpCall) -> OpCost:
    return call.cost(flops=VARIANCE_FLOPS * call.arg(0).numel())


@register(aten.linalg_vector_norm, aten.norm)
def vector_norm(call: OpCall) -> OpCost:
    return call.cost(flops=VECTOR_NORM_FLOPS * call.arg(0).numel())


@register(aten.logsumexp)
def logsumexp(call: OpCall) -> OpCost:
    return call.cost(flops=LOGSUMEXP_FLOPS * call.arg(0).numel())


@register(aten.cumsum, aten.cumprod, aten.logcumsumexp, aten.cummax, aten.cummin)
def scan(call: OpCall) -> OpCost:
    # a running sum/product/max: one op per element
    return call.cost(flops=call.arg(0).numel())


@register(aten.native_dropout, aten.bernoulli, aten.bernoulli_)
def dropout(call: OpCall) -> OpCost:
    # draw a random number and compare (dropout also scales): 1 FLOP per output element
    return call.cost(flops=call.output.numel())


@register(*ops_named(aten, ["_is_all_true", "_is_any_true"]))
def is_all_true(call: OpCall) -> OpCost:
    # all() / any() of a boolean tensor (torch._check_tensor_all): a reduction, 1 FLOP per element
    return reduction(call)
