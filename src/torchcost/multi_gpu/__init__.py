"""Training on many GPUs: memory per rank and step time under data, tensor and pipeline parallelism, ZeRO and
FSDP, worked out from the model's own code on meta."""

from torchcost.multi_gpu.estimate import Training, parallel
from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.result import Collective, ParallelEstimate, RankMemory, StepTime
from torchcost.multi_gpu.search import SearchResult, search
from torchcost.multi_gpu.tensor_parallel import TensorPlan

__all__ = [
    "Collective",
    "Layout",
    "ParallelEstimate",
    "RankMemory",
    "SearchResult",
    "StepTime",
    "TensorPlan",
    "Training",
    "parallel",
    "search",
]
