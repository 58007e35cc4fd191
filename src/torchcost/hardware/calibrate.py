"""Calibration: micro-benchmarks of what this machine achieves (not what its spec promises), cached per
machine in the user's cache directory and used by later reports.

Each time comes from ``torch.utils.benchmark`` (median of blocked runs): a large matmul per dtype; suites of dense
and of depthwise convolutions, fitted to a rate and a per-op overhead each; elementwise copy and add for
bandwidth; a chain of tiny modules for the per-op overhead of everything else.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from torchcost.errors import ProfilingError
from torchcost.hardware.detect import cpu_model_name, last_level_cache_bytes
from torchcost.hardware.predictors import Observation, OpTimeModel, held_out_check
from torchcost.hardware.predictors.learn import SAMPLES_PER_CLASS, module_call_seconds, observe, reference_seconds
from torchcost.hardware.predictors.sampling import SAMPLERS
from torchcost.timing import progress_bar, timing_module

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Calibration:
    """Achieved rates on one machine: FLOP/s for compute, bytes/s for bandwidth, seconds for overhead."""

    device: str
    device_name: str
    threads: int
    torch_version: str
    date: str
    matmul_flops: dict[str, float] = field(default_factory=dict)  # dtype -> FLOP/s
    conv_flops: float = 0.0  # fitted over a suite of typical layers (CONV_SUITE), batch 1 and 8
    depthwise_conv_flops: float = 0.0  # fitted over DEPTHWISE_SUITE
    copy_bandwidth: float = 0.0  # bytes/s, read + write
    add_bandwidth: float = 0.0
    op_overhead_s: float = 0.0  # per op in a chain of tiny modules: dispatch, launch, module call
    class_overhead_s: dict[str, float] = field(default_factory=dict)  # fixed cost per op of conv, depthwise, matmul
    details: dict[str, str] = field(default_factory=dict)  # each benchmark's shape and time
    # learned op-time models (hardware/predictors): the measured samples they are fitted on, kept so that each
    # calibration extends the last one; the cost of a module call; the cache the features compare against
    observations: list[dict[str, Any]] = field(default_factory=list)
    module_call_s: float = 0.0
    cache_bytes: int = 0
    check: dict[str, Any] = field(default_factory=dict)  # held-out errors of the learned models

    @property
    def bandwidth(self) -> float:
        return max(self.copy_bandwidth, self.add_bandwidth)

    def time_model(self) -> OpTimeModel | None:
        """The learned per-class models (fitted once per calibration object), None without samples."""
        if not self.observations:
            return None
        key = id(self)
        if key not in _MODELS:
            _MODELS[key] = OpTimeModel([Observation.from_dict(o) for o in self.observations])
        return _MODELS[key]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bandwidth": self.bandwidth}


_MODELS: dict[int, OpTimeModel] = {}


def machine_key(device: str) -> str:
    """Calibrations are kept per machine, device, thread count and torch version."""
    name = torch.cuda.get_device_name() if device == "cuda" else cpu_model_name()
    raw = f"{platform.node()}|{name}|{device}|{torch.get_num_threads()}|{torch.__version__}"
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


def cache_path(device: str) -> Path:
    root = Path(
        os.environ.get("TORCHCOST_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torchcost"
    )
    return root.expanduser() / f"calibration-{device}-{machine_key(device)}.json"


def load_calibration(device: str) -> Calibration | None:
    path = cache_path(device)
    if not path.exists():
        return None
    return Calibration(**{k: v for k, v in json.loads(path.read_text()).items() if k != "bandwidth"})


def save_calibration(calibration: Calibration) -> Path:
    path = cache_path(calibration.device)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(calibration.to_dict(), indent=2))
    return path


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


IDLE_LOAD = 0.5  # load average a quiet machine shows with every core the calibration uses free
WAIT_FOR_QUIET_S = 60
PROBE_DRIFT = 0.2  # the reference probe may move this much between the start and the end
MAX_CHECK_ERROR = 0.15  # median held-out error above which a calibration is not kept
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

    A busy machine gives wrong rates: the load is checked first (waiting up to a minute for it to drop), a
    reference probe is timed at the start and the end, and the learned models are checked on held-out samples;
    a calibration that fails one of these is not kept (``CalibrationError``) unless ``force``.
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
        task = bar.add_task("calibrating", total=len(dtypes) + 6 + learned)
        probe = reference_seconds(lambda fn, t: _seconds(fn, t, dev.type), min_time) if not gpu else 0.0
        with torch.inference_mode():
            _rates(result, dev, dtypes, n, elements, min_time, lambda: bar.advance(task))
        if not gpu:  # counted as profile() counts (not in inference mode, where ops are not decomposed)
            _learn(result, effort, min_time, lambda: bar.advance(task))
            drift = reference_seconds(lambda fn, t: _seconds(fn, t, dev.type), min_time) / probe - 1
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
    for name in dtypes:
        a = torch.randn(n, n, device=dev, dtype=DTYPES[name])
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


RESAMPLED_CLASSES = 3  # the classes whose held-out error is worst get more samples...
RESAMPLE_ERROR = 0.10  # ...where it is above this


def _learn(result: Calibration, effort: str, min_time: float, advance: Callable[[], None]) -> None:
    """Sample, time and check the learned op-time models, then sample more of the classes they predict worst;
    extend the cached calibration's samples."""
    result.cache_bytes = last_level_cache_bytes()
    timed = functools.partial(_seconds, device="cpu")
    earlier = load_calibration("cpu")
    kept = earlier.observations if earlier is not None and earlier.cache_bytes == result.cache_bytes else []
    seed = len(kept)  # new configurations each time
    fresh = observe(lambda fn, t: timed(fn, t), effort, result.cache_bytes, seed, advance)
    check = held_out_check([*map(Observation.from_dict, kept), *fresh]).to_dict()["per_class_median"]
    worst = sorted((c for c in check if check[c] > RESAMPLE_ERROR), key=check.__getitem__)[-RESAMPLED_CLASSES:]
    extra = SAMPLES_PER_CLASS[effort] // 2
    fresh += observe(lambda fn, t: timed(fn, t), effort, result.cache_bytes, seed + 1, advance, worst, extra)
    for _ in range((RESAMPLED_CLASSES - len(worst)) * extra):
        advance()
    result.observations = _capped([*kept, *(o.to_dict() for o in fresh)])
    result.module_call_s = module_call_seconds(lambda fn, t: timed(fn, t), min_time)
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


def busy_load() -> float:
    """The 1-minute load average above which other work takes cores the calibration's threads need."""
    spare = (os.cpu_count() or 1) - torch.get_num_threads()
    return max(spare, 0) + IDLE_LOAD


def _wait_for_quiet() -> None:
    load, limit = _load(), busy_load()
    waited = 0
    while load > limit and waited < WAIT_FOR_QUIET_S:
        time.sleep(5)
        waited += 5
        load = _load()
    if load > limit:
        raise CalibrationError(
            f"the machine is busy (load average {load:.1f} over {waited} s, with {torch.get_num_threads()} of "
            f"{os.cpu_count()} cores needed): other work would slow every measurement; stop it and calibrate "
            "again, or force it (calibrate(force=True), --force) knowing the rates will be low"
        )


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


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
