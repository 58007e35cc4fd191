"""What an op's time is learned from: its class and a vector of features, both read from its ``OpRecord`` alone
(so that predicting needs only a profile, counted on any device, meta included).

Features (logarithms base 2 of sizes, so that a regressor sees ratios): FLOPs, bytes read, bytes written,
output elements, first input's elements, the working set (bytes read + written) over the last-level cache, and
the bytes of outputs the op allocates (an op that is not in place writes fresh memory: for large outputs the
CPU's allocator maps new pages, and touching them costs a page fault each), and what one element costs its
kind of arithmetic (counted FLOPs are one per element for ``relu`` and ``gelu`` alike: a comparison against a
polynomial of transcendentals); then per class the shape that decides how a kernel tiles its work: a
convolution's channels, kernel area, stride and groups; a matrix product's M, N and K.
"""

from __future__ import annotations

import math

from torchcost.predict.taxonomy import op_class
from torchcost.records import OpRecord, Shape


def _log(value: float) -> float:
    return math.log2(value + 1)


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def features(record: OpRecord, cache_bytes: int) -> list[float]:
    """The feature vector of one op (the same length for every class)."""
    cost = record.cost
    output = _numel(record.output_shapes[0]) if record.output_shapes else 0
    first = _numel(record.input_shapes[0]) if record.input_shapes else 0
    working_set = cost.bytes_read + cost.bytes_written
    common = [
        _log(cost.flops),
        _log(cost.bytes_read),
        _log(cost.bytes_written),
        _log(output),
        _log(first),
        math.log2((working_set + 1) / max(cache_bytes, 1)),
        _log(0 if _in_place(record) else cost.bytes_written),
        element_cost(record.op),
    ]
    return common + _shape_features(record)


FEATURE_COUNT = 12  # calibrations whose samples have another count were made by another version: not used
# What one element costs, by the kind of arithmetic (x86 and Arm vector units alike): a select, compare or
# add; a division or a piecewise polynomial; a transcendental (exp, log, tanh, erf and what is built on them).
# Matched against the op's name without its underscores' decorations (``_softmax``, ``gelu_backward``).
DIVIDING = {"div", "reciprocal", "hardswish", "hardsigmoid", "remainder", "fmod", "lerp", "addcdiv"}
TRANSCENDENTAL = {
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "tanh", "sigmoid", "gelu", "silu", "erf", "erfc",
    "erfinv", "pow", "sqrt", "rsqrt", "sin", "cos", "sinh", "cosh", "tan", "atan", "atan2", "asin", "acos",
    "softplus", "elu", "selu", "celu", "mish", "logit", "softmax", "log_softmax", "safe_softmax", "logsumexp",
    "glu", "log_sigmoid",
}  # fmt: skip


def element_cost(op: str) -> float:
    """0 for a select, compare or add; 1 for a division or a piecewise polynomial; 2 for a transcendental."""
    word = op.removeprefix("aten.").strip("_").split("_backward")[0]
    return 2.0 if word in TRANSCENDENTAL else 1.0 if word in DIVIDING else 0.0


def _in_place(record: OpRecord) -> bool:
    """An op that writes into a tensor it was given (``relu_``, ``add_``, ``copy_``): it allocates nothing."""
    return record.op.endswith("_") and not record.op.endswith("__")


def _shape_features(record: OpRecord) -> list[float]:
    """Four numbers that say how a kernel splits the work: conv (in channels per group, out channels, kernel area,
    stride); matmul (M, N, K, batch); otherwise the output's last dimension, its rank and the number of inputs."""
    shapes, out = record.input_shapes, record.output_shapes[0] if record.output_shapes else ()
    cls = op_class(record)
    if cls in ("conv", "depthwise_conv") and len(shapes) >= 2 and len(out) >= 3:
        x, w = shapes[0], shapes[1]
        stride = x[-1] / out[-1] if out[-1] else 1.0
        return [_log(w[1]), _log(w[0]), _log(_numel(w[2:])), stride]
    if cls == "matmul" and len(shapes) >= 2 and len(out) >= 2:
        a = shapes[-2] if len(shapes) >= 3 else shapes[0]  # addmm(bias, a, b): the last two
        k = a[-1] if a else 1
        return [_log(out[-2]), _log(out[-1]), _log(k), _log(_numel(out[:-2]))]
    return [_log(out[-1] if out else 1), float(len(out)), float(len(shapes)), 0.0]
