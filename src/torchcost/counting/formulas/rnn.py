"""Recurrent layers on the fused paths (oneDNN on CPU, cuDNN on CUDA). Elsewhere PyTorch runs RNN, LSTM and
GRU as addmm and elementwise ops, which the generic rules count.

Per time step and batch element, with input size I, hidden size H and G gates (RNN 1, GRU 3, LSTM 4):
  MACs  = G*H*(I + H)                        (input and hidden projections)
  FLOPs = 2*MACs + pointwise*H, where pointwise is what PyTorch's unfused cell runs per hidden unit:
  LSTM 21 (two bias adds and the gate sum over 4H, 3 sigmoid, 2 tanh, 3 mul, 1 add),
  GRU 16 (two bias adds over 3H, 2 sigmoid, 1 tanh, 2 mul, 3 add/sub), RNN 4 (two bias adds, add, activation).
"""

from __future__ import annotations

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost

aten = torch.ops.aten

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
POINTWISE_PER_HIDDEN = {"rnn": 4, "gru": 16, "lstm": 21}
CUDNN_MODES = {0: "rnn", 1: "rnn", 2: "lstm", 3: "gru"}  # RNN_RELU, RNN_TANH, LSTM, GRU


def recurrent_cost(call: OpCall, kind: str, steps_x_batch: int, input_size: int, hidden: int) -> OpCost:
    macs = steps_x_batch * GATES[kind] * hidden * (input_size + hidden)
    return call.cost(macs=macs, flops=steps_x_batch * POINTWISE_PER_HIDDEN[kind] * hidden)


@register(*ops_named(aten, ["mkldnn_rnn_layer"]), family="matmul")
def mkldnn_rnn_layer(call: OpCall) -> OpCost:
    # one layer, one direction: (input, w_ih, w_hh, b_ih, b_hh, hx, cx, reverse, batch_sizes, mode, hidden_size, ...)
    x, w_ih = call.arg(0), call.arg(1)
    hidden = int(call.named("hidden_size"))
    kind = CUDNN_MODES.get(int(call.named("mode", 2)), "lstm")
    steps_x_batch = x.numel() // x.shape[-1]
    return recurrent_cost(call, kind, steps_x_batch, w_ih.shape[1], hidden)


# both run their gates as matrix products, but only _cudnn_rnn is in the "matmul" family: the prediction's old
# hand-kept list (predict/taxonomy.py) left miopen_rnn out, and its predictions stay as they were
@register(*ops_named(aten, ["_cudnn_rnn"]), family="matmul")
@register(*ops_named(aten, ["miopen_rnn"]))
def cudnn_rnn(call: OpCall) -> OpCost:
    # all layers and directions at once; the flat weight list holds w_ih, w_hh[, b_ih, b_hh] per layer-direction
    x, weights = call.arg(0), call.arg(1)
    kind = CUDNN_MODES[int(call.named("mode"))]
    hidden = int(call.named("hidden_size"))
    batch_sizes = call.named("batch_sizes")
    steps_x_batch = sum(batch_sizes) if batch_sizes else x.numel() // x.shape[-1]
    per_layer = int(call.named("weight_stride0"))  # 4 with biases, 2 without
    total = call.cost()
    macs = flops = 0
    for w_ih in weights[::per_layer]:
        part = recurrent_cost(call, kind, steps_x_batch, w_ih.shape[1], hidden)
        macs, flops = macs + part.macs, flops + part.flops
    return OpCost(flops, macs, total.bytes_read, total.bytes_written)
