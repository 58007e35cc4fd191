"""``predict(profile, hardware)``: the latency of a counted run on a device, op by op, on the execution timeline.

On a GPU each op costs the host its dispatch (``host.py``) and the device its kernels (``kernels.py``,
``gpu.py``); the two timelines overlap (``timeline.py``). ``execution="graphs"`` is the run replayed as a CUDA
graph (CUDA graphs, torch.compile's cudagraphs): no per-op host cost, one replay. On a CPU one thread does both:
each op's time is its learned model's (a calibrated machine) or its roofline time on the calibrated or spec
rates, plus its dispatch, one after another.
"""

from __future__ import annotations

from torchcost.hardware import Hardware
from torchcost.hardware.calibration import Calibration
from torchcost.predict import gpu
from torchcost.predict.host import HostCosts, host_class, scaled
from torchcost.predict.kernels import (
    Kernel,
    fused_attention,
    fused_attention_backward,
    kernels,
    weight_bytes,
)
from torchcost.predict.learned import FEATURE_COUNT, OpTimeModel, features
from torchcost.predict.learned.regression import Observation
from torchcost.predict.optimizer import ForeachCall, as_call, foreach_calls, is_scalar
from torchcost.predict.prediction import EXECUTIONS, OpPrediction, Prediction
from torchcost.predict.roofline import Rates, gpu_summary, rates_for
from torchcost.predict.taxonomy import is_multi_tensor, op_class, reads_back
from torchcost.predict.timeline import Step, Timeline, run
from torchcost.records import OpRecord, Profile
from torchcost.units import SHORT_DTYPE_NAMES

# The host of the H200 the GPU constants were fitted on (``bench/fit_gpu.py``, ``bench/data/gpu-truth``, measured
# 2026-12-04): seconds to issue one op per host class, in eager PyTorch 2.11 under CUDA events. Not fitted (no case
# runs them; ``torchcost calibrate --device cuda`` measures them): a foreach call's set-up, about two elementwise
# ops', and 1 us per tensor its launch arguments pack; a CUDA graph's replay (cudaGraphLaunch), 15 us.
REFERENCE_HOST = HostCosts(
    dispatch_s={
        "view": 2.65e-6,
        "kernel": 15.4e-6,
        "norm": 17.2e-6,
        "conv": 27.2e-6,
        "matmul": 16.5e-6,
        "foreach": 30e-6,
    },
    extra_kernel_s=8.1e-6,
    foreach_tensor_s=1e-6,
    module_call_s=3.6e-6,
    graph_replay_s=15e-6,
    source="the reference H200 machine's host (bench/fit_gpu.py)",
)
# ``op_overhead_s`` of a calibration made by torchcost before host costs were measured per class, on that host
# (``bench/data/gpu-truth/h200-calibration.json``): older calibrations scale the reference host by theirs.
REFERENCE_OP_OVERHEAD_S = 11.485e-6
Indexed = list[tuple[int, OpRecord]]


def profile_dtype(profile: Profile) -> str:
    """The dtype the profiled run computes in: autocast's when counted under it, else the first floating input's."""
    if profile.autocast is not None:
        return SHORT_DTYPE_NAMES[profile.autocast]
    floating = [spec.dtype for spec in profile.inputs if spec.dtype in SHORT_DTYPE_NAMES and spec.dtype != "int8"]
    return SHORT_DTYPE_NAMES[floating[0]] if floating else "fp32"


def predict(profile: Profile, hardware: Hardware, dtype: str | None = None, execution: str = "eager") -> Prediction:
    """Predicted latency of the profiled run on ``hardware``, per op, per module and in total.

    ``execution``: "eager" (PyTorch's default: each op dispatched from Python) or "graphs" (the run replayed as
    a CUDA graph: CUDA graphs, torch.compile with cudagraphs; GPUs only).
    """
    if execution not in EXECUTIONS:
        raise ValueError(f"unknown execution {execution!r}; use one of {', '.join(EXECUTIONS)}")
    dtype = dtype or profile_dtype(profile)
    if gpu.applies(hardware):
        rates, host = gpu.gpu_rates(hardware), host_costs(hardware)
        return predict_gpu(profile, rates, host, dtype, execution, hardware.name)
    if execution == "graphs":
        raise ValueError(f"execution='graphs' replays CUDA graphs, and {hardware.name} is not a GPU; use eager")
    return _predict_host(profile, hardware, dtype)


