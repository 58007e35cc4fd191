"""Selection and counting ops: sort, top-k, histograms (mixture-of-experts routing uses all three).

Comparisons count as FLOPs: sorting n elements takes n * ceil(log2 n) per row (a comparison sort's bound);
top-k selection scans each element once, n per row; a histogram adds 1 per input element; unique sorts, then
compares neighbours (n more).
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost

aten = torch.ops.aten


def _rows_and_length(x: torch.Tensor, dim: int) -> tuple[int, int]:
    if x.dim() == 0:
        return 1, 1
    length = x.shape[dim]
    return (x.numel() // length if length else 0), length


@register(aten.sort, aten.argsort)
def sort(call: OpCall) -> OpCost:
    rows, n = _rows_and_length(call.arg(0), call.named("dim", -1))
    return call.cost(flops=rows * n * math.ceil(math.log2(max(n, 1))))


@register(aten.topk)
def topk(call: OpCall) -> OpCost:
    rows, n = _rows_and_length(call.arg(0), call.named("dim", -1))
    return call.cost(flops=rows * n)


@register(aten.histc, aten.bincount)
def histogram(call: OpCall) -> OpCost:
    return call.cost(flops=call.arg(0).numel())


@register(*ops_named(aten, ["_unique", "_unique2", "unique_dim"]))
def unique(call: OpCall) -> OpCost:
    # sort, then compare each element with its neighbour: n ceil(log2 n) + n
    n = call.arg(0).numel()
    return call.cost(flops=n * math.ceil(math.log2(max(n, 1))) + n)


@register(*ops_named(aten, ["unique_consecutive", "unique_dim_consecutive"]))
def unique_consecutive(call: OpCall) -> OpCost:
    return call.cost(flops=call.arg(0).numel())  # one comparison per element
