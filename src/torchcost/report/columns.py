"""The columns of the module and operator tables, as (header, cell) pairs: the terminal and Markdown
reports print the same columns from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from torchcost.records import ModuleStats, OperatorStats, Profile
from torchcost.report import extras
from torchcost.units import duration, percent, si

Row = TypeVar("Row")


@dataclass(frozen=True)
class Column(Generic[Row]):
    header: str
    cell: Callable[[Row], str]
    numeric: bool = True  # right-aligned, never wrapped
    drop: int = 0  # on a narrow terminal, columns with a higher number are dropped first; 0: always shown
    style: Callable[[Row], str] | None = None  # a rich style for the cell (the terminal only)


def _time(item: ModuleStats | OperatorStats) -> str:
    measured = item.measured_s
    return "-" if measured is None else duration(measured)


def module_label(module: ModuleStats, flat: bool) -> str:
    """The tree shows each name indented under its parent; a flat list shows full dotted paths."""
    if flat:
        return module.name or "(root)"
    return "  " * module.depth + (module.name.rsplit(".", 1)[-1] if module.name else "(root)")


def output_shapes(module: ModuleStats) -> str:
    shapes = " ".join(str(list(s)) for s in module.output_shapes[:2])
    if shapes or module.calls:
        return shapes or "-"
    return "sum of its modules" if module.flops or module.memory_access.total else "not called"


def module_columns(profile: Profile, flat: bool) -> list[Column[ModuleStats]]:
    columns: list[Column[ModuleStats]] = [
        Column("module", lambda m: module_label(m, flat), numeric=False),
        Column("type", lambda m: m.type + (" (user formula)" if m.user_formula else ""), numeric=False, drop=5),
        Column("output shape", output_shapes, numeric=False, drop=6),
        Column("params", lambda m: si(m.params), drop=3),
        Column("MACs", lambda m: si(m.macs), drop=2),
        Column("FLOPs", lambda m: si(m.flops)),
        Column("memory access", lambda m: si(m.memory_access.total, "B")),
        Column("% FLOPs", lambda m: percent(m.flops, profile.flops), drop=4),
    ]
    if extras.has_module_times(profile):
        columns.append(Column("time", _time, drop=1))
    return columns


def operator_columns(profile: Profile) -> list[Column[OperatorStats]]:
    columns: list[Column[OperatorStats]] = [
        Column("op", lambda o: o.op, numeric=False),
        Column("calls", lambda o: str(o.count), drop=5),
        Column("MACs", lambda o: si(o.macs), drop=2),
        Column("FLOPs", lambda o: si(o.flops)),
        Column("memory access", lambda o: si(o.memory_access.total, "B")),
        Column("% FLOPs", lambda o: percent(o.flops, profile.flops), drop=4),
        Column("% memory", lambda o: percent(o.memory_access.total, profile.memory_access.total), drop=6),
    ]
    if extras.has_op_times(profile):
        total = sum(o.measured_s or 0.0 for o in profile.operators)
        columns += [
            Column("time", _time, drop=1),
            Column("% time", lambda o: percent(o.measured_s or 0.0, total), drop=3),
        ]
    return columns
