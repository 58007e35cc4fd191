"""Matrix products: mm, addmm, bmm, baddbmm, mv, dot. ``linear``, ``matmul`` and ``einsum`` reach these. Each is
registered in the ``"matmul"`` family, which its records carry.

An (m, k) x (k, n) product is m*k*n multiply-accumulates; a bias adds one FLOP per output element.
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost
from torchcost.tensors import tensor_bytes

aten = torch.ops.aten


def matmul_macs(a: torch.Tensor, b: torch.Tensor) -> int:
    """MACs of a batched (..., m, k) x (..., k, n) product: batch * m * k * n."""
    *batch, m, k = a.shape
    n = b.shape[-1]
    return math.prod(batch) * m * k * n


@register(aten.mm, aten._int_mm, *ops_named(aten, ["_scaled_mm"]), family="matmul")
def mm(call: OpCall) -> OpCost:
    # (m, k) @ (k, n) -> (m, n): m*k*n MACs
    return call.cost(macs=matmul_macs(call.arg(0), call.arg(1)))


@register(aten.bmm, family="matmul")
def bmm(call: OpCall) -> OpCost:
    # (b, m, k) @ (b, k, n) -> (b, m, n): b*m*k*n MACs
    return call.cost(macs=matmul_macs(call.arg(0), call.arg(1)))


@register(aten.addmm, aten.baddbmm, family="matmul")
def addmm(call: OpCall) -> OpCost:
    # bias + a @ b: the product's MACs plus one add per output element
    return call.cost(macs=matmul_macs(call.arg(1), call.arg(2)), flops=call.output.numel())


@register(aten._addmm_activation, family="matmul")
def addmm_activation(call: OpCall) -> OpCost:
    # act(bias + a @ b): one add and one activation per output element
    return call.cost(macs=matmul_macs(call.arg(1), call.arg(2)), flops=2 * call.output.numel())


@register(aten.addbmm, family="matmul")
def addbmm(call: OpCall) -> OpCost:
    # bias + sum_b(a[b] @ b2[b]): the products, then one add per output element for the bias
    return call.cost(macs=matmul_macs(call.arg(1), call.arg(2)), flops=call.output.numel())


@register(aten.mv, family="matmul")
def mv(call: OpCall) -> OpCost:
    # (m, n) @ (n,) -> (m,): m*n MACs
    m, n = call.arg(0).shape
    return call.cost(macs=m * n)


@register(aten.addmv, family="matmul")
def addmv(call: OpCall) -> OpCost:
    m, n = call.arg(1).shape
    return call.cost(macs=m * n, flops=m)


@register(aten.dot, aten.vdot, family="matmul")
def dot(call: OpCall) -> OpCost:
    # (n,) . (n,): n MACs
    return call.cost(macs=call.arg(0).numel())


@register(*ops_named(aten, ["_grouped_mm"]), family="matmul")
def grouped_mm(call: OpCall) -> OpCost:
    """Grouped GEMM (mixture-of-experts layers). Each row of a 2-D ``self`` meets one group's (K, N) matrix,
    so MACs = rows x K x N whatever the routing. 3-D x 3-D is a batched product; 2-D x 2-D groups along K
    (out (G, M, N), M x K x N MACs in all); 3-D (G, M, K) x 2-D (K, N) groups along N (out (M, N)).

    Memory access: ``self``, the output and the weights of the groups that receive rows. The routing
    (``offs``) is unknown on meta, so rows are assumed spread evenly: min(groups, rows) groups are read.
    """
    a, b = call.arg(0), call.arg(1)
    if a.dim() == 2 and b.dim() == 3:
        rows, k = a.shape
        groups, n = b.shape[0], b.shape[-1]
        active = min(groups, rows)
        weights = tensor_bytes(b) * active // groups
        read = tensor_bytes(a) + weights + sum(tensor_bytes(t) for t in call.inputs[2:])
        return call.cost(macs=rows * k * n, bytes_read=read)
    if a.dim() == 3 and b.dim() == 2:  # (G, M, K) x (K, N): group g makes columns offs[g-1]:offs[g]
        return call.cost(macs=a.shape[1] * a.shape[2] * b.shape[-1])
    return call.cost(macs=matmul_macs(a, b))
