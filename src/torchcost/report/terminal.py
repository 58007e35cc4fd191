"""The terminal report: summary, per-module tree, per-operator table and the uncounted ops (rich)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from torchcost.analysis import Analysis, Result, as_analysis
from torchcost.explain import compare_findings
from torchcost.records import ModuleStats, OperatorStats, Profile
from torchcost.report.columns import module_columns, operator_columns
from torchcost.report.measurements import latency_table, latency_warnings
from torchcost.report.rows import check_sort, modules_shown, operators_shown
from torchcost.report.summary import brief_line, compare_rows, summary_items
from torchcost.report.table_width import FittedTable
from torchcost.units import UNIT_NOTE

DEFAULT_DEPTH = 2


def summary_table(result: Result) -> Table:
    title = Text(f"torchcost: {result.model}", style="table.title")  # Text, not markup: a spec may hold "[...]"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("quantity", style="bold", no_wrap=True)
    table.add_column("value", justify="right")
    table.add_column("detail", style="dim", overflow="fold")  # a long word folds, never cut
    for item in summary_items(result):
        # a number is never wrapped; the inputs' shapes wrap, so that they do not squeeze the other columns
        value = Text(item.value, no_wrap=item.label != "inputs")
        table.add_row(Text(item.label), value, Text(item.detail))
    return table


def module_table(
    profile: Profile, depth: int, sort: str | None = None, top: int | None = None
) -> FittedTable[ModuleStats]:
    """The module tree down to ``depth`` (or, with ``sort``, a flat list), with the columns that fit."""
    title = f"per module (depth {depth})" + (f", by {sort}" if sort else "")
    rows = modules_shown(profile, depth, sort, top)
    return FittedTable(module_columns(profile, flat=sort is not None), rows, title=title)


def operator_table(profile: Profile, top: int | None = None, sort: str | None = None) -> FittedTable[OperatorStats]:
    title = "per operator" + (f", by {sort}" if sort else "")
    return FittedTable(operator_columns(profile), operators_shown(profile, sort, top), title=title)


def uncounted_text(profile: Profile) -> Text:
    if not profile.uncounted:
        return Text("uncounted ops: none (every operator had a formula)", style="green")
    ops = ", ".join(f"{u.op} x{u.count}" for u in profile.uncounted)
    return Text(f"uncounted ops (FLOPs unknown, not zero; their memory access is included): {ops}", style="bold red")


def render(
    result: Result,
    console: Console,
    depth: int = DEFAULT_DEPTH,
    top: int | None = None,
    sort: str | None = None,
    by: str | None = None,
) -> None:
    """Summary, then the module tree and the operator table (or only one of them, with ``by``)."""
    analysis = as_analysis(result)
    profile = analysis.profile
    check_sort(profile, sort)
    parts: list[RenderableType] = [summary_table(analysis)]
    if by in (None, "module"):
        parts.append(module_table(profile, depth, sort, top))
    if by in (None, "op"):
        parts.append(operator_table(profile, top, sort))
    parts += [uncounted_text(profile), *latency_parts(analysis), *findings_text(analysis), Text(UNIT_NOTE, style="dim")]
    console.print(Group(*parts))


def latency_parts(analysis: Analysis) -> list[RenderableType]:
    """The per-batch latency table (for a sweep) and the warnings about noisy measurements."""
    latency = analysis.latency
    if latency is None:
        return []
    parts: list[RenderableType] = [latency_table(latency)] if len(latency.by_batch) > 1 else []
    return [*parts, latency_warnings(latency)] if latency.warnings() else parts


def findings_text(analysis: Analysis) -> list[RenderableType]:
    """The findings as a list; a long one wraps under its own first word, not under the dash."""
    found = [finding.message for finding in analysis.findings]
    if not found:
        return []
    items = Table.grid(padding=(0, 1))
    items.add_column(no_wrap=True)
    items.add_column()
    for line in found:
        items.add_row("  -", Text(line))
    return [Text("findings:", style="bold"), items]


def render_brief(result: Result, console: Console) -> None:
    """The one-line summary (``--brief``)."""
    console.print(brief_line(result), highlight=False, soft_wrap=True, emoji=False, markup=False)


def render_compare(results: Sequence[Result], console: Console) -> None:
    """Several models side by side, one column each."""
    analyses = [as_analysis(result) for result in results]
    rows = compare_rows(analyses)
    widths = [max(cell_len(p.model), *(cell_len(values[i]) for _, values in rows)) for i, p in enumerate(analyses)]
    narrow = 1 + 23 + sum(w + 3 for w in widths) > console.width  # "quantity" takes 20 (+ 3)
    table = Table(title="torchcost compare", title_justify="left")
    table.add_column("quantity", style="bold")
    for analysis in analyses:
        # on a narrow terminal a spec prints as "source:" over "name", each whole
        header = analysis.model.replace(":", ":\n", 1) if narrow else analysis.model
        table.add_column(Text(header, justify="right", overflow="fold"), justify="right", overflow="fold")
    for label, values in rows:
        table.add_row(Text(label), *(Text(v) for v in values))
    latencies = [analysis.known_latency for analysis in analyses]
    why = [Text(line) for line in compare_findings([analysis.profile for analysis in analyses], latencies)]
    for analysis in analyses:
        why += [Text(f"{analysis.model}: {finding.message}") for finding in analysis.findings[:3]]
    console.print(Group(table, *([Text("why:", style="bold"), *why] if why else []), Text(UNIT_NOTE, style="dim")))


def render_text(result: Result, depth: int = DEFAULT_DEPTH, width: int = 140) -> str:
    """The report as plain text (what ``print(profile)`` shows)."""
    buffer = io.StringIO()
    render(result, Console(file=buffer, width=width, color_system=None, force_terminal=False, emoji=False), depth)
    return buffer.getvalue()
