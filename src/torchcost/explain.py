"""Why is it slow? Ranked findings, each a sentence with its numbers, from a profile and (when available)
measured per-op times, end-to-end latency and a roofline prediction."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torchcost.hardware import Hardware
from torchcost.measure.latency import Latency
from torchcost.predict import Prediction, predict
from torchcost.predict.taxonomy import op_class
from torchcost.records import OpRecord, Profile
from torchcost.units import duration, ratio, si

# Work items one core (CPU: fp32 SIMD lanes of AVX-512) or one SM (GPU: resident threads) needs to be busy.
FILL_PER_CPU_CORE = 16
FILL_PER_SM = 2048


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str
    score: float  # share of the run's time (or cost) the finding is about; findings are ranked by it
    numbers: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "score": self.score, "numbers": dict(self.numbers)}


def fill_size(hardware: Hardware) -> int:
    """Output elements an op needs to occupy every core (CPU) or SM (GPU) once."""
    per_unit = FILL_PER_SM if hardware.kind == "gpu" else FILL_PER_CPU_CORE
    return (hardware.cores or 1) * per_unit


def parallelism(record: OpRecord, hardware: Hardware) -> float:
    """Degree of parallelism: the op's output elements per unit of work the device needs to be full (1.0 fills
    every core or SM once; below 1 some sit idle)."""
    elements = math.prod(record.output_shapes[0]) if record.output_shapes else 0
    return elements / fill_size(hardware)


def _op_times(profile: Profile, prediction: Prediction | None) -> tuple[dict[int, float], str]:
    measured = {i: r.measured_s for i, r in enumerate(profile.records) if r.measured_s is not None}
    if measured:
        return measured, "measured"
    if prediction is not None:
        return {op.index: op.time_s for op in prediction.ops}, "predicted"
    return {}, ""


def explain(
    profile: Profile,
    latency: Latency | None = None,
    prediction: Prediction | None = None,
    hardware: Hardware | None = None,
) -> list[Finding]:
    """Findings ranked by how much of the run they explain. ``latency`` is no longer read (shares are of the
    predicted time, which measured per-op times replace where the profile has them); kept for callers."""
    times, source = _op_times(profile, prediction)
    findings = [
        *_uncounted(profile),
        *_cheap_ops(profile, times, source),
        *_memory_bound(profile, times, source, prediction),
        *_host_bound(profile, prediction, hardware),
        *_depthwise_conv(profile, hardware, prediction),
        *_small_ops(profile, times, source, hardware),
        *_shared(profile),
    ]
    return sorted(findings, key=lambda f: f.score, reverse=True)


def _pct(share: float) -> str:
    """12% or 0.4%: one decimal where a whole percent would round to nothing."""
    return f"{share:.0%}" if abs(share) >= 0.1 else f"{share:.1%}"


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _uncounted(profile: Profile) -> list[Finding]:
    if not profile.uncounted:
        return []
    ops = ", ".join(f"{u.op} x{u.count}" for u in profile.uncounted)
    return [Finding("uncounted", f"{len(profile.uncounted)} op types have no formula (FLOPs unknown): {ops}", 1.0)]


CHEAP_CLASSES = ("pointwise", "norm", "pooling", "reduction", "movement")
NOTHING_TO_SAY = 0.005  # a share below half a percent makes no finding


def _cheap_ops(profile: Profile, times: dict[int, float], source: str) -> list[Finding]:
    cheap = [i for i, r in enumerate(profile.records) if r.phase == "forward" and op_class(r) in CHEAP_CLASSES]
    flops = _share(sum(profile.records[i].cost.flops for i in cheap), profile.flops)
    memory = _share(sum(profile.records[i].cost.memory_access for i in cheap), profile.memory_access.total)
    if max(flops, memory) < NOTHING_TO_SAY:
        return []
    if times:
        time = _share(sum(times.get(i, 0.0) for i in cheap), sum(times.values()))
        message = (
            f"elementwise, norm, pooling and data-movement ops are {_pct(flops)} of FLOPs but {_pct(time)} of "
            f"{source} time ({_pct(memory)} of memory access)"
        )
        return [Finding("cheap_ops", message, time - flops, {"flops_share": flops, "time_share": time})]
    message = (
        f"elementwise, norm, pooling and data-movement ops are {_pct(flops)} of FLOPs but {_pct(memory)} "
        "of memory access"
    )
    return [Finding("cheap_ops", message, (memory - flops) / 2, {"flops_share": flops, "memory_share": memory})]


def _memory_bound(
    profile: Profile, times: dict[int, float], source: str, prediction: Prediction | None
) -> list[Finding]:
    if prediction is None or not times:
        return []
    bound = {op.index for op in prediction.ops if op.bound == "memory"}
    share = _share(sum(t for i, t in times.items() if i in bound), sum(times.values()))
    if share < NOTHING_TO_SAY:
        return []
    ridge = prediction.rates.ridge_point("matmul")
    message = (
        f"{_pct(share)} of {source} time is in memory-bound ops (arithmetic intensity below the ridge point of "
        f"{ridge:.0f} FLOP/byte on {prediction.hardware})"
    )
    return [Finding("memory_bound", message, share, {"time_share": share, "ridge_point": ridge})]


OVERHEAD_DOMINATES = 0.5  # share of the run above which the eager framework's own cost is the thing to fix


def _host_bound(profile: Profile, prediction: Prediction | None, hardware: Hardware | None) -> list[Finding]:
    """How much of the predicted run waits on the host's dispatch (the eager framework) rather than on kernels:
    a share of the predicted latency, as the summary's "overhead" is (never of a measured one)."""
    if prediction is None or prediction.execution == "graphs":
        return []
    launches = _launch_count(profile)
    calls = sum(m.calls for m in profile.modules)
    total = prediction.latency_s
    waited = prediction.overhead_s
    share = _share(waited, total)
    message = (
        f"{launches} op dispatches and {calls} module calls keep the host busy {duration(prediction.host_s)}; "
        f"the run waits on them (or on per-op fixed costs) {duration(waited)} of {duration(total)} ({_pct(share)})"
    )
    if share >= OVERHEAD_DOMINATES:
        message += (
            "; the framework, not the arithmetic, sets the time: a larger batch spreads it over more samples, "
            "torch.compile (or CUDA graphs) removes most of it, fewer and larger modules cut it"
        )
        if hardware is not None and hardware.kind == "gpu":
            graphs = predict(profile, hardware, prediction.dtype, execution="graphs")
            message += f" (replayed as a CUDA graph: {duration(graphs.latency_s)} predicted)"
    numbers = {"launches": launches, "module_calls": calls, "overhead_s": waited, "host_s": prediction.host_s}
    return [Finding("launches", message, share, numbers)]


