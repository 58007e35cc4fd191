"""Selection and counting ops: sort, top-k, histograms (mixture-of-experts routing uses all three).

Comparisons count as FLOPs: sorting n elements takes n * ceil(log2 n) per row (a comparison sort's bound);
top-k selection scans each element once, n per row; a histogram adds 1 per input element.
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, register
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
