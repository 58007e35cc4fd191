"""Pooling (max, average, adaptive) and resampling (upsample / interpolate), forward and backward.

Pooling: one FLOP per (output element, window element): a comparison for max, an add for average
(the final divide replaces the first add). Adaptive pooling windows are computed exactly as PyTorch does:
output i along a dimension of size In -> Out covers [floor(i*In/Out), ceil((i+1)*In/Out)).
Interpolation, per output element: nearest 0 (indexing only); linear 3, bilinear 7, trilinear 15 (2^d
multiplies and 2^d - 1 adds over the 2^d neighbours); bicubic 31 (16 multiplies, 15 adds).
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost

aten = torch.ops.aten


def window_elements(kernel_size: list[int], spatial_dims: int) -> int:
    """Elements in one pooling window; a single size applies to every spatial dimension."""
    sizes = list(kernel_size) if len(kernel_size) == spatial_dims else [kernel_size[0]] * spatial_dims
    return math.prod(sizes)


def _spatial_dims(op_name: str) -> int:
    return int(next(ch for ch in op_name if ch.isdigit()))


@register(
    *ops_named(
        aten,
        [
            "max_pool1d",
            "max_pool2d",
            "max_pool3d",
            "max_pool2d_with_indices",
            "max_pool3d_with_indices",
            "avg_pool1d",
            "avg_pool2d",
            "avg_pool3d",
            "mkldnn_max_pool2d",
            "mkldnn_max_pool3d",
        ],
    )
)
def pool(call: OpCall) -> OpCost:
    dims = _spatial_dims(call.op.overloadpacket.__name__)
    return call.cost(flops=call.output.numel() * window_elements(call.arg(1), dims))


@register(*ops_named(aten, ["avg_pool2d_backward", "avg_pool3d_backward"]))
def avg_pool_backward(call: OpCall) -> OpCost:
    # each output gradient is spread over its window: one add per (output, window element)
    dims = _spatial_dims(call.op.overloadpacket.__name__)
    return call.cost(flops=call.arg(0).numel() * window_elements(call.arg(2), dims))


@register(*ops_named(aten, ["max_pool2d_with_indices_backward", "max_pool3d_with_indices_backward"]))
def max_pool_backward(call: OpCall) -> OpCost:
    # each output gradient is added to the one input it came from
    return call.cost(flops=call.arg(0).numel())


def adaptive_window_total(in_size: int, out_size: int) -> int:
    """Sum of the window lengths of adaptive pooling along one dimension."""
    return sum(-((-(i + 1) * in_size) // out_size) - (i * in_size) // out_size for i in range(out_size))


def adaptive_pool_flops(x: torch.Tensor, out: torch.Tensor, dims: int) -> int:
    leading = math.prod(out.shape[:-dims])  # batch and channels
    windows = math.prod(adaptive_window_total(i, o) for i, o in zip(x.shape[-dims:], out.shape[-dims:], strict=True))
    return leading * windows


@register(
    *ops_named(
        aten,
        [
            "_adaptive_avg_pool2d",
            "_adaptive_avg_pool3d",
            "adaptive_max_pool2d",
            "adaptive_max_pool3d",
            "adaptive_max_pool1d",
        ],
    )
)
def adaptive_pool(call: OpCall) -> OpCost:
    dims = _spatial_dims(call.op.overloadpacket.__name__)
    return call.cost(flops=adaptive_pool_flops(call.arg(0), call.output, dims))


@register(
    *ops_named(
        aten,
        [
            "_adaptive_avg_pool2d_backward",
            "_adaptive_avg_pool3d_backward",
            "adaptive_max_pool2d_backward",
            "adaptive_max_pool3d_backward",
        ],
    )
)
def adaptive_pool_backward(call: OpCall) -> OpCost:
    # one add per (output gradient, window element): the forward's count
    dims = _spatial_dims(call.op.overloadpacket.__name__)
    grad_out, x = call.arg(0), call.arg(1)
    return call.cost(flops=adaptive_pool_flops(x, grad_out, dims))


INTERPOLATION_FLOPS = {
    "upsample_nearest1d": 0,
    "upsample_nearest2d": 0,
    "upsample_nearest3d": 0,
    "_upsample_nearest_exact1d": 0,
    "_upsample_nearest_exact2d": 0,
    "_upsample_nearest_exact3d": 0,
    "upsample_linear1d": 3,
    "upsample_bilinear2d": 7,
    "_upsample_bilinear2d_aa": 7,
    "upsample_trilinear3d": 15,
    "upsample_bicubic2d": 31,
    "_upsample_bicubic2d_aa": 31,
}


@register(*ops_named(aten, list(INTERPOLATION_FLOPS)))
def interpolate(call: OpCall) -> OpCost:
    per_output = INTERPOLATION_FLOPS[call.op.overloadpacket.__name__]
    return call.cost(flops=call.output.numel() * per_output)


@register(*ops_named(aten, [name + "_backward" for name in INTERPOLATION_FLOPS]))
def interpolate_backward(call: OpCall) -> OpCost:
    # the gradient of each output is spread over the same neighbours: the forward's count, at least 1 add
    per_output = INTERPOLATION_FLOPS[call.op.overloadpacket.__name__.removesuffix("_backward")]
    return call.cost(flops=call.arg(0).numel() * max(per_output, 1))