def _depthwise_conv(profile: Profile, hardware: Hardware | None, prediction: Prediction | None) -> list[Finding]:
    groups: dict[str, list[OpRecord]] = {"depthwise_conv": [], "conv": []}
    for record in profile.records:
        if record.measured_s and op_class(record) in groups:
            groups[op_class(record)].append(record)
    if not groups["depthwise_conv"] or hardware is None:
        return []
    peak = hardware.peak.get(prediction.dtype if prediction else "fp32") or hardware.peak.get("fp32")
    if not peak:
        return []

    def achieved(records: list[OpRecord]) -> float:
        return sum(r.cost.flops for r in records) / sum(r.measured_s or 0.0 for r in records) / peak

    grouped = achieved(groups["depthwise_conv"])
    dense = f" (dense convolutions: {achieved(groups['conv']):.0%})" if groups["conv"] else ""
    measured = sum(r.measured_s or 0.0 for r in profile.records)
    share = _share(sum(r.measured_s or 0.0 for r in groups["depthwise_conv"]), measured)
    message = (
        f"depthwise and grouped convolutions reach {grouped:.1%} of peak compute{dense} and take {_pct(share)} "
        "of measured time"
    )
    return [Finding("depthwise_conv", message, share, {"efficiency": grouped, "time_share": share})]


def _small_ops(profile: Profile, times: dict[int, float], source: str, hardware: Hardware | None) -> list[Finding]:
    """Time in ops too small to keep every core busy; on a GPU the timeline already says it (the host-bound
    finding) unless the times were measured."""
    if hardware is None or not times or (hardware.kind == "gpu" and source != "measured"):
        return []
    small = [i for i in times if parallelism(profile.records[i], hardware) < 1.0]
    share = _share(sum(times[i] for i in small), sum(times.values()))
    unit = "SMs" if hardware.kind == "gpu" else "cores"
    message = (
        f"{_pct(share)} of {source} time is in {len(small)} ops too small to fill the {hardware.cores} {unit} "
        f"(fewer than {fill_size(hardware):,} output elements)"
    )
    return [Finding("parallelism", message, share, {"time_share": share, "ops": len(small)})]


def _shared(profile: Profile) -> list[Finding]:
    shared = profile.params.shared
    if not shared:
        return []
    message = f"shared parameters: {si(shared)} fewer params than unshared ({si(profile.params.total)}), same FLOPs"
    return [Finding("shared_params", message, 0.05, {"shared": shared})]


def compare_findings(profiles: list[Profile], latencies: Sequence[tuple[float, str] | None] = ()) -> list[str]:
    """Sentences that relate each model to the first: FLOPs, memory access and op launches ratios, and latency
    where both have one from the same source (``latencies``: seconds and "measured" or "predicted", per model)."""
    if len(profiles) < 2:
        return []
    base = profiles[0]
    known = list(latencies) or [None] * len(profiles)
    lines = []
    for other, other_latency in zip(profiles[1:], known[1:], strict=True):
        parts = [
            f"{other.model} has {ratio(other.flops, base.flops)} the FLOPs of {base.model}",
            f"{ratio(other.memory_access.total, base.memory_access.total)} its memory access",
            f"{ratio(_launch_count(other), _launch_count(base))} its operator launches",
        ]
        base_latency = known[0]
        if base_latency and other_latency and base_latency[1] == other_latency[1]:
            parts.append(f"and {ratio(other_latency[0], base_latency[0])} its {other_latency[1]} latency")
        lines.append(", ".join(parts))
    return lines


def _launch_count(profile: Profile) -> int:
    return sum(1 for r in profile.records if r.phase == "forward")
