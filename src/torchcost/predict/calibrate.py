"""``torchcost calibrate``: micro-benchmarks of what this machine achieves (not what its spec promises), and the
models fitted on them, cached as a ``Calibration`` for later predictions.

Each time comes from ``torch.utils.benchmark`` (median of blocked runs): a large matmul per dtype; suites of dense
and of depthwise convolutions, fitted to a rate and a per-op overhead each; elementwise copy and add for
bandwidth; a chain of tiny modules for the per-op overhead of everything else. On a CPU, also learned op-time
models (``predict/learned``). On a GPU, also the host's cost of issuing each class of op (``predict/host.py``)
and the device time of the smallest kernel, replayed back to back in a CUDA graph.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import torch
import torch.nn.functional as F

from torchcost.errors import ProfilingError, renamed
from torchcost.hardware.calibration import Calibration, load_calibration, save_calibration
from torchcost.hardware.detect import cpu_model_name, last_level_cache_bytes
from torchcost.measure.quiet import SAMPLE_S, busy_cores, spare_cores
from torchcost.measure.timing import progress_bar, timing_module
from torchcost.predict.learned import FEATURE_COUNT, Observation, held_out_check
from torchcost.predict.learned.observe import SAMPLES_PER_CLASS, module_call_seconds, observe, reference_seconds
from torchcost.predict.learned.sampling import SAMPLERS
from torchcost.prepare import FLOATING_DTYPES


def _seconds(fn: Callable[[], Any], min_time: float, device: str) -> float:
    fn()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    timer = timing_module().Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return float(timer.blocked_autorange(min_run_time=min_time).median)


# Layers as they occur in ResNets and MobileNets: (in channels, out channels, input size, kernel, stride).
# A conv's speed depends on its shape, so each class is fitted over a suite (see fit_rate_and_overhead).
CONV_SUITE = [
    (3, 64, 224, 7, 2),
    (64, 64, 56, 3, 1),
    (128, 128, 28, 3, 1),
    (256, 256, 14, 3, 1),
    (512, 512, 7, 3, 1),
    (64, 256, 56, 1, 1),
    (256, 64, 56, 1, 1),
    (512, 128, 28, 1, 1),
    (1024, 256, 14, 1, 1),
    (96, 24, 56, 1, 1),
]
DEPTHWISE_SUITE = [
    (32, 32, 112, 3, 1),
    (96, 96, 112, 3, 2),
    (144, 144, 56, 3, 1),
    (240, 240, 28, 5, 1),
    (480, 480, 14, 3, 1),
    (672, 672, 14, 5, 1),
    (960, 960, 7, 3, 1),
]
SUITE_BATCHES = (1, 8)  # one fit over both: small batches show the overhead, large ones the rate


def _suite_times(
    suite: list[tuple[int, int, int, int, int]], batch: int, dense: bool, device: torch.device, min_time: float
) -> list[tuple[float, float]]:
    """(FLOPs, seconds) of each convolution of a suite at ``batch``."""
    points = []
    for c_in, c_out, size, kernel, stride in suite:
        groups = 1 if dense else c_in
        x = torch.randn(batch, c_in, size, size, device=device)
        w = torch.randn(c_out, c_in // groups, kernel, kernel, device=device)
        out_size = (size + 2 * (kernel // 2) - kernel) // stride + 1
        flops = 2 * batch * c_out * out_size * out_size * (c_in // groups) * kernel * kernel
        conv = functools.partial(F.conv2d, x, w, padding=kernel // 2, stride=stride, groups=groups)
        points.append((float(flops), _seconds(conv, min_time / 4, device.type)))
    return points


def fit_rate_and_overhead(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Fit time = overhead + FLOPs / rate by least squares on the relative error (weights 1 / time^2), so that
    small convs weigh as much as large ones. A negative overhead is taken as none."""
    weights = [1 / t**2 for _, t in points]
    total = sum(weights)
    mean_f = sum(w * f for w, (f, _) in zip(weights, points, strict=True)) / total
    mean_t = sum(w * t for w, (_, t) in zip(weights, points, strict=True)) / total
    spread = sum(w * (f - mean_f) ** 2 for w, (f, _) in zip(weights, points, strict=True))
    covariance = sum(w * (f - mean_f) * (t - mean_t) for w, (f, t) in zip(weights, points, strict=True))
    slope = covariance / spread if spread else 0.0
    overhead = mean_t - slope * mean_f
    if slope <= 0 or overhead < 0:
        return sum(f for f, _ in points) / sum(t for _, t in points), 0.0
    return 1 / slope, overhead


