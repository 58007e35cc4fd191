"""Markdown tables, ready to paste into a README or a pull request."""

from __future__ import annotations

from collections.abc import Sequence

from torchcost.analysis import Result, as_analysis
from torchcost.records import Profile
from torchcost.report.columns import Column, Row, module_columns, operator_columns
from torchcost.report.rows import check_sort, modules_shown, operators_shown
from torchcost.report.summary import compare_rows, summary_items
from torchcost.report.table_width import GAP
from torchcost.units import UNIT_NOTE

DEFAULT_DEPTH = 2


def render_markdown(
    result: Result,
    depth: int = DEFAULT_DEPTH,
    top: int | None = None,
    sort: str | None = None,
    by: str | None = None,
) -> str:
    """Summary, per-module and per-operator tables (or one of them, with ``by``), uncounted ops, findings."""
    analysis = as_analysis(result)
    profile = analysis.profile
    check_sort(profile, sort)
    summary = [(item.label, item.value, item.detail) for item in summary_items(analysis)]
    parts = [f"## torchcost: {profile.model}", table(("quantity", "value", "detail"), summary, (False, True, False))]
    if by in (None, "module"):
        title = f"### Per module (depth {depth}{', by ' + sort if sort else ''})"
        # Markdown collapses leading spaces, so modules are shown by their full dotted path
        rows = modules_shown(profile, depth, sort, top)
        parts += [title, _rows_table(module_columns(profile, flat=True), rows)]
    if by in (None, "op"):
        title = f"### Per operator{' (by ' + sort + ')' if sort else ''}"
        parts += [title, _rows_table(operator_columns(profile), operators_shown(profile, sort, top))]
    parts.append(_uncounted(profile))
    found = [finding.message for finding in analysis.findings]
    if found:
        parts.append("Findings:\n\n" + "\n".join(f"- {_escape(line)}" for line in found))
    parts.append(f"_{UNIT_NOTE}_")
    return "\n\n".join(parts) + "\n"


def render_compare_markdown(profiles: Sequence[Result]) -> str:
    """One column per model, one row per quantity."""
    headers = ("quantity", *(p.model for p in profiles))
    rows = [(label, *values) for label, values in compare_rows(profiles)]
    aligns = (False, *(True for _ in profiles))
    return "\n\n".join(["## torchcost compare", table(headers, rows, aligns), f"_{UNIT_NOTE}_"]) + "\n"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    """A GitHub-flavoured Markdown table; numeric columns are right-aligned."""
    lines = ["| " + " | ".join(_escape(h) for h in headers) + " |"]
    lines.append("| " + " | ".join("---:" if n else "---" for n in numeric) + " |")
    lines += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _rows_table(columns: Sequence[Column[Row]], rows: Sequence[Row | None]) -> str:
    """``None`` rows (rows left out) print as ``...``."""
    cells = [[GAP] + [""] * (len(columns) - 1) if row is None else [c.cell(row) for c in columns] for row in rows]
    return table([c.header for c in columns], cells, [c.numeric for c in columns])


def _uncounted(profile: Profile) -> str:
    if not profile.uncounted:
        return "Uncounted ops: none (every operator had a formula)."
    ops = ", ".join(f"`{u.op}` x{u.count}" for u in profile.uncounted)
    return f"**Uncounted ops** (FLOPs unknown, not zero; their memory access is included): {ops}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
