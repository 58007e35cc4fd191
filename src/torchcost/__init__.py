"""torchcost: what a PyTorch model costs and why.

>>> import torch, torchcost
>>> p = torchcost.profile(torch.nn.Linear(256, 1000), torch.randn(1, 256))
>>> p.macs, p.params.total
(256000, 257000)
"""

from torchcost.counting import DuplicateFormulaError, OpCall, register, registered_ops, unregister
from torchcost.from_spec import profile_spec
from torchcost.inputs import InputOptions
from torchcost.params import count_params, size_bytes, size_if
from torchcost.profiler import ProfilingError, copy_to, profile
from torchcost.records import (
    MemoryAccess,
    ModuleStats,
    OpCost,
    OperatorStats,
    OpRecord,
    ParamCount,
    Profile,
    TensorSpec,
    UncountedOp,
)

__version__ = "0.1.0"

__all__ = [
    "DuplicateFormulaError",
    "InputOptions",
    "MemoryAccess",
    "ModuleStats",
    "OpCall",
    "OpCost",
    "OpRecord",
    "OperatorStats",
    "ParamCount",
    "Profile",
    "ProfilingError",
    "TensorSpec",
    "UncountedOp",
    "__version__",
    "copy_to",
    "count_params",
    "profile",
    "profile_spec",
    "register",
    "registered_ops",
    "size_bytes",
    "size_if",
    "unregister",
]
