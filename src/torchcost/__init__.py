"""torchcost: what a PyTorch model costs and why.

>>> import torch, torchcost
>>> p = torchcost.profile(torch.nn.Linear(256, 1000), torch.randn(1, 256))
>>> p.macs, p.params.total
(256000, 257000)
"""

from torchcost import report  # noqa: F401  (installs how results print: torchcost.display)
from torchcost.analysis import Analysis, analyze
from torchcost.counting import DuplicateFormulaError, OpCall, register, register_module, registered_ops, unregister
from torchcost.errors import ProfilingError
from torchcost.explain import Finding, explain
from torchcost.from_spec import profile_spec
from torchcost.hardware import Hardware, hardware, known_hardware
from torchcost.hardware.calibration import Calibration
from torchcost.inputs import InputOptions
from torchcost.llm import LLMProfile, llm_profile
from torchcost.measure.latency import BatchLatency, Latency, measure
from torchcost.measure.op_timing import measure_ops
from torchcost.multi_gpu import Layout, ParallelEstimate, TensorPlan, Training, parallel
from torchcost.multi_gpu import search as search_layouts
from torchcost.params import count_params, size_bytes, size_if
from torchcost.peak_memory import MemoryProfile, memory
from torchcost.peak_memory.fit import BatchFit, max_batch
from torchcost.predict import OpPrediction, Prediction, predict
from torchcost.predict.calibrate import calibrate
from torchcost.prepare import copy_to
from torchcost.profiler import profile
from torchcost.records import (
    MemoryAccess,
    ModuleStats,
    OpCost,
    OperatorStats,
    OpRecord,
    ParamCount,
    Profile,
    TensorSpec,
    TrainingStep,
    UncountedOp,
)
from torchcost.sweep import SweepResult, sweep
from torchcost.version import __version__

__all__ = [
    "Analysis",
    "BatchFit",
    "BatchLatency",
    "Calibration",
    "DuplicateFormulaError",
    "Finding",
    "Hardware",
    "InputOptions",
    "LLMProfile",
    "Latency",
    "Layout",
    "MemoryAccess",
    "MemoryProfile",
    "ModuleStats",
    "OpCall",
    "OpCost",
    "OpPrediction",
    "OpRecord",
    "OperatorStats",
    "ParallelEstimate",
    "ParamCount",
    "Prediction",
    "Profile",
    "ProfilingError",
    "SweepResult",
    "TensorPlan",
    "TensorSpec",
    "Training",
    "TrainingStep",
    "UncountedOp",
    "__version__",
    "analyze",
    "calibrate",
    "copy_to",
    "count_params",
    "explain",
    "hardware",
    "known_hardware",
    "llm_profile",
    "max_batch",
    "measure",
    "measure_ops",
    "memory",
    "parallel",
    "predict",
    "profile",
    "profile_spec",
    "register",
    "register_module",
    "registered_ops",
    "search_layouts",
    "size_bytes",
    "size_if",
    "sweep",
    "unregister",
]
