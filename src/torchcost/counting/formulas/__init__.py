"""Formula families. Importing this package registers every built-in formula."""

from torchcost.counting.formulas import (
    attention,
    conv,
    detection,
    elementwise,
    matmul,
    memory,
    norm,
    pooling,
    quantized,
    rnn,
    selection,
)
from torchcost.counting.formulas.elementwise import pointwise, reduction

__all__ = [
    "attention",
    "conv",
    "detection",
    "elementwise",
    "matmul",
    "memory",
    "norm",
    "pointwise",
    "pooling",
    "quantized",
    "reduction",
    "rnn",
    "selection",
]
