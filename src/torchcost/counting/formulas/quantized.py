"""Matrix products on quantized weights: PyTorch's packed int8/int4 kernels (torchao reaches them on CPU) and
bitsandbytes' 4-bit and int8 kernels. An (m, k) x (k, n) product is m*k*n MACs whatever the storage; the
per-output scaling after an integer product is 1 FLOP per output element (2 with row and column scales).
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost

aten = torch.ops.aten


def _rows(x: torch.Tensor) -> int:
    return math.prod(x.shape[:-1])


@register(aten._weight_int8pack_mm)
def weight_int8pack_mm(call: OpCall) -> OpCost:
    # (m, k) x int8 (n, k)^T, then one scale per output channel: m*k*n MACs + m*n
    x, out = call.arg(0), call.output
    return call.cost(macs=_rows(x) * x.shape[-1] * out.shape[-1], flops=out.numel())


@register(
    *ops_named(
        aten, ["_weight_int4pack_mm", "_weight_int4pack_mm_for_cpu", "_weight_int4pack_mm_with_scales_and_zeros"]
    )
)
def weight_int4pack_mm(call: OpCall) -> OpCost:
    # (m, k) x packed int4 (n, k)^T with per-group scales and zeros folded into the kernel: m*k*n MACs
    x, out = call.arg(0), call.output
    return call.cost(macs=_rows(x) * x.shape[-1] * out.shape[-1])


@register("bitsandbytes::gemm_4bit")
def gemm_4bit(call: OpCall) -> OpCost:
    # gemm_4bit(A (..., k), B packed, shapeB [n, k], absmax, ...): (..., k) x (k, n), plus the bias if any
    x, (n, k) = call.arg(0), call.arg(2)[:2]
    bias = call.output.numel() if call.named("bias") is not None else 0
    return call.cost(macs=_rows(x) * k * n, flops=bias)


@register("bitsandbytes::int8_linear_matmul")
def int8_linear_matmul(call: OpCall) -> OpCost:
    # int8 (m, k) x int8 (n, k)^T -> int32 (m, n)
    x, out = call.arg(0), call.output
    return call.cost(macs=_rows(x) * x.shape[-1] * out.shape[-1])


@register("bitsandbytes::int8_scaled_mm")
def int8_scaled_mm(call: OpCall) -> OpCost:
    # the int8 product, then row and column scales: 2 FLOPs per output
    x, out = call.arg(0), call.output
    return call.cost(macs=_rows(x) * x.shape[-1] * out.shape[-1], flops=2 * out.numel())


@register("bitsandbytes::int8_mm_dequant")
def int8_mm_dequant(call: OpCall) -> OpCost:
    # int32 (m, n) times its row and column scales (+ bias): 2 (or 3) FLOPs per element
    bias = 1 if call.named("bias") is not None else 0
    return call.cost(flops=(2 + bias) * call.output.numel())


@register("bitsandbytes::dequantize_4bit")
def dequantize_4bit(call: OpCall) -> OpCost:
    # a code-book lookup and a scale per element
    return call.cost(flops=2 * call.output.numel())