def _indexed(profile: Profile) -> Indexed:
    """The records a prediction runs: the forward's, and the backward's and optimizer's when counted."""
    return [(i, r) for i, r in enumerate(profile.records) if profile.backward or r.phase == "forward"]


def module_entries(profile: Profile, indexed: Indexed) -> dict[int, int]:
    """Module calls entered at each record: the enclosing modules it has that the record before it had not.
    Calls that ran no op (an ``Identity``, dropout in eval) are charged at the first record."""
    entries: dict[int, int] = {}
    before: tuple[str, ...] = ()
    for index, record in indexed:
        shared = 0
        while shared < min(len(before), len(record.modules)) and before[shared] == record.modules[shared]:
            shared += 1
        entries[index] = len(record.modules) - shared
        before = record.modules
    calls = sum(m.calls for m in profile.modules)
    if indexed and calls > sum(entries.values()):
        entries[indexed[0][0]] += calls - sum(entries.values())
    return entries


def _calls_without_ops(profile: Profile, indexed: Indexed, module_call_s: float) -> list[Step]:
    """A model that runs no op (an ``Identity``) still pays for calling its modules."""
    calls = sum(m.calls for m in profile.modules)
    return [Step((), calls * module_call_s, 0.0, 0.0, 0.0, 0)] if calls and not indexed else []


def host_costs(hardware: Hardware) -> HostCosts:
    """The host's costs: measured by a CUDA calibration, scaled from an older one, else the reference host's."""
    calibration = hardware.calibration
    if calibration is None or calibration.device != "cuda":
        return REFERENCE_HOST
    if calibration.host_s:
        return HostCosts(
            dispatch_s={**REFERENCE_HOST.dispatch_s, **calibration.host_s},
            extra_kernel_s=calibration.host_s.get("extra_kernel", REFERENCE_HOST.extra_kernel_s),
            foreach_tensor_s=calibration.host_s.get("foreach_tensor", REFERENCE_HOST.foreach_tensor_s),
            module_call_s=calibration.module_call_s or REFERENCE_HOST.module_call_s,
            graph_replay_s=calibration.host_s.get("graph_replay", REFERENCE_HOST.graph_replay_s),
            source="calibrated on this machine",
        )
    factor = calibration.op_overhead_s / REFERENCE_OP_OVERHEAD_S if calibration.op_overhead_s else 1.0
    return scaled(REFERENCE_HOST, factor, f"the reference host x {factor:.2f} (this machine's calibrated op overhead)")


def predict_gpu(
    profile: Profile, rates: gpu.GpuRates, host: HostCosts, dtype: str, execution: str, name: str
) -> Prediction:
    """The timeline of a profile on a GPU's rates and a host's costs (``predict`` picks both from the hardware)."""
    indexed = _indexed(profile)
    entries = module_entries(profile, indexed)
    graphs = execution == "graphs"
    steps: list[Step] = []
    loop: Indexed = []
    fused: dict[str, Kernel] = {}  # a fused call's forward kernel, for its backward
    for group in _groups(indexed):
        index, record = group[0]
        if record.phase == "optimizer" and not is_multi_tensor(record):
            loop.append((index, record))
        elif len(group) > 1 and (step := _fused_step(group, rates, host, entries, fused)) is not None:
            steps.append(step)
        else:
            steps += [_gpu_step(i, r, rates, host, entries.get(i, 0)) for i, r in group]
    steps += _optimizer_steps(loop, rates, host)
    steps += _calls_without_ops(profile, indexed, host.module_call_s)
    if graphs:
        steps = [Step(s.records, 0.0, s.device_s, s.compute_s, s.memory_s, s.kernels) for s in steps]
    timeline = run(steps, overlap=True, start_s=host.graph_replay_s if graphs else 0.0)
    prediction = Prediction(name, dtype, gpu_summary(rates, dtype, host.dispatch_s["kernel"]), execution)
    _fill(prediction, profile, timeline)
    prediction.module_calls_s = 0.0 if graphs else sum(entries.values()) * host.module_call_s
    prediction.notes = _gpu_notes(rates, host, execution, len(loop))
    return prediction


def _groups(indexed: Indexed) -> list[Indexed]:
    """The records one after another, those of one fused call (the same ``fused`` mark and phase) together."""
    groups: list[Indexed] = []
    for index, record in indexed:
        last = groups[-1][-1][1] if groups else None
        if last is not None and record.fused and (record.fused, record.phase) == (last.fused, last.phase):
            groups[-1].append((index, record))
        else:
            groups.append([(index, record)])
    return groups


