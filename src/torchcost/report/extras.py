"""What a profile may hold beyond counts: measured latency, per-op and per-module times, the hardware's roofs,
findings. Reports show a section only when the profile holds its data; this module is the one place that reads
those optional attributes, so every report agrees on what is present.

Read by attribute (or key, for plain dicts): ``profile.latency`` (``median_s``, ``p90_s``, ``cv``, ``device``),
``measured_s`` on operator and module stats and on op records, ``profile.hardware`` (``name``,
``peak_flop_per_s``, ``bandwidth_byte_per_s``), ``profile.findings`` (items with ``text``, or strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torchcost.records import Profile


@dataclass(frozen=True)
class LatencySummary:
    median_s: float
    p90_s: float | None = None
    cv: float | None = None  # coefficient of variation of the runs
    device: str | None = None


@dataclass(frozen=True)
class Roofs:
    """The two roofs of a roofline: compute (FLOP/s) and memory bandwidth (byte/s)."""

    name: str
    peak_flop_per_s: float
    bandwidth_byte_per_s: float

    @property
    def ridge(self) -> float:
        """Arithmetic intensity (FLOP/byte) where a kernel stops being memory-bound."""
        return self.peak_flop_per_s / self.bandwidth_byte_per_s


def field_of(item: Any, name: str) -> Any:
    """``item.name`` or ``item[name]``; ``None`` when absent."""
    if isinstance(item, dict):
        return item.get(name)
    return getattr(item, name, None)


def latency(profile: Profile) -> LatencySummary | None:
    measured = getattr(profile, "latency", None)
    median = field_of(measured, "median_s")
    if median is None:
        return None
    return LatencySummary(
        float(median), field_of(measured, "p90_s"), field_of(measured, "cv"), field_of(measured, "device")
    )


def seconds(item: Any) -> float | None:
    """The measured time of an operator, module or op record, if it was measured."""
    value = field_of(item, "measured_s")
    return None if value is None else float(value)


def has_op_times(profile: Profile) -> bool:
    return any(seconds(op) is not None for op in profile.operators)


def has_module_times(profile: Profile) -> bool:
    return any(seconds(module) is not None for module in profile.modules)


def roofs(profile: Profile) -> Roofs | None:
    hardware = getattr(profile, "hardware", None) or field_of(getattr(profile, "prediction", None), "hardware")
    peak, bandwidth = field_of(hardware, "peak_flop_per_s"), field_of(hardware, "bandwidth_byte_per_s")
    if not peak or not bandwidth:
        return None
    return Roofs(str(field_of(hardware, "name") or "hardware"), float(peak), float(bandwidth))


def findings(profile: Profile) -> list[str]:
    return [str(field_of(item, "text") or item) for item in getattr(profile, "findings", None) or []]
