"""What this machine is: CPU model, cores, vector ISA, clock, and a theoretical peak with its arithmetic;
the GPU from ``torch.cuda``'s properties."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

# fp32 FLOP per cycle per core, assuming two FMA (or one multiply + one add) pipes at the ISA's full width:
# lanes x 2 pipes x 2 (an FMA is two FLOPs). AMD Zen 4 runs 512-bit instructions as two 256-bit halves, so its
# AVX-512 rate is the AVX2 rate; calibration measures what a machine really reaches.
FP32_FLOP_PER_CYCLE = {"avx512": 64, "avx2": 32, "avx": 16, "sse": 8, "neon": 16}
# bf16 and int8 dot-product extensions, OP per cycle per core (two pipes): avx512_bf16 VDPBF16PS 16 lanes x 2
# pairs x 2 FLOP x 2 pipes; VNNI int8 VPDPBUSD 16 lanes x 4 pairs x 2 OP x 2 pipes (AVX-VNNI: 8 lanes);
# AMX per core: 1024 bf16 FLOP and 2048 int8 OP per cycle.
EXTRA_OP_PER_CYCLE = {
    "amx_bf16": ("bf16", 1024),
    "amx_int8": ("int8", 2048),
    "avx512_bf16": ("bf16", 128),
    "avx512_vnni": ("int8", 256),
    "avx_vnni": ("int8", 128),
}


@dataclass
class CpuInfo:
    model: str
    cores: int  # physical cores this process may use
    isa: str  # the widest SIMD extension: avx512, avx2, avx, sse, neon
    flags: list[str]
    clock_hz: float | None
    peak: dict[str, float] = field(default_factory=dict)  # dtype -> FLOP/s (OP/s for int8)
    arithmetic: list[str] = field(default_factory=list)  # how each peak was computed


def _cpuinfo() -> dict[str, str]:
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return {}
    info: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


DEFAULT_CACHE_BYTES = 32 << 20  # when the machine does not say


def last_level_cache_bytes() -> int:
    """The largest cache of CPU 0 (the last level), from sysfs: ``32K``, ``1024K`` or ``32M``."""
    sizes = []
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = path.read_text().strip()
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=DEFAULT_CACHE_BYTES)


def cpu_model_name() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def _clock_hz(info: dict[str, str]) -> float | None:
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_freq.exists():
        return float(max_freq.read_text()) * 1e3  # kHz
    mhz = info.get("cpu MHz")
    return float(mhz) * 1e6 if mhz else None


def _widest_isa(flags: set[str]) -> str:
    if platform.machine() in ("arm64", "aarch64"):
        return "neon"
    for isa, flag in (("avx512", "avx512f"), ("avx2", "avx2"), ("avx", "avx")):
        if flag in flags:
            return isa
    return "sse"


def _physical_cores(info: dict[str, str]) -> int:
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    siblings, per_socket = int(info.get("siblings", 1) or 1), int(info.get("cpu cores", 1) or 1)
    threads_per_core = max(siblings // per_socket, 1)
    return max(logical // threads_per_core, 1)


def detect_cpu() -> CpuInfo:
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    cpu = CpuInfo(
        model=cpu_model_name(),
        cores=_physical_cores(info),
        isa=_widest_isa(flags),
        flags=sorted(flags & ({"fma"} | set(EXTRA_OP_PER_CYCLE) | {"avx", "avx2", "avx512f"})),
        clock_hz=_clock_hz(info),
    )
    if cpu.clock_hz:
        per_cycle = FP32_FLOP_PER_CYCLE[cpu.isa]
        cpu.peak["fp32"] = cpu.cores * cpu.clock_hz * per_cycle
        cpu.arithmetic.append(
            f"fp32: {cpu.cores} cores x {cpu.clock_hz / 1e9:.2f} GHz x {per_cycle} FLOP/cycle ({cpu.isa}) "
            f"= {cpu.peak['fp32'] / 1e9:.1f} GFLOP/s"
        )
        for flag, (dtype, per_cycle) in EXTRA_OP_PER_CYCLE.items():
            if flag in flags and dtype not in cpu.peak:
                cpu.peak[dtype] = cpu.cores * cpu.clock_hz * per_cycle
                cpu.arithmetic.append(
                    f"{dtype}: {cpu.cores} cores x {cpu.clock_hz / 1e9:.2f} GHz x {per_cycle} OP/cycle ({flag}) "
                    f"= {cpu.peak[dtype] / 1e9:.1f} GOP/s"
                )
    return cpu


@dataclass
class GpuInfo:
    name: str
    memory: int
    sms: int
    capability: tuple[int, int]


def detect_gpu(index: int = 0) -> GpuInfo | None:
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(index)
    return GpuInfo(props.name, props.total_memory, props.multi_processor_count, (props.major, props.minor))
