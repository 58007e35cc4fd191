"""Operator-level counting: the formula registry and the dispatch mode that applies it."""

from torchcost.counting.mode import CountingMode
from torchcost.counting.module_stack import ModuleStack
from torchcost.counting.registry import (
    DuplicateFormulaError,
    OpCall,
    ops_in_family,
    register,
    register_module,
    registered_ops,
    unregister,
)

__all__ = [
    "CountingMode",
    "DuplicateFormulaError",
    "ModuleStack",
    "OpCall",
    "ops_in_family",
    "register",
    "register_module",
    "registered_ops",
    "unregister",
]
