"""Rates: what the prediction assumes a device achieves per op class, and the roofline time of an op on them.

For a CPU or an SoC from the spec table: its peaks scaled by the default efficiencies below; for a calibrated
machine: each class at the rate measured for it there; for a spec-table GPU: the kernel models' large-product
rates and bandwidth (``gpu.py``), summarised here for the reports' roofs and ridge points.

    roofline time = max(FLOPs / compute rate of the op's class, bytes / bandwidth)

An op is compute-bound when its arithmetic intensity (FLOPs / bytes) is above the ridge point (compute rate /
bandwidth) of its class, memory-bound below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torchcost.hardware import Hardware
from torchcost.predict.calibrate import quick_copy_bandwidth
from torchcost.predict.gpu import GpuRates, math_dtype
from torchcost.predict.kernels import Kernel
from torchcost.predict.taxonomy import RATE_CLASSES, rate_class
from torchcost.records import OpRecord

# Share of a spec-table peak that eager PyTorch typically reaches, per op class, when no calibration exists.
# A starting point, not a measurement: calibrate for numbers about your machine.
SPEC_EFFICIENCY = {"matmul": 0.7, "attention": 0.5, "conv": 0.6, "depthwise_conv": 0.1, "other": 0.5}
BANDWIDTH_EFFICIENCY = 0.8
SPEC_OVERHEAD_S = {"soc": 10e-6, "cpu": 2e-6}  # eager dispatch (+ launch on an SoC's GPU) per op, typical
SPEC_SOURCE = "spec peaks x efficiency"
CALIBRATED = "calibrated"
QUICK_SOURCE = "peaks from /proc/cpuinfo x efficiency, bandwidth from a 0.2 s copy (torchcost calibrate measures more)"


@dataclass(frozen=True)
class Rates:
    """What the prediction assumes the hardware achieves."""

    compute: dict[str, float]  # rate class (matmul, attention, conv, depthwise_conv, other) -> FLOP/s
    bandwidth: float  # bytes/s
    overhead_s: float  # fixed cost per op (dispatch, launch)
    source: str  # "calibrated", "spec peaks x efficiency" or the GPU kernel models' source
    class_overhead_s: dict[str, float] = field(default_factory=dict)  # larger set-up costs of some op classes

    def overhead(self, op_class: str) -> float:
        return self.class_overhead_s.get(rate_class(op_class), self.overhead_s)

    def ridge_point(self, op_class: str) -> float:
        return self.compute[rate_class(op_class)] / self.bandwidth

    def seconds(self, record: OpRecord, op_class: str) -> tuple[float, float]:
        """The op's compute and memory time on these rates."""
        return record.cost.flops / self.compute[rate_class(op_class)], record.cost.memory_access / self.bandwidth


def rates_for(hardware: Hardware, dtype: str = "fp32") -> Rates:
    """The rates to predict a CPU or SoC with: calibrated when the hardware has a calibration, else peaks x
    efficiency. Raises ``ValueError`` (in one line) when the hardware gives neither."""
    cal = hardware.calibration
    if cal is not None and dtype in cal.matmul_flops:
        matmul = cal.matmul_flops[dtype]
        scale = matmul / cal.matmul_flops.get("fp32", matmul)  # conv rates were measured in fp32
        compute = {
            "matmul": matmul,
            "attention": matmul,
            "conv": cal.conv_flops * scale,
            "depthwise_conv": cal.depthwise_conv_flops * scale,
            "other": cal.add_bandwidth / 4 * 3,  # elementwise: one FLOP per 12 bytes moved at the add rate
        }
        overheads = {**cal.class_overhead_s, "attention": cal.class_overhead_s.get("matmul", cal.op_overhead_s)}
        return Rates(compute, cal.bandwidth, cal.op_overhead_s, CALIBRATED, overheads)
    peak = hardware.peak.get(dtype) or hardware.peak.get("fp32")
    bandwidth, source = hardware.bandwidth, SPEC_SOURCE
    if peak and measures_bandwidth(hardware):
        bandwidth, source = quick_copy_bandwidth() / BANDWIDTH_EFFICIENCY, QUICK_SOURCE
    missing = [what for what, value in ((f"{dtype} peak", peak), ("memory bandwidth", bandwidth)) if not value]
    if missing:
        raise ValueError(
            f"{hardware.name} has no {' and no '.join(missing)} to predict with; run `torchcost calibrate` (this "
            "machine, about a minute) or pick a spec-table entry (torchcost hw lists them)"
        )
    assert peak and bandwidth  # narrowed for mypy: missing is empty
    compute = {cls: peak * eff for cls, eff in SPEC_EFFICIENCY.items()}
    overhead = SPEC_OVERHEAD_S.get(hardware.kind, 5e-6)
    return Rates(compute, bandwidth * BANDWIDTH_EFFICIENCY, overhead, source)


def measures_bandwidth(hardware: Hardware) -> bool:
    """This machine's CPU with no bandwidth of its own (not calibrated): a quick copy gives one."""
    return hardware.key == "cpu" and not hardware.bandwidth


def gpu_summary(rates: GpuRates, dtype: str, host_s: float) -> Rates:
    """The GPU kernel models' rates for large kernels at ``dtype``, as the roofs and ridge points of a report."""
    compute = {}
    for cls in RATE_CLASSES:
        kind = {"matmul": "gemm", "conv": "conv", "attention": "attention"}.get(cls, "depthwise")
        if kind == "depthwise":
            compute[cls] = rates.rate("fp32")
            continue
        math = math_dtype(Kernel(kind, dtype, 0), rates.settings)
        compute[cls] = rates.gemm_rate(math, kind)
    compute["other"] = rates.rate("fp32")
    return Rates(compute, rates.bandwidth, host_s, rates.efficiency.source)
