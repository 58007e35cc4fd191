"""``Hardware``: peak compute per dtype, memory bandwidth and size, from the spec table, from detection of
this machine, and (for ``"local"``) from calibration on it."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import torch

from torchcost.hardware.calibration import Calibration, load_calibration
from torchcost.hardware.detect import FP32_FLOP_PER_CYCLE, detect_cpu, detect_gpu

# CUDA compute capability -> the generation whose library efficiencies apply (predict/gpu.py)
ARCHES = {(9, 0): "hopper", (8, 0): "ga100"}


class UnknownHardwareError(LookupError):
    """No spec-table entry by that name; the message lists the closest names."""


@dataclass
class Hardware:
    """What a device can do. Rates are peaks (vendor or computed) unless ``calibration`` holds measured ones."""

    key: str
    name: str
    kind: str  # gpu, cpu or soc
    peak: dict[str, float]  # dtype -> FLOP/s (OP/s for integer types)
    bandwidth: float | None  # bytes/s
    memory: float | None  # bytes
    cores: int | None  # SMs for GPUs, physical cores for CPUs
    source: str
    notes: list[str] = field(default_factory=list)
    calibration: Calibration | None = None
    clock_hz: float | None = None  # boost clock (GPUs), base clock (CPUs)
    l2_bytes: int | None = None  # L2 cache (GPUs)
    arch: str | None = None  # GPU generation ("hopper"), which sets the kernel models' efficiencies
    capability: tuple[int, int] | None = None  # CUDA compute capability (NVIDIA GPUs)

    def ridge_point(self, dtype: str = "fp32") -> float | None:
        """Arithmetic intensity (FLOP/byte) above which an op is compute-bound on the peak roofs."""
        rate = self.peak.get(dtype)
        return rate / self.bandwidth if rate and self.bandwidth else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "peak_flops": dict(self.peak),
            "bandwidth_bytes_per_s": self.bandwidth,
            "memory_bytes": self.memory,
            "cores": self.cores,
            "clock_hz": self.clock_hz,
            "l2_bytes": self.l2_bytes,
            "arch": self.arch,
            "capability": None if self.capability is None else list(self.capability),
            "ridge_point_flop_per_byte": self.ridge_point(),
            "source": self.source,
            "notes": list(self.notes),
            "calibration": self.calibration.to_dict() if self.calibration else None,
        }


@cache
def packaged_table(name: str) -> dict[str, dict[str, Any]]:
    """A TOML table shipped beside this module (``specs.toml``, ``interconnects.toml``), by entry key."""
    return tomllib.loads(resources.files("torchcost.hardware").joinpath(name).read_text(encoding="utf-8"))


def _table() -> dict[str, dict[str, Any]]:
    return packaged_table("specs.toml")


def _from_entry(key: str, entry: dict[str, Any]) -> Hardware:
    peak = {dtype: float(rate) for dtype, rate in entry.get("peak", {}).items()}
    notes = []
    if entry["kind"] == "cpu" and not peak:
        per_cycle = FP32_FLOP_PER_CYCLE[entry["isa"]]
        peak["fp32"] = entry["cores"] * entry["clock_hz"] * per_cycle
        notes.append(f"fp32: {entry['cores']} cores x {entry['clock_hz'] / 1e9:.2f} GHz x {per_cycle} FLOP/cycle")
    return Hardware(
        key=key,
        name=entry["name"],
        kind=entry["kind"],
        peak=peak,
        bandwidth=float(entry["bandwidth"]) if "bandwidth" in entry else None,
        memory=float(entry["memory"]) if "memory" in entry else None,
        cores=entry.get("cores"),
        source=entry["source"],
        notes=notes,
        clock_hz=float(entry["clock_hz"]) if "clock_hz" in entry else None,
        l2_bytes=entry.get("l2_bytes"),
        arch=entry.get("arch"),
        capability=tuple(entry["capability"]) if "capability" in entry else None,
    )


def known_hardware() -> dict[str, Hardware]:
    """Every spec-table entry by key."""
    return {key: _from_entry(key, entry) for key, entry in _table().items()}


def _lookup(name: str) -> Hardware | None:
    for key, entry in _table().items():
        if name == key or name in entry.get("aliases", []):
            return _from_entry(key, entry)
    return None


def this_cpu() -> Hardware:
    cpu = detect_cpu()
    return Hardware(
        key="cpu",
        name=cpu.model,
        kind="cpu",
        peak=cpu.peak,
        bandwidth=None,
        memory=None,
        cores=cpu.cores,
        source="detected from /proc/cpuinfo (theoretical peak; bandwidth needs calibration)",
        notes=[*cpu.arithmetic, f"ISA {cpu.isa}; flags {' '.join(cpu.flags)}"],
        clock_hz=cpu.clock_hz,
    )


def this_gpu() -> Hardware:
    gpu = detect_gpu()
    if gpu is None:
        raise UnknownHardwareError("no CUDA device is available here; name a spec-table entry instead")
    key = match_gpu(gpu.name)
    arch = ARCHES.get(gpu.capability)
    if key is None:
        found = Hardware("cuda", gpu.name, "gpu", {}, None, float(gpu.memory), gpu.sms, "torch.cuda properties only")
        found.arch, found.capability = arch, gpu.capability
        return found
    spec = _from_entry(key, _table()[key])
    spec.arch, spec.capability = arch or spec.arch, gpu.capability
    spec.notes.append(f"this GPU ({gpu.name}, {gpu.sms} SMs) matched to the spec entry {key}")
    return spec


def match_gpu(device_name: str) -> str | None:
    """The spec key whose words best match a CUDA device name ("NVIDIA H100 80GB HBM3" -> "h100-sxm")."""
    words = set(re.split(r"[\s_-]+", device_name.lower()))
    best, best_score = None, 0
    for key, entry in _table().items():
        tokens = key.split("-")
        if entry["kind"] != "gpu" or (tokens[0] not in words and "-".join(tokens[:2]) not in device_name.lower()):
            continue
        score = sum(token in words for token in tokens)
        if score > best_score:
            best, best_score = key, score
    return best


def hardware(name: str) -> Hardware:
    """A spec-table entry (``"h100"``, ``"l4"``, ...), this machine's ``"cpu"`` or ``"cuda"`` device, or
    ``"local"``: this machine's device with its calibrated rates when ``torchcost calibrate`` has run."""
    wanted = name.lower()
    if wanted == "cpu":
        return this_cpu()
    if wanted == "cuda":
        return this_gpu()
    if wanted == "local":
        local = this_gpu() if torch.cuda.is_available() else this_cpu()
        local.calibration = load_calibration("cuda" if torch.cuda.is_available() else "cpu")
        if local.calibration is None:
            local.notes.append("not calibrated yet: run `torchcost calibrate` for achievable rates")
        return local
    found = _lookup(wanted)
    if found is None:
        names = [*_table(), "cpu", "cuda", "local"]
        close = difflib.get_close_matches(wanted, names, n=5, cutoff=0.4) or names[:5]
        raise UnknownHardwareError(f"unknown hardware {name!r}; closest: {', '.join(close)}")
    return found