CHAIN_BLOCKS = 32
OPS_PER_BLOCK = 3  # Linear: aten.t and aten.addmm; ReLU: aten.relu


def _eager_op_overhead(device: torch.device, min_time: float) -> float:
    """What one op costs beyond its arithmetic in an eager model: dispatch, kernel launch and the module call
    around it. Measured as a chain of tiny modules, so the Python of ``nn.Module.__call__`` is included."""
    chain = torch.nn.Sequential(
        *[torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()) for _ in range(CHAIN_BLOCKS)]
    ).to(device)
    x = torch.randn(1, 8, device=device)
    return _seconds(lambda: chain(x), min_time, device.type) / (CHAIN_BLOCKS * OPS_PER_BLOCK)


class CalibrationError(ProfilingError):
    """The machine was too busy to calibrate, or the learned models miss their own held-out samples."""


WAIT_FOR_QUIET_S = 60
WAIT_STEP_S = 3.0
PROBE_DRIFT = 0.2  # the reference probe may move this much between the start and the end
# Median held-out error above which a calibration is not kept. On a quiet 2-core VM the same sampled op times
# within 1 to 3% twice over, and the learned models miss held-out samples by about 20% (their features cannot see
# everything a CPU kernel does): that is their accuracy, not interference, which the /proc/stat check and the
# probe catch. A miss well above it means the samples disagree with each other: the machine changed as it ran.
MAX_CHECK_ERROR = 0.25
MAX_SAMPLES_PER_CLASS = 400  # kept across calibrations that extend each other


