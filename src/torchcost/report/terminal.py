"""The terminal report: summary, per-module tree, per-operator table and the uncounted ops (rich)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from torchcost.records import CostTotals, Profile
from torchcost.report.measurements import conditions, latency_table, latency_warnings, seconds
from torchcost.units import UNIT_NOTE, percent, si

DEFAULT_DEPTH = 2


def summary_table(profile: Profile) -> Table:
    params = profile.params
    table = Table(title=f"torchcost: {profile.model}", show_header=False, title_justify="left")
    table.add_column("quantity", style="bold")
    table.add_column("value", justify="right")
    table.add_column("detail", style="dim")
    inputs = ", ".join(f"{list(spec.shape)} {spec.dtype}" for spec in profile.inputs)
    table.add_row("inputs", inputs, f"device {profile.device}" + (", forward + backward" if profile.backward else ""))
    table.add_row(
        "params",
        si(params.total),
        f"{params.total:,} ({params.trainable:,} trainable, {params.frozen:,} frozen); buffers {params.buffers:,}",
    )
    what_if = ", ".join(f"{name} {si(size, 'B')}" for name, size in profile.size_if.items())
    table.add_row("size", si(profile.size_bytes, "B"), f"{profile.size_bytes:,} bytes; if stored as {what_if}")
    table.add_row("MACs", si(profile.macs), f"{profile.macs:,} multiply-accumulates")
    table.add_row("FLOPs", si(profile.flops), f"{profile.flops:,} (2 per MAC + other ops)")
    access = profile.memory_access
    table.add_row(
        "memory access",
        si(access.total, "B"),
        f"read {si(access.read, 'B')}, written {si(access.write, 'B')}",
    )
    intensity = profile.flops / access.total if access.total else 0.0
    table.add_row("arithmetic intensity", f"{intensity:.1f}", "FLOP/byte")
    if profile.latency is not None:
        lat = profile.latency
        table.add_row(
            "latency (median)",
            seconds(lat.median_s),
            f"p90 {seconds(lat.p90_s)}, CV {lat.cv:.1%}, {lat.runs} runs; {conditions(lat)}",
        )
        measured = sum(r.measured_s for r in profile.records if r.measured_s is not None)
        table.add_row(
            "sum of op times", seconds(measured), "torch.profiler, median per op (profiler overhead included)"
        )
    return table


def _timed(rows: Sequence[CostTotals]) -> bool:
    return any(row.measured_s is not None for row in rows)


def _time_cells(row: CostTotals, total: float) -> list[str]:
    return [seconds(row.measured_s), percent(row.measured_s or 0.0, total)]


def module_table(profile: Profile, depth: int) -> Table:
    table = Table(title=f"per module (depth {depth})", title_justify="left")
    for header in ("module", "type", "output shape"):
        table.add_column(header, overflow="fold")
    timed = _timed(profile.modules)
    for header in ("params", "MACs", "FLOPs", "memory access", "% FLOPs", *(("time", "% time") if timed else ())):
        table.add_column(header, justify="right")
    total_time = profile.modules[0].measured_s or 0.0 if profile.modules else 0.0
    for module in profile.modules:
        if module.depth > depth:
            continue
        name = module.name.rsplit(".", 1)[-1] if module.name else "(root)"
        shapes = " ".join(str(list(s)) for s in module.output_shapes[:2]) or ("-" if module.calls else "not called")
        table.add_row(
            "  " * module.depth + name,
            module.type,
            shapes,
            si(module.params),
            si(module.macs),
            si(module.flops),
            si(module.memory_access.total, "B"),
            percent(module.flops, profile.flops),
            *(_time_cells(module, total_time) if timed else ()),
        )
    return table


def operator_table(profile: Profile, top: int | None = None) -> Table:
    table = Table(title="per operator", title_justify="left")
    table.add_column("op")
    timed = _timed(profile.operators)
    for header in (
        "calls",
        "MACs",
        "FLOPs",
        "memory access",
        "% FLOPs",
        "% memory",
        *(("time", "% time") if timed else ()),
    ):
        table.add_column(header, justify="right")
    total_time = sum(op.measured_s or 0.0 for op in profile.operators)
    for op in profile.operators[:top]:
        table.add_row(
            op.op,
            str(op.count),
            si(op.macs),
            si(op.flops),
            si(op.memory_access.total, "B"),
            percent(op.flops, profile.flops),
            percent(op.memory_access.total, profile.memory_access.total),
            *(_time_cells(op, total_time) if timed else ()),
        )
    return table


def uncounted_text(profile: Profile) -> Text:
    if not profile.uncounted:
        return Text("uncounted ops: none (every operator had a formula)", style="green")
    ops = ", ".join(f"{u.op} x{u.count}" for u in profile.uncounted)
    return Text(f"uncounted ops (FLOPs unknown, not zero; their memory access is included): {ops}", style="bold red")


def findings_text(profile: Profile) -> Text:
    lines = [f"{n}. {finding.message}" for n, finding in enumerate(profile.findings, 1)]
    return Text("why:\n" + "\n".join(lines))


def _latency_parts(profile: Profile) -> list[RenderableType]:
    latency = profile.latency
    if latency is None:
        return []
    parts: list[RenderableType] = [latency_table(latency)] if len(latency.by_batch) > 1 else []
    return [*parts, latency_warnings(latency)] if latency.warnings() else parts


def render(profile: Profile, console: Console, depth: int = DEFAULT_DEPTH, top: int | None = None) -> None:
    console.print(
        Group(
            summary_table(profile),
            module_table(profile, depth),
            operator_table(profile, top),
            uncounted_text(profile),
            *_latency_parts(profile),
            *([findings_text(profile)] if profile.findings else []),
            Text(UNIT_NOTE, style="dim"),
        )
    )


def render_text(profile: Profile, depth: int = DEFAULT_DEPTH, width: int = 140) -> str:
    """The report as plain text (what ``print(profile)`` shows)."""
    buffer = io.StringIO()
    render(profile, Console(file=buffer, width=width, color_system=None, force_terminal=False), depth)
    return buffer.getvalue()
