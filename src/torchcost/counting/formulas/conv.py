"""Convolutions (1d/2d/3d, grouped, dilated, strided, transposed) and their backward.

Source: the standard count used by torchvision's published ``_ops`` and by the ShuffleNet V2 paper:
one MAC per (output element, input channel of its group, kernel position).
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, register
from torchcost.records import OpCost

aten = torch.ops.aten


def conv_macs(x_shape: torch.Size, w_shape: torch.Size, out_shape: torch.Size, transposed: bool) -> int:
    """MACs of a convolution.

    Regular: weight is (C_out, C_in/groups, *kernel) and each output element takes C_in/groups * kernel MACs.
    Transposed: weight is (C_in, C_out/groups, *kernel) and each input element scatters into
    C_out/groups * kernel outputs.
    """
    per_element = w_shape[1] * math.prod(w_shape[2:])
    return math.prod(x_shape if transposed else out_shape) * per_element


@register(aten.convolution, aten._convolution, aten.convolution_overrideable)
def convolution(call: OpCall) -> OpCost:
    x, w, bias, out = call.arg(0), call.arg(1), call.arg(2), call.output
    macs = conv_macs(x.shape, w.shape, out.shape, bool(call.arg(6)))
    bias_adds = out.numel() if bias is not None else 0
    return call.cost(macs=macs, flops=bias_adds)


@register(aten.convolution_backward, aten.convolution_backward_overrideable)
def convolution_backward(call: OpCall) -> OpCost:
    grad_out, x, w = call.arg(0), call.arg(1), call.arg(2)
    transposed, mask = bool(call.arg(7)), call.arg(10)
    forward_macs = conv_macs(x.shape, w.shape, grad_out.shape, transposed)
    # grad_input is a transposed convolution of grad_out with w; grad_weight correlates x with grad_out:
    # each costs as many MACs as the forward. grad_bias sums grad_out over batch and space.
    macs = forward_macs * (int(mask[0]) + int(mask[1]))
    return call.cost(macs=macs, flops=grad_out.numel() if mask[2] else 0)