def _fused_step(
    group: Indexed, rates: gpu.GpuRates, host: HostCosts, entries: dict[int, int], fused: dict[str, Kernel]
) -> Step | None:
    """A call the counted device ran in parts (attention's math reference) as the one kernel a GPU runs."""
    name, phase = group[0][1].fused, group[0][1].phase
    if phase == "forward":
        kernel = fused_attention([r for _, r in group], causal=name.endswith(" causal"))
        if kernel is not None:
            fused[name] = kernel
    else:
        kernel = fused_attention_backward(fused[name]) if name in fused else None
    if kernel is None:
        return None
    time = gpu.kernel_time(kernel, rates)
    entered = sum(entries.get(i, 0) for i, _ in group)
    launches = 1 if phase == "forward" else 2  # the backward's preprocessing (dO . O) and its main kernel
    host_s = host.op_s("matmul", launches) + entered * host.module_call_s
    return Step(tuple(i for i, _ in group), host_s, time.seconds, time.compute_s, time.memory_s, launches)


def _gpu_step(index: int, record: OpRecord, rates: gpu.GpuRates, host: HostCosts, entered: int) -> Step:
    if is_multi_tensor(record):
        return _foreach_step(as_call(index, record), rates, host)
    times = [gpu.kernel_time(kernel, rates) for kernel in kernels(record)]
    host_s = host.op_s(host_class(record), len(times)) + entered * host.module_call_s
    return Step(
        (index,),
        host_s,
        sum(t.seconds for t in times),
        sum(t.compute_s for t in times),
        sum(t.memory_s for t in times),
        len(times),
        waits=reads_back(record),
    )


def _optimizer_steps(loop: Indexed, rates: gpu.GpuRates, host: HostCosts) -> list[Step]:
    """The per-parameter loop as the foreach calls a CUDA run makes; scalar bookkeeping (step counters,
    reading them) as host time alone."""
    steps = [_foreach_step(call, rates, host) for call in foreach_calls(loop)]
    scalars = tuple(i for i, r in loop if is_scalar(r))
    if scalars:
        steps.append(Step(scalars, host.foreach_tensor_s * len(scalars), 0.0, 0.0, 0.0, 0))
    return steps


def _foreach_step(call: ForeachCall, rates: gpu.GpuRates, host: HostCosts) -> Step:
    memory = call.bytes / rates.bandwidth
    compute = call.flops / rates.rate("fp32")
    device = max(memory, compute) + call.launches * rates.efficiency.floor_s
    host_s = host.dispatch_s["foreach"] + host.foreach_tensor_s * call.tensors
    return Step(call.records, host_s, device, compute, memory, call.launches)


def _gpu_notes(rates: gpu.GpuRates, host: HostCosts, execution: str, looped: int) -> list[str]:
    kernel_us = host.dispatch_s["kernel"] * 1e6
    notes = [
        f"kernels: {rates.efficiency.source}; {rates.bandwidth / 1e12:.2f} TB/s reached, "
        f"{rates.efficiency.floor_s * 1e6:.1f} us per kernel at least",
        "eager: each op dispatched by the host, "
        f"{kernel_us:.0f} us for an element-wise op ({host.source}); the device runs while the host issues"
        if execution == "eager"
        else f"graphs: one CUDA-graph replay ({host.graph_replay_s * 1e6:.0f} us), no per-op host cost",
    ]
    if rates.settings.tf32_conv or rates.settings.tf32_matmul:
        which = " and ".join(n for n, on in (("convolutions", rates.settings.tf32_conv),
                                              ("matmuls", rates.settings.tf32_matmul)) if on)  # fmt: skip
        notes.append(f"fp32 {which} on TF32 tensor cores (this process's torch.backends settings)")
    if looped:
        notes.append("the optimizer's per-parameter loop (as counted) runs as PyTorch's foreach kernels on CUDA")
    return notes


_MODELS: dict[int, tuple[Calibration, OpTimeModel]] = {}


def learned_model(calibration: Calibration | None) -> OpTimeModel | None:
    """The calibration's learned per-class op-time models (fitted once per calibration object); None without
    samples of this version's features."""
    samples = [o for o in calibration.observations if len(o["features"]) == FEATURE_COUNT] if calibration else []
    if calibration is None or not samples:
        return None
    key = id(calibration)
    if key not in _MODELS or _MODELS[key][0] is not calibration:
        _MODELS[key] = (calibration, OpTimeModel([Observation.from_dict(o) for o in samples]))
    return _MODELS[key][1]


