"""One taxonomy of operators, shared by every part of the prediction: the class of an op (what kind of kernel
it runs) read from its ``OpRecord`` alone, so that a profile counted on any device, meta included, can be
predicted.

Classes: ``conv`` (dense or lightly grouped convolution), ``depthwise_conv`` (a grouped convolution whose groups
hold at most a quarter of the input channels: depthwise, MobileNet- and ResNeXt-style), ``matmul`` (dense,
batched, quantized and expert matrix products, RNN gates), ``attention`` (fused attention kernels and PyTorch's
fused transformer layers), ``norm``, ``pooling`` (pooling, resizing, grid sampling), ``reduction`` (sums, means,
softmax, sorting), ``movement`` (copies, concatenation, padding, gathers: bytes and no FLOPs), ``view`` (views,
reshapes and allocations that move no bytes: they launch no kernel) and ``pointwise`` (everything else that
computes per element).

Which ops are matrix products is said where their formulas are registered (``register(..., family="matmul")``):
a record carries it (``OpRecord.family``), and a record built by hand is classed by its op's name among
``ops_in_family("matmul")``.
"""

from __future__ import annotations

import functools
from typing import Any

from torchcost.counting.registry import ops_in_family
from torchcost.errors import renamed
from torchcost.records import OpRecord

CLASSES = (
    "conv",
    "depthwise_conv",
    "matmul",
    "attention",
    "norm",
    "pointwise",
    "pooling",
    "reduction",
    "movement",
    "view",
)
# What the rate-based roofline distinguishes: its compute rates are per class, everything else is "other".
RATE_CLASSES = ("matmul", "attention", "conv", "depthwise_conv")

# Matrix products by name besides the "matmul" family, ops without a formula among them: every bitsandbytes op
# (its quantizing and scaling around the products too) and the fused RNN kernels' backward and weight packing.
MATMUL_PREFIXES = ("bitsandbytes.", "mkldnn_rnn", "_cudnn_rnn")
# nn.MultiheadAttention's and nn.TransformerEncoderLayer's fused inference kernels (projections included)
FUSED_TRANSFORMER_OPS = {"_native_multi_head_attention", "_transformer_encoder_layer_fwd"}
NORM_WORDS = ("batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm")
POOLING_WORDS = ("pool", "upsample", "interpolate", "grid_sampler")
REDUCTIONS = {
    "sum",
    "mean",
    "amax",
    "amin",
    "max",
    "min",
    "argmax",
    "argmin",
    "prod",
    "var",
    "std",
    "var_mean",
    "std_mean",
    "norm",
    "linalg_vector_norm",
    "logsumexp",
    "cumsum",
    "softmax",
    "_softmax",
    "_log_softmax",
    "_safe_softmax",
    "_softmax_backward_data",
    "_log_softmax_backward_data",
    "topk",
    "sort",
    "any",
    "all",
}


def op_class(record: OpRecord) -> str:
    """The class of an op (see the module docstring)."""
    named = "matmul" if record.family == "matmul" else _class_by_name(record.op)
    if named == "convolution":
        shapes = record.input_shapes
        if len(shapes) >= 2 and len(shapes[1]) >= 3:
            return "depthwise_conv" if is_depthwise(record) else "conv"
    elif named:
        return named
    if record.cost.memory_access == 0:
        return "view"  # views, reshapes, metadata, allocations: the dispatch alone
    if record.cost.flops == 0:
        return "movement"  # copies, cat, padding, gathers
    return "pointwise"


@functools.cache
def _class_by_name(op: str) -> str:
    """The class an op's name alone decides ("convolution" when its shapes decide which), or "" when its costs
    do (a profile holds thousands of records of a few dozen ops: this runs once per op)."""
    name = op.removeprefix("aten.")
    if "attention" in name or name in FUSED_TRANSFORMER_OPS:
        return "attention"
    if "convolution" in name:
        return "convolution"
    if is_matmul(name):
        return "matmul"
    if any(word in name for word in NORM_WORDS):
        return "norm"
    if any(word in name for word in POOLING_WORDS):
        return "pooling"
    return "reduction" if name in REDUCTIONS else ""


def is_depthwise(record: OpRecord) -> bool:
    """A convolution whose groups hold at most a quarter of the input channels. The weight is (C_out,
    C_in / groups, ...) and the input (N, C_in, ...); a backward's first tensor is the output's gradient, so
    its input is the second."""
    backward = "backward" in record.op
    x = record.input_shapes[1] if backward and len(record.input_shapes) >= 3 else record.input_shapes[0]
    w = record.input_shapes[2] if backward and len(record.input_shapes) >= 3 else record.input_shapes[1]
    return len(x) >= 2 and w[1] * 4 <= x[1]


def is_matmul(name: str) -> bool:
    """Whether an op (``aten.`` dropped) is a matrix product: dense, batched, quantized or an RNN's gates."""
    products = {op.removeprefix("aten.") for op in ops_in_family("matmul")}  # read when asked: users register more
    return name in products or name.startswith(MATMUL_PREFIXES)


def rate_class(op_class: str) -> str:
    """The class whose compute rate the roofline uses: the GEMM-like classes and depthwise convolutions have
    their own, everything else (elementwise, norms, pooling, data movement) is ``other``."""
    return op_class if op_class in RATE_CLASSES else "other"


def launches_kernel(record: OpRecord) -> bool:
    """Whether the op runs a kernel: ops that move no bytes and compute nothing (views, reshapes, ``detach``,
    ``t``, allocations) are dispatch alone."""
    return record.cost.memory_access > 0 or record.cost.flops > 0


# Ops whose result the host needs before it can go on: a value read back, or an output whose size depends on
# the data. On a GPU the host waits for the device to finish everything before them.
READ_BACK_OPS = {"_local_scalar_dense", "item", "equal", "is_nonzero", "nonzero", "masked_select", "_unique2"}


def reads_back(record: OpRecord) -> bool:
    """Whether the host waits for the op's result (``.item()``, ``nonzero``)."""
    return record.op.removeprefix("aten.") in READ_BACK_OPS


def is_multi_tensor(record: OpRecord) -> bool:
    """A record of a foreach or fused multi-tensor op (``aten._foreach_add_``, ``aten._fused_adamw_``)."""
    return record.op.startswith(("aten._foreach_", "aten._fused_"))


def __getattr__(name: str) -> Any:
    if name != "MATMUL_OPS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # the hand-kept list that the "matmul" family replaced: its aten ops, ``aten.`` dropped, as the list named them
    derived = frozenset(op.removeprefix("aten.") for op in ops_in_family("matmul") if op.startswith("aten."))
    return renamed(__name__, {name: (derived, 'torchcost.counting.registry.ops_in_family("matmul")')})(name)