def calibrate(
    device: str = "cpu", quick: bool = False, progress: bool = True, save: bool = True, force: bool = False
) -> Calibration:
    """Measure what ``device`` achieves and (by default) cache it for this machine, thread count and torch version.

    Rates: a large matmul per dtype, suites of dense and depthwise convolutions, copy and add bandwidth, per-op
    overheads. On the CPU, also learned op-time models: ``SAMPLES_PER_CLASS`` sampled ops of each class (conv,
    depthwise conv, matmul, attention, norms, pointwise, pooling, reductions, data movement, views), counted and
    timed, fitted per class in log space; each calibration adds its samples to the cached ones. About 2 min on
    two cores (``quick``: under 30 s).

    On a GPU, also the host's cost of issuing each class of op (chains of tiny ops, which the host sets the pace
    of), of a module call, of a foreach call and each tensor in it, and of replaying a CUDA graph; and the device
    time of the smallest kernel (tiny kernels replayed back to back as a CUDA graph).

    A busy machine gives wrong rates: what else uses the CPUs is checked first (``/proc/stat`` over two
    seconds, waiting up to a minute for it to stop), a reference probe is timed at the start and the end, and
    the learned models are checked on held-out samples; a calibration that fails one of these is not kept
    (``CalibrationError``) unless ``force``.
    """
    dev = torch.device(device)
    gpu = dev.type == "cuda"
    if not gpu and not force:
        _wait_for_quiet()
    min_time = 0.2 if quick else 0.5
    n = (8192 if gpu else 1024) // (2 if quick else 1)
    elements = (1 << 26 if gpu else 1 << 24) // (4 if quick else 1)  # 256 MB / 64 MB of fp32
    result = Calibration(
        device=dev.type,
        device_name=torch.cuda.get_device_name(dev) if gpu else cpu_model_name(),
        threads=torch.get_num_threads(),
        torch_version=torch.__version__,
        date=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    dtypes = ["fp32", "bf16", "fp16"] if gpu else ["fp32", "bf16"]
    effort = "quick" if quick else "default"
    per_class = SAMPLES_PER_CLASS[effort]
    learned = 0 if gpu else len(SAMPLERS) * per_class + RESAMPLED_CLASSES * (per_class // 2)
    with progress_bar(progress) as bar:
        task = bar.add_task("calibrating", total=len(dtypes) + 6 + learned + (len(HOST_PROBES) + 2 if gpu else 0))
        probe = reference_seconds(functools.partial(_seconds, device=dev.type), min_time) if not gpu else 0.0
        with torch.inference_mode():
            _rates(result, dev, dtypes, n, elements, min_time, lambda: bar.advance(task))
            if gpu:
                _host_costs(result, dev, min_time, lambda: bar.advance(task))
        if not gpu:  # counted as profile() counts (not in inference mode, where ops are not decomposed)
            _learn(result, effort, min_time, lambda: bar.advance(task))
            drift = reference_seconds(functools.partial(_seconds, device=dev.type), min_time) / probe - 1
            result.details["probe"] = f"256 x 256 matmul {probe * 1e6:.1f} us at the start, {drift:+.0%} at the end"
    if not gpu and not force:
        _refuse_if_unsound(result, drift)
    if save:
        save_calibration(result)
    return result


def _rates(
    result: Calibration,
    dev: torch.device,
    dtypes: list[str],
    n: int,
    elements: int,
    min_time: float,
    advance: Callable[[], None],
) -> None:
    """The micro-benchmarks of rates and overheads: matmul per dtype, conv suites, copy, add, per-op overheads."""
    result.matmul_n = n
    for name in dtypes:
        a = torch.randn(n, n, device=dev, dtype=FLOATING_DTYPES[name])
        seconds = _seconds(functools.partial(torch.mm, a, a), min_time, dev.type)
        result.matmul_flops[name] = 2 * n**3 / seconds
        result.details[f"matmul_{name}"] = f"({n}, {n}) x ({n}, {n}): {seconds * 1e3:.3f} ms"
        advance()

    for name, suite, dense in (("conv", CONV_SUITE, True), ("depthwise_conv", DEPTHWISE_SUITE, False)):
        points = [point for batch in SUITE_BATCHES for point in _suite_times(suite, batch, dense, dev, min_time)]
        rate, overhead = fit_rate_and_overhead(points)
        setattr(result, "conv_flops" if name == "conv" else "depthwise_conv_flops", rate)
        result.class_overhead_s[name] = overhead
        kind = "ResNet" if name == "conv" else "MobileNet"
        result.details[name] = (
            f"time = overhead + FLOPs / rate, least squares over {len(points)} {kind}-like convs, batch 1 and 8"
        )
        advance()

    a, b, out = (torch.randn(elements, device=dev) for _ in range(3))
    seconds = _seconds(lambda: out.copy_(a), min_time, dev.type)
    result.copy_bandwidth = 2 * 4 * elements / seconds  # read a, write out
    result.details["copy"] = f"{4 * elements / 1e6:.0f} MB copy: {seconds * 1e3:.3f} ms"
    advance()
    seconds = _seconds(lambda: torch.add(a, b, out=out), min_time, dev.type)
    result.add_bandwidth = 3 * 4 * elements / seconds  # read a and b, write out
    result.details["add"] = f"{4 * elements / 1e6:.0f} MB add: {seconds * 1e3:.3f} ms"
    advance()

    result.op_overhead_s = _eager_op_overhead(dev, min_time)
    result.details["op_overhead"] = f"per ATen op of {CHAIN_BLOCKS} tiny Linear + ReLU modules in a chain"
    advance()

    tiny = torch.randn(8, 8, device=dev)
    result.class_overhead_s["matmul"] = _seconds(lambda: torch.mm(tiny, tiny), min_time, dev.type)
    result.details["matmul_overhead"] = "(8, 8) x (8, 8) matmul"
    advance()


HOST_CHAIN = 64  # ops per timed chain: enough that the host's cost per op dominates the timer's own


QUICK_COPY_ELEMENTS = 32 * 2**20  # 128 MB of float32 each way: past any CPU's last-level cache


@functools.cache
def quick_copy_bandwidth(min_time: float = 0.2) -> float:
    """This CPU's memory bandwidth from a 128 MB copy timed for about ``min_time`` seconds (read + write bytes per
    second), for a machine not yet calibrated; measured once per process."""
    a = torch.empty(QUICK_COPY_ELEMENTS)
    out = torch.empty_like(a)
    seconds = _seconds(lambda: out.copy_(a), min_time, "cpu")
    return 2 * a.element_size() * QUICK_COPY_ELEMENTS / seconds


def _host_probes(device: torch.device) -> dict[str, Callable[[], Any]]:
    """One tiny op per host class (predict/host.py): each launches a kernel far shorter than its dispatch."""
    x = torch.randn(8, 8, device=device)
    image = torch.randn(1, 8, 8, 8, device=device)
    weight, bias = torch.randn(8, 8, 3, 3, device=device), torch.randn(8, device=device)
    return {
        "view": lambda: x.view(64),
        "kernel": lambda: torch.relu(x),
        "norm": lambda: F.layer_norm(x, (8,)),
        "conv": lambda: F.conv2d(image, weight, padding=1),
        "conv_bias": lambda: F.conv2d(image, weight, bias, padding=1),  # its bias add: one more kernel
        "matmul": lambda: torch.mm(x, x),
    }


HOST_PROBES = ("view", "kernel", "norm", "conv", "conv_bias", "matmul")
FOREACH_TENSORS = (8, 64)  # two list lengths: the cost per call and per tensor


def _chain_seconds(op: Callable[[], Any], device: str, min_time: float) -> float:
    """Seconds per op of a chain of ``HOST_CHAIN`` calls of ``op``."""

    def chain() -> None:
        for _ in range(HOST_CHAIN):
            op()

    return _seconds(chain, min_time, device) / HOST_CHAIN


def _host_costs(result: Calibration, dev: torch.device, min_time: float, advance: Callable[[], None]) -> None:
    """The host's cost per op of each host class, per extra kernel, per module call and per foreach call and
    tensor; the CUDA graph's replay and the device's smallest kernel."""
    times = {}
    for name, op in _host_probes(dev).items():
        times[name] = _chain_seconds(op, dev.type, min_time / 4)
        advance()
    result.host_s = {name: times[name] for name in ("view", "kernel", "norm", "conv", "matmul")}
    result.host_s["extra_kernel"] = max(times["conv_bias"] - times["conv"], 0.0)
    lists = {n: [torch.zeros(8, device=dev) for _ in range(n)] for n in FOREACH_TENSORS}
    short, long = (
        _chain_seconds(functools.partial(torch._foreach_add_, lists[n], 1.0), dev.type, min_time / 4)
        for n in FOREACH_TENSORS
    )
    per_tensor = max((long - short) / (FOREACH_TENSORS[1] - FOREACH_TENSORS[0]), 0.0)
    result.host_s["foreach_tensor"] = per_tensor
    result.host_s["foreach"] = max(short - per_tensor * FOREACH_TENSORS[0], 0.0)
    result.module_call_s = module_call_seconds(functools.partial(_seconds, device=dev.type), min_time / 4)
    advance()
    replay, floor = _graph_seconds(dev, min_time / 4)
    if replay:
        result.host_s["graph_replay"] = replay
        result.kernel_floor_s = floor
    result.details["host"] = (
        f"chains of {HOST_CHAIN} tiny ops per class, foreach lists of {FOREACH_TENSORS[0]} and "
        f"{FOREACH_TENSORS[1]} tensors; smallest kernel: {HOST_CHAIN} tiny kernels replayed as a CUDA graph"
    )
    advance()


def _graph_seconds(dev: torch.device, min_time: float) -> tuple[float, float]:
    """(host seconds to replay a one-kernel CUDA graph, device seconds per kernel of a graph of HOST_CHAIN tiny
    kernels); zeros where CUDA graphs cannot be captured."""
    if dev.type != "cuda":
        return 0.0, 0.0
    x = torch.zeros(64, device=dev)
    try:
        one, many = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        with torch.cuda.stream(stream):
            x.add_(1)  # warm-up on the capture stream
            with torch.cuda.graph(one, stream=stream):
                x.add_(1)
            with torch.cuda.graph(many, stream=stream):
                for _ in range(HOST_CHAIN):
                    x.add_(1)
        torch.cuda.synchronize()
    except RuntimeError:
        return 0.0, 0.0
    replay = _seconds(one.replay, min_time, "cuda")
    floor = _seconds(many.replay, min_time, "cuda") / HOST_CHAIN
    return replay, floor


RESAMPLED_CLASSES = 3  # the classes whose held-out error is worst get more samples...
RESAMPLE_ERROR = 0.10  # ...where it is above this


def _learn(result: Calibration, effort: str, min_time: float, advance: Callable[[], None]) -> None:
    """Sample, time and check the learned op-time models, then sample more of the classes they predict worst;
    extend the cached calibration's samples."""
    result.cache_bytes = last_level_cache_bytes()
    timed = functools.partial(_seconds, device="cpu")
    earlier = load_calibration("cpu")
    same = earlier is not None and earlier.cache_bytes == result.cache_bytes
    kept = [o for o in earlier.observations if len(o["features"]) == FEATURE_COUNT] if earlier and same else []
    seed = len(kept)  # new configurations each time
    fresh = observe(timed, effort, result.cache_bytes, seed, advance)
    check = held_out_check([*map(Observation.from_dict, kept), *fresh]).to_dict()["per_class_median"]
    worst = sorted((c for c in check if check[c] > RESAMPLE_ERROR), key=check.__getitem__)[-RESAMPLED_CLASSES:]
    extra = SAMPLES_PER_CLASS[effort] // 2
    fresh += observe(timed, effort, result.cache_bytes, seed + 1, advance, worst, extra)
    for _ in range((RESAMPLED_CLASSES - len(worst)) * extra):
        advance()
    result.observations = _capped([*kept, *(o.to_dict() for o in fresh)])
    result.module_call_s = module_call_seconds(timed, min_time)
    result.check = held_out_check([Observation.from_dict(o) for o in result.observations]).to_dict()
    resampled = f", more of {', '.join(worst)}" if worst else ""
    result.details["learned"] = (
        f"{len(fresh)} sampled ops timed{resampled} ({len(result.observations)} kept); held-out median error "
        f"{result.check['median_abs_error']:.1%}, {result.check['within_10']:.0%} within 10%"
    )


def _capped(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest ``MAX_SAMPLES_PER_CLASS`` samples of each class."""
    per_class: dict[str, list[dict[str, Any]]] = {}
    for observation in observations:
        per_class.setdefault(observation["op_class"], []).append(observation)
    return [o for group in per_class.values() for o in group[-MAX_SAMPLES_PER_CLASS:]]


def _wait_for_quiet() -> None:
    busy, limit = busy_cores(), spare_cores()
    waited = 0.0
    while busy > limit and waited < WAIT_FOR_QUIET_S:
        time.sleep(WAIT_STEP_S)
        waited += WAIT_STEP_S + SAMPLE_S
        busy = busy_cores()
    if busy > limit:
        raise CalibrationError(
            f"the machine is busy (other work uses {busy:.1f} cores now, after waiting {waited:.0f} s; "
            f"{torch.get_num_threads()} of {os.cpu_count()} cores are needed): it would slow every measurement; "
            "stop it and calibrate again, or force it (calibrate(force=True), --force) knowing the rates will be low"
        )


def _refuse_if_unsound(result: Calibration, drift: float) -> None:
    error = result.check.get("median_abs_error", 0.0)
    if abs(drift) > PROBE_DRIFT:
        raise CalibrationError(
            f"a reference probe moved {drift:+.0%} during calibration: other work took the cores; not kept "
            "(calibrate again on a quiet machine, or force it)"
        )
    if error > MAX_CHECK_ERROR:
        raise CalibrationError(
            f"the learned op-time models miss their held-out samples by {error:.0%} (median, over "
            f"{result.check.get('samples', 0)} samples): not kept (calibrate again, or force it)"
        )


__getattr__ = renamed(__name__, {"DTYPES": (FLOATING_DTYPES, "torchcost.prepare.FLOATING_DTYPES")})
