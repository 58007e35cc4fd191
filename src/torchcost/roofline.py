"""Roofline prediction: per op, time = max(FLOPs / compute rate, bytes / bandwidth) + per-op overhead.

Rates come from the hardware: its calibration when it has one (each op class at the rate measured for that
class on this machine); for a GPU from the spec table, the wave model of ``hardware.gpu_model`` (tiles and waves
over the SMs, utilisation by waves, bandwidth by size); otherwise its peaks scaled by the default efficiencies
below. An op is compute-bound when its arithmetic intensity (FLOPs / bytes) is above the ridge point (compute
rate / bandwidth) of its class, memory-bound below it, and overhead-bound when the fixed per-op cost is larger
than both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from torchcost.hardware import Hardware, gpu_model, predictors
from torchcost.hardware.predictors.features import is_matmul
from torchcost.records import OpRecord, Profile

# Share of a spec-table peak that eager PyTorch typically reaches, per op class, when no calibration exists.
# A starting point, not a measurement: calibrate for numbers about your machine.
SPEC_EFFICIENCY = {"matmul": 0.7, "attention": 0.5, "conv": 0.6, "depthwise_conv": 0.1, "other": 0.5}
BANDWIDTH_EFFICIENCY = 0.8
SPEC_OVERHEAD_S = {"gpu": 5e-6, "soc": 10e-6, "cpu": 2e-6}  # eager dispatch + launch per op, typical
WAVE_MODEL = "spec sheet, wave model (constants fitted on the RTX 3090)"

DTYPE_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "int8": "int8", "float8_e4m3fn": "fp8"}


def op_class(record: OpRecord) -> str:
    """The op's class for rates: matmul, attention, conv, depthwise_conv (one input channel per group), or
    other (elementwise, norms, pooling, data movement)."""
    name = record.op.removeprefix("aten.")
    if "attention" in name:
        return "attention"
    if "convolution" in name and len(record.input_shapes) >= 2 and len(record.input_shapes[1]) >= 3:
        x, w = record.input_shapes[0], record.input_shapes[1]
        return "depthwise_conv" if w[1] == 1 and x[1] > 1 else "conv"  # weight (C_out, C_in / groups, ...)
    if is_matmul(name):
        return "matmul"
    return "other"


@dataclass(frozen=True)
class Rates:
    """What the prediction assumes the hardware achieves."""

    compute: dict[str, float]  # op class -> FLOP/s
    bandwidth: float  # bytes/s
    overhead_s: float  # fixed cost per op (dispatch, launch)
    source: str  # "calibrated" or "spec peaks x efficiency"
    class_overhead_s: dict[str, float] = field(default_factory=dict)  # larger set-up costs of some op classes

    def overhead(self, op_class: str) -> float:
        return self.class_overhead_s.get(op_class, self.overhead_s)

    def ridge_point(self, op_class: str) -> float:
        return self.compute[op_class] / self.bandwidth


def rates_for(hardware: Hardware, dtype: str = "fp32") -> Rates:
    """The rates to predict with: calibrated when the hardware has a calibration, else peaks x efficiency."""
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
        return Rates(compute, cal.bandwidth, cal.op_overhead_s, "calibrated", overheads)
    if gpu_model.applies(hardware):
        return _wave_rates(hardware, dtype)
    peak = hardware.peak.get(dtype) or hardware.peak.get("fp32")
    if not peak or not hardware.bandwidth:
        raise ValueError(
            f"{hardware.name} has no {dtype} peak or no memory bandwidth to predict with; "
            "run `torchcost calibrate` (for this machine) or pick a spec-table entry"
        )
    compute = {cls: peak * eff for cls, eff in SPEC_EFFICIENCY.items()}
    overhead = SPEC_OVERHEAD_S.get(hardware.kind, 5e-6)
    return Rates(compute, hardware.bandwidth * BANDWIDTH_EFFICIENCY, overhead, "spec peaks x efficiency")


def _wave_rates(hardware: Hardware, dtype: str) -> Rates:
    """The wave model's rates with many waves: each class's peak x its fitted utilisation (for ridge points and
    reports; the per-op times come from ``gpu_model.op_times``)."""
    constants = gpu_model.FITTED
    compute = {}
    for cls in SPEC_EFFICIENCY:
        rate = gpu_model.peak(hardware, gpu_model.math_dtype(dtype, cls))
        compute[cls] = rate * constants.curve(cls)[0] if cls in gpu_model.GEMM_CLASSES else rate
    bandwidth = float(hardware.bandwidth or 0.0) * constants.bandwidth["memory"]
    return Rates(compute, bandwidth, constants.launch_s, WAVE_MODEL)


@dataclass(frozen=True)
class OpPrediction:
    index: int  # position in Profile.records
    op: str
    op_class: str
    flops: int
    bytes: int
    compute_s: float
    memory_s: float
    overhead_s: float
    bound: str  # compute, memory or overhead
    learned_s: float | None = None  # the calibrated machine's learned model of this op's time, when it has one

    @property
    def time_s(self) -> float:
        return self.learned_s if self.learned_s is not None else max(self.compute_s, self.memory_s) + self.overhead_s

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else float("inf")


@dataclass
class Prediction:
    hardware: str
    dtype: str
    rates: Rates
    ops: list[OpPrediction] = field(default_factory=list)
    by_module: dict[str, float] = field(default_factory=dict)
    module_calls_s: float = 0.0  # eager overhead of calling the model's modules, beyond their ops

    @property
    def latency_s(self) -> float:
        return sum(op.time_s for op in self.ops) + self.module_calls_s

    @property
    def overhead_s(self) -> float:
        """The eager framework's share: module calls, and the dispatch of ops too cheap to be anything else."""
        return self.module_calls_s + sum(op.time_s for op in self.ops if op.bound == "overhead")

    def time_by(self, key: str) -> dict[str, float]:
        """Predicted seconds grouped by ``bound``, ``op_class`` or ``op``."""
        totals: dict[str, float] = defaultdict(float)
        for op in self.ops:
            totals[getattr(op, key)] += op.time_s
        return dict(totals)

    def __repr__(self) -> str:
        from torchcost.report.notebook import prediction_line

        return prediction_line(self)

    def _repr_html_(self) -> str:
        from torchcost.report.notebook import prediction_html

        return prediction_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hardware": self.hardware,
            "dtype": self.dtype,
            "rates": {
                "compute_flops": self.rates.compute,
                "bandwidth": self.rates.bandwidth,
                "overhead_s": self.rates.overhead_s,
                "source": self.rates.source,
            },
            "latency_s": self.latency_s,
            "module_calls_s": self.module_calls_s,
            "overhead_s": self.overhead_s,
            "time_by_bound": self.time_by("bound"),
            "time_by_class": self.time_by("op_class"),
            "by_module": self.by_module,
        }


