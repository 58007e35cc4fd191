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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from torchcost.hardware.detect import cpu_model_name
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

    @property
    def bandwidth(self) -> float:
        return max(self.copy_bandwidth, self.add_bandwidth)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bandwidth": self.bandwidth}


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


def calibrate(device: str = "cpu", quick: bool = False, progress: bool = True, save: bool = True) -> Calibration:
    """Run the micro-benchmarks on ``device`` and (by default) cache the result. About 10 s on a 2-core CPU."""
    dev = torch.device(device)
    gpu = dev.type == "cuda"
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
    steps = len(dtypes) + 6
    with progress_bar(progress) as bar, torch.inference_mode():
        task = bar.add_task("calibrating", total=steps)
        for name in dtypes:
            a = torch.randn(n, n, device=dev, dtype=DTYPES[name])
            seconds = _seconds(functools.partial(torch.mm, a, a), min_time, dev.type)
            result.matmul_flops[name] = 2 * n**3 / seconds
            result.details[f"matmul_{name}"] = f"({n}, {n}) x ({n}, {n}): {seconds * 1e3:.3f} ms"
            bar.advance(task)

        for name, suite, dense in (("conv", CONV_SUITE, True), ("depthwise_conv", DEPTHWISE_SUITE, False)):
            points = [point for batch in SUITE_BATCHES for point in _suite_times(suite, batch, dense, dev, min_time)]
            rate, overhead = fit_rate_and_overhead(points)
            setattr(result, "conv_flops" if name == "conv" else "depthwise_conv_flops", rate)
            result.class_overhead_s[name] = overhead
            kind = "ResNet" if name == "conv" else "MobileNet"
            result.details[name] = (
                f"time = overhead + FLOPs / rate, least squares over {len(points)} {kind}-like convs, batch 1 and 8"
            )
            bar.advance(task)

        a, b, out = (torch.randn(elements, device=dev) for _ in range(3))
        seconds = _seconds(lambda: out.copy_(a), min_time, dev.type)
        result.copy_bandwidth = 2 * 4 * elements / seconds  # read a, write out
        result.details["copy"] = f"{4 * elements / 1e6:.0f} MB copy: {seconds * 1e3:.3f} ms"
        bar.advance(task)
        seconds = _seconds(lambda: torch.add(a, b, out=out), min_time, dev.type)
        result.add_bandwidth = 3 * 4 * elements / seconds  # read a and b, write out
        result.details["add"] = f"{4 * elements / 1e6:.0f} MB add: {seconds * 1e3:.3f} ms"
        bar.advance(task)

        result.op_overhead_s = _eager_op_overhead(dev, min_time)
        result.details["op_overhead"] = f"per ATen op of {CHAIN_BLOCKS} tiny Linear + ReLU modules in a chain"
        bar.advance(task)

        tiny = torch.randn(8, 8, device=dev)
        result.class_overhead_s["matmul"] = _seconds(lambda: torch.mm(tiny, tiny), min_time, dev.type)
        result.details["matmul_overhead"] = "(8, 8) x (8, 8) matmul"
        bar.advance(task)
    if save:
        save_calibration(result)
    return result