def _weights_read_cold(profile: Profile, calibration: Calibration | None) -> float | None:
    """The bytes/s a weight streams from memory at, when the model's weights cannot stay in the last-level cache
    from one forward to the next (its sampled ops were timed with theirs in it); None when they can. A stream
    reads at about half a copy's read + write bandwidth."""
    if calibration is None or not calibration.cache_bytes or profile.size_bytes <= calibration.cache_bytes:
        return None
    return calibration.copy_bandwidth / 2 or None


def _predict_host(profile: Profile, hardware: Hardware, dtype: str) -> Prediction:
    """A CPU (one thread: nothing overlaps) or an SoC from the spec table (its GPU overlaps its host)."""
    indexed = _indexed(profile)
    entries = module_entries(profile, indexed)
    rates = rates_for(hardware, dtype)
    calibration = hardware.calibration
    model = learned_model(calibration) if dtype == "fp32" else None
    module_call_s = calibration.module_call_s if calibration is not None and model is not None else 0.0
    cold = _weights_read_cold(profile, calibration) if model is not None else None
    steps, learned = [], {}
    for index, record in indexed:
        cls = op_class(record)
        compute, memory = rates.seconds(record, cls)
        seconds = model.seconds(cls, features(record, calibration.cache_bytes)) if model and calibration else None
        if seconds is not None and cold:
            seconds = max(seconds, weight_bytes(record) / cold)
        host_s = entries.get(index, 0) * module_call_s
        if seconds is None:
            host_s += rates.overhead(cls)
            device_s = max(compute, memory)
        else:
            learned[index] = device_s = seconds
        steps.append(Step((index,), host_s, device_s, compute, memory, 1 if device_s else 0))
    steps += _calls_without_ops(profile, indexed, module_call_s)
    timeline = run(steps, overlap=hardware.kind != "cpu")
    if model is not None:
        rates = Rates(rates.compute, rates.bandwidth, rates.overhead_s, "calibrated, learned op-time models")
    prediction = Prediction(hardware.name, dtype, rates)
    _fill(prediction, profile, timeline, learned)
    prediction.module_calls_s = sum(entries.values()) * module_call_s
    return prediction


def _fill(
    prediction: Prediction, profile: Profile, timeline: Timeline, learned: dict[int, float] | None = None
) -> None:
    """Per-op predictions and per-module times from the placed steps (a step standing for several records
    shares its time among them by their bytes)."""
    learned = learned or {}
    for placed in timeline.placed:
        step = placed.step
        records = [profile.records[i] for i in step.records]
        total_bytes = sum(r.cost.memory_access for r in records)
        for index, record in zip(step.records, records, strict=True):
            share = record.cost.memory_access / total_bytes if total_bytes else 1 / len(records)
            op = OpPrediction(
                index=index,
                op=record.op,
                op_class=op_class(record),
                flops=record.cost.flops,
                bytes=record.cost.memory_access,
                compute_s=step.compute_s * share,
                memory_s=step.memory_s * share,
                overhead_s=step.host_s * share,
                bound=_bound(step, learned.get(index)),
                device_s=step.device_s * share,
                kernels=step.kernels if index == step.records[0] else 0,
                start_s=placed.start_s,
                end_s=placed.end_s,
                time_s=placed.advance_s * share,
                learned_s=learned.get(index),
            )
            prediction.ops.append(op)
            for name in record.modules:
                prediction.by_module[name] = prediction.by_module.get(name, 0.0) + op.time_s
    prediction.latency_s = timeline.latency_s
    prediction.host_s = timeline.host_s
    prediction.device_s = timeline.device_s


def _bound(step: Step, learned_s: float | None) -> str:
    """What sets the op's pace: the host's cost of issuing it (overhead), or its kernels' compute or memory."""
    roof = max(step.compute_s, step.memory_s)
    if learned_s is not None:
        slow = learned_s > 2 * roof
    else:
        slow = step.host_s > step.device_s or (step.device_s > 0 and roof < step.device_s / 2)
    if slow or (not step.kernels and step.host_s > 0):
        return "overhead"
    return "compute" if step.compute_s >= step.memory_s else "memory"