def profile_dtype(profile: Profile) -> str:
    """The dtype the profiled forward computes in: autocast's when counted under it, else the first floating input's."""
    if profile.autocast is not None:
        return DTYPE_NAMES[profile.autocast]
    floating = [spec.dtype for spec in profile.inputs if spec.dtype in DTYPE_NAMES and spec.dtype != "int8"]
    return DTYPE_NAMES[floating[0]] if floating else "fp32"


def predict(profile: Profile, hardware: Hardware, dtype: str | None = None) -> Prediction:
    """Predicted latency of the profiled run on ``hardware``, per op, per module and in total."""
    dtype = dtype or profile_dtype(profile)
    rates = rates_for(hardware, dtype)
    prediction = Prediction(hardware.name, dtype, rates)
    learned = _learned(hardware, dtype)
    waves = rates.source == WAVE_MODEL
    for index, record in enumerate(profile.records):
        if not profile.backward and record.phase != "forward":
            continue
        op = _predict_gpu_op(index, record, hardware, dtype, rates) if waves else _predict_op(index, record, rates)
        if learned is not None:
            model, cache = learned
            seconds = model.seconds(predictors.op_class(record), predictors.features(record, cache))
            op = replace(op, learned_s=seconds, bound=_bound(op.compute_s, op.memory_s, seconds or 0.0))
        prediction.ops.append(op)
        for name in record.modules:
            prediction.by_module[name] = prediction.by_module.get(name, 0.0) + op.time_s
    if learned is not None and hardware.calibration is not None:
        calls = sum(m.calls for m in profile.modules)
        prediction.module_calls_s = calls * hardware.calibration.module_call_s
        prediction.rates = replace(rates, source="calibrated, learned op-time models")
    return prediction


def _learned(hardware: Hardware, dtype: str) -> tuple[predictors.OpTimeModel, int] | None:
    """This machine's learned op-time models, for the dtype they were measured in (fp32)."""
    calibration = hardware.calibration
    model = calibration.time_model() if calibration is not None and dtype == "fp32" else None
    return None if model is None or calibration is None else (model, calibration.cache_bytes)


def _bound(compute_s: float, memory_s: float, time_s: float) -> str:
    """Which limit an op's (learned) time is closest to: compute, memory, or the fixed cost of running it."""
    if time_s > 2 * max(compute_s, memory_s):
        return "overhead"
    return "compute" if compute_s >= memory_s else "memory"


def _predict_op(index: int, record: OpRecord, rates: Rates) -> OpPrediction:
    cls = op_class(record)
    compute_s = record.cost.flops / rates.compute[cls]
    memory_s = record.cost.memory_access / rates.bandwidth
    return _op_prediction(index, record, cls, compute_s, memory_s, rates.overhead(cls))


def _predict_gpu_op(index: int, record: OpRecord, hardware: Hardware, dtype: str, rates: Rates) -> OpPrediction:
    cls = op_class(record)
    times = gpu_model.op_times(record, cls, hardware, dtype)
    return _op_prediction(index, record, cls, times.compute_s, times.memory_s, rates.overhead(cls))


def _op_prediction(
    index: int, record: OpRecord, cls: str, compute_s: float, memory_s: float, overhead_s: float
) -> OpPrediction:
    bound = "compute" if compute_s >= memory_s else "memory"
    bound = "overhead" if max(compute_s, memory_s) < overhead_s else bound
    cost = record.cost
    return OpPrediction(index, record.op, cls, cost.flops, cost.memory_access, compute_s, memory_s, overhead_s, bound)
