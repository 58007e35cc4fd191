"""Which rows a table shows and in what order: shared by the terminal, Markdown and CSV reports."""

from __future__ import annotations

from collections.abc import Callable

from torchcost.records import CostTotals, ModuleStats, OperatorStats, Profile
from torchcost.report.extras import has_module_times, has_op_times

SORT_KEYS: dict[str, Callable[[CostTotals], float]] = {
    "flops": lambda row: row.flops,
    "macs": lambda row: row.macs,
    "memory": lambda row: row.memory_access.total,
    "time": lambda row: row.measured_s or 0.0,
}


def check_sort(profile: Profile, sort: str | None) -> None:
    """Sorting by time needs measured times; say so rather than sort by zeros."""
    if sort == "time" and not (has_op_times(profile) or has_module_times(profile)):
        raise ValueError("--sort time needs measured times, and this profile has none; sort by flops, macs or memory")
    if sort is not None and sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}; use one of {', '.join(SORT_KEYS)}")


def modules_shown(
    profile: Profile, depth: int | None, sort: str | None = None, top: int | None = None
) -> list[ModuleStats | None]:
    """Modules down to ``depth`` in tree order; with ``sort``, a flat list without the root, costliest first.

    ``top`` keeps the N costliest modules (by ``sort``, else by FLOPs then memory access). In tree order they
    keep the root and their parents, and ``None`` stands where rows were left out (printed as ``...``).
    """
    rows = [m for m in profile.modules if depth is None or m.depth <= depth]
    ranked = sorted((m for m in rows if m.name), key=SORT_KEYS[sort] if sort else _cost, reverse=True)
    if sort is not None:
        return list(ranked[:top])
    if top is None:
        return list(rows)
    kept = {""} | {m.name for m in ranked[:top]}
    kept |= {name.rsplit(".", i)[0] for name in list(kept) for i in range(1, name.count(".") + 1)}
    shown: list[ModuleStats | None] = []
    for module in rows:
        if module.name in kept:
            shown.append(module)
        elif shown and shown[-1] is not None:
            shown.append(None)
    return shown


def _cost(row: CostTotals) -> tuple[int, int]:
    """The default order of the costliest rows, as operators are counted: FLOPs, then memory access."""
    return row.flops, row.memory_access.total


def operators_shown(profile: Profile, sort: str | None = None, top: int | None = None) -> list[OperatorStats]:
    """Operators, costliest first by ``sort`` (by default by FLOPs, then memory access, as counted)."""
    rows = profile.operators if sort is None else sorted(profile.operators, key=SORT_KEYS[sort], reverse=True)
    return rows[:top]
