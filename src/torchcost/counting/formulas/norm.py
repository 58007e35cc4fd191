"""Normalisation: batch, layer, group and RMS norm, forward and backward.

FLOPs per element (documented in docs/conventions.md):
  statistics, when computed here: 4 (mean: 1 add; variance: subtract, square, add)
  normalise: 2 (subtract the mean, multiply by the inverse standard deviation)
  affine: 1 for the weight, 1 for the bias
RMS norm: statistics 2 (square, add), normalise 1, weight 1.
Backward: 8 per element for the input gradient, plus 1 each for the weight and bias gradients.
Batch norm in eval mode uses the running statistics, so it computes none.
"""

from __future__ import annotations

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost

aten = torch.ops.aten

STATISTICS, NORMALISE = 4, 2
RMS_STATISTICS, RMS_NORMALISE = 2, 1
BACKWARD_INPUT = 8


def norm_flops(elements: int, statistics: bool, weight: object, bias: object) -> int:
    per_element = NORMALISE + (STATISTICS if statistics else 0)
    per_element += int(weight is not None) + int(bias is not None)
    return elements * per_element


_BATCH_NORMS = [
    "native_batch_norm",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional",
    "_batch_norm_with_update",
    "_batch_norm_with_update_functional",
    "_batch_norm_no_update",
    "cudnn_batch_norm",
    "miopen_batch_norm",
]


@register(*ops_named(aten, _BATCH_NORMS))
def batch_norm(call: OpCall) -> OpCost:
    x, weight, bias = call.arg(0), call.arg(1), call.arg(2)
    name = call.op.overloadpacket.__name__
    training = bool(call.named("training", "with_update" in name))
    return call.cost(flops=norm_flops(x.numel(), training, weight, bias))


@register(aten.native_layer_norm)
def layer_norm(call: OpCall) -> OpCost:
    x, weight, bias = call.arg(0), call.arg(2), call.arg(3)
    return call.cost(flops=norm_flops(x.numel(), True, weight, bias))


@register(aten.native_group_norm)
def group_norm(call: OpCall) -> OpCost:
    x, weight, bias = call.arg(0), call.arg(1), call.arg(2)
    return call.cost(flops=norm_flops(x.numel(), True, weight, bias))


@register(*ops_named(aten, ["_fused_rms_norm"]))
def rms_norm(call: OpCall) -> OpCost:
    x, weight = call.arg(0), call.arg(2)
    per_element = RMS_STATISTICS + RMS_NORMALISE + int(weight is not None)
    return call.cost(flops=x.numel() * per_element)


@register(
    *ops_named(
        aten,
        [
            "native_batch_norm_backward",
            "batch_norm_backward",
            "cudnn_batch_norm_backward",
            "miopen_batch_norm_backward",
            "native_layer_norm_backward",
            "native_group_norm_backward",
            "_fused_rms_norm_backward",
        ],
    )
)
def norm_backward(call: OpCall) -> OpCost:
    grad_out = call.arg(0)
    # one gradient per requested output: input, then weight, then bias
    outputs = [t for t in call.out if isinstance(t, torch.Tensor)] if isinstance(call.out, tuple) else []
    weight_grads = max(len(outputs) - 1, 0)
    return call.cost(flops=grad_out.numel() * (BACKWARD_INPUT + weight_grads))
