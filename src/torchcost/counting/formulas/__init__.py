"""Formula families. Importing this package registers every built-in formula."""

from torchcost.counting.formulas import attention, conv, elementwise, matmul, memory, norm, pooling, rnn, selection
from torchcost.counting.formulas.elementwise import pointwise, reduction

__all__ = [
    "attention",
    "conv",
    "elementwise",
    "matmul",
    "memory",
    "norm",
    "pointwise",
    "pooling",
    "reduction",
    "rnn",
    "selection",
]
