"""CSV: one row per module or per operator, with exact integers (no units, no rounding)."""

from __future__ import annotations

import csv
import io
from typing import Any

from torchcost.records import ModuleStats, Profile
from torchcost.report import extras
from torchcost.report.rows import SORT_KEYS, check_sort

COST_FIELDS = ("macs", "flops", "bytes_read", "bytes_written", "memory_access_bytes")


def render_csv(profile: Profile, by: str | None = "module", sort: str | None = None) -> str:
    """Every module (tree order, root first) or every operator, as CSV text with a header row; ``sort``
    orders the rows by that cost, costliest first."""
    check_sort(profile, sort)
    items: list[Any] = list(profile.operators if by == "op" else profile.modules)
    if sort is not None:
        items.sort(key=SORT_KEYS[sort], reverse=True)
    if by == "op":
        header = ["op", "calls", *COST_FIELDS]
        rows = [[o.op, o.count, *_costs(o)] for o in items]
        timed = extras.has_op_times(profile)
    else:
        header = ["module", "type", "depth", "params", "own_params", "calls", *COST_FIELDS, "output_shapes"]
        rows = [[m.name, m.type, m.depth, m.params, m.own_params, m.calls, *_costs(m), _shapes(m)] for m in items]
        timed = extras.has_module_times(profile)
    if timed:
        header.append("measured_s")
        rows = [[*row, item.measured_s] for row, item in zip(rows, items, strict=True)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _costs(row: Any) -> list[int]:
    return [row.macs, row.flops, row.bytes_read, row.bytes_written, row.memory_access.total]


def _shapes(module: ModuleStats) -> str:
    """``1x64x56x56``, several outputs separated by spaces."""
    return " ".join("x".join(str(d) for d in shape) for shape in module.output_shapes)
