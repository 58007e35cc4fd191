"""Human-readable numbers. One unit system throughout: decimal SI (1 k = 10^3, 1 MB = 10^6 bytes)."""

from __future__ import annotations

import math

UNIT_NOTE = "units: decimal SI (1 k = 10^3, 1 M = 10^6, 1 G = 10^9; 1 MB = 10^6 bytes)"

_PREFIXES = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))

# The short dtype names torchcost speaks (--dtype, --amp, the spec table's peaks), by torch's own names.
SHORT_DTYPE_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "int8": "int8", "float8_e4m3fn": "fp8"}


def si(value: float, unit: str = "") -> str:
    """``si(4_089_184_256) == "4.09 G"``, ``si(102_228_128, "B") == "102.23 MB"``."""
    for prefix, scale in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def duration(seconds: float) -> str:
    """``duration(0.0123) == "12.30 ms"``, ``duration(4.5e-5) == "45.00 µs"``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.2f} {unit}"
    return f"{seconds / 1e-9:.0f} ns"


def ratio(value: float, reference: float) -> str:
    """``ratio(3, 100) == "0.03x"``; below 0.01, two significant digits: ``ratio(1, 8100) == "0.00012x"``."""
    if not reference:
        return "n/a"
    r = value / reference
    if r == 0 or abs(r) >= 0.01:
        return f"{r:.2f}x"
    return f"{r:.{1 - math.floor(math.log10(abs(r)))}f}x"
