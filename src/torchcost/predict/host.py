"""The host's side of eager execution: what issuing each op costs the CPU thread that runs the model's Python
(the dispatcher, the framework's checks, the library's set-up, the kernel launch), and what each module call
costs beyond its ops (``nn.Module.__call__``, hooks, the Python of ``forward``).

Costs are per host class, because the libraries differ: a cuDNN convolution looks up its algorithm and
descriptors, a cuBLAS product picks a kernel, a norm computes its launch shape, a plain TensorIterator kernel
does least, and a view launches nothing. An op that launches several kernels (a convolution and its bias, a
fused attention layer) pays one launch for each extra kernel. Multi-tensor (foreach) optimizer ops pay once per
call plus a little per tensor in their lists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from torchcost.predict.taxonomy import is_multi_tensor, launches_kernel, op_class
from torchcost.records import OpRecord

HOST_CLASSES = ("view", "kernel", "norm", "conv", "matmul", "foreach")


@dataclass(frozen=True)
class HostCosts:
    """Seconds of host time per op by host class, per extra kernel, per foreach tensor and per module call."""

    dispatch_s: dict[str, float]  # host class -> seconds to issue one op of it
    extra_kernel_s: float  # each kernel an op launches beyond its first
    foreach_tensor_s: float  # each tensor in a multi-tensor op's lists
    module_call_s: float
    graph_replay_s: float  # replaying a captured CUDA graph (execution="graphs"): one cost per run
    source: str

    def op_s(self, host_class: str, kernels: int) -> float:
        """Issuing one op of ``host_class`` that launches ``kernels`` kernels."""
        return self.dispatch_s[host_class] + self.extra_kernel_s * max(kernels - 1, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dispatch_s": dict(self.dispatch_s),
            "extra_kernel_s": self.extra_kernel_s,
            "foreach_tensor_s": self.foreach_tensor_s,
            "module_call_s": self.module_call_s,
            "graph_replay_s": self.graph_replay_s,
            "source": self.source,
        }


def host_class(record: OpRecord) -> str:
    """The host class of an op: what its dispatch costs like."""
    if not launches_kernel(record):
        return "view"
    cls = op_class(record)
    if cls in ("conv", "depthwise_conv"):
        return "conv"
    if cls in ("matmul", "attention"):
        return "matmul"
    if cls == "norm":
        return "norm"
    if is_multi_tensor(record):
        return "foreach"
    return "kernel"


def scaled(costs: HostCosts, factor: float, source: str) -> HostCosts:
    """Every cost times ``factor``: a host that is faster or slower than the one measured."""
    dispatch = {name: seconds * factor for name, seconds in costs.dispatch_s.items()}
    return replace(
        costs,
        dispatch_s=dispatch,
        extra_kernel_s=costs.extra_kernel_s * factor,
        foreach_tensor_s=costs.foreach_tensor_s * factor,
        module_call_s=costs.module_call_s * factor,
        graph_replay_s=costs.graph_replay_s * factor,
        source=source,
    )
