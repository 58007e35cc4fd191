"""Matrix products: mm, addmm, bmm, baddbmm, mv, dot. ``linear``, ``matmul`` and ``einsum`` reach these.

An (m, k) x (k, n) product is m*k*n multiply-accumulates; a bias adds one FLOP per output element.
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost

aten = torch.ops.aten


def matmul_macs(a: torch.Tensor, b: torch.Tensor) -> int:
    """MACs of a batched (..., m, k) x (..., k, n) product: batch * m * k * n."""
    *batch, m, k = a.shape
    n = b.shape[-1]
    return math.prod(batch) * m * k * n


@register(aten.mm, aten._int_mm, *ops_named(aten, ["_scaled_mm"]))
def mm(call: OpCall) -> OpCost:
    # (m, k) @ (k, n) -> (m, n): m*k*n MACs
    return call.cost(macs=matmul_macs(call.arg(0), call.arg(1)))


@register(aten.bmm)
def bmm(call: OpCall) -> OpCost:
    # (b, m, k) @ (b, k, n) -> (b, m, n): b*m*k*n MACs
    return call.cost(macs=matmul_macs(call.arg(0), call.arg(1)))


@register(aten.addmm, aten.baddbmm)
def addmm(call: OpCall) -> OpCost:
    # bias + a @ b: the product's MACs plus one add per output element
    return call.cost(macs=matmul_macs(call.arg(1), call.arg(2)), flops=call.output.numel())


@register(aten._addmm_activation)
def addmm_activation(call: OpCall) -> OpCost:
    # act(bias + a @ b): one add and one activation per output element
    return call.cost(macs=matmul_macs(call.arg(1), call.arg(2)), flops=2 * call.output.numel())


@register(aten.addbmm)
def addbmm(call: OpCall) -> OpCost:
    # bias + sum_b(a[b] @ b2[b]): the products, then one add per output element for the bias
    return call.cost(macs=matmul_macs(call.arg(1), call.arg(2)), flops=call.output.numel())


@register(aten.mv)
def mv(call: OpCall) -> OpCost:
    # (m, n) @ (n,) -> (m,): m*n MACs
    m, n = call.arg(0).shape
    return call.cost(macs=m * n)


@register(aten.addmv)
def addmv(call: OpCall) -> OpCost:
    m, n = call.arg(1).shape
    return call.cost(macs=m * n, flops=m)


@register(aten.dot, aten.vdot)
def dot(call: OpCall) -> OpCost:
    # (n,) . (n,): n MACs
    return call.cost(macs=call.arg(0).numel())
