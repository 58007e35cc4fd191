"""Writing reports to files (or to stdout for ``-``): JSON, CSV, Markdown, HTML."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from torchcost.analysis import Result, as_analysis
from torchcost.report.csvfile import render_csv
from torchcost.report.files import write_text
from torchcost.report.markdown import DEFAULT_DEPTH, render_compare_markdown, render_markdown
from torchcost.sweep.runner import SweepResult


@dataclass(frozen=True)
class ReportOptions:
    """What the tables show: module depth, the N costliest rows, their order, and which table."""

    depth: int = DEFAULT_DEPTH
    top: int | None = None
    sort: str | None = None  # flops, macs, memory or time
    by: str | None = None  # op or module; None shows both tables (CSV: one row per module)


def write_exports(
    result: Result,
    options: ReportOptions,
    json_path: str | None = None,
    csv_path: str | None = None,
    markdown: str | None = None,
    html: str | None = None,
) -> None:
    """Write each requested report; all are rendered first, so a bad option writes no file."""
    texts: dict[str, str | None] = {
        "json": json.dumps(result.to_dict(), indent=2) + "\n" if json_path else None,
        "csv": render_csv(as_analysis(result).profile, options.by or "module", options.sort) if csv_path else None,
        "markdown": render_markdown(result, options.depth, options.top, options.sort, options.by) if markdown else None,
        "html": _html(result) if html else None,
    }
    for path, text in zip((json_path, csv_path, markdown, html), texts.values(), strict=True):
        if path and text is not None:
            write_text(path, text)


def write_compare(
    profiles: Sequence[Result], json_path: str | None = None, markdown: str | None = None, html: str | None = None
) -> None:
    if json_path:
        write_text(json_path, json.dumps([p.to_dict() for p in profiles], indent=2) + "\n")
    if markdown:
        write_text(markdown, render_compare_markdown(profiles))
    if html:
        from torchcost.report.html import render_compare_html

        write_text(html, render_compare_html(profiles))


def write_sweep_reports(
    result: SweepResult, markdown: str | None = None, html: str | None = None, sort: str = "macs", top: int = 20
) -> None:
    """The top rows of a sweep as Markdown, and its HTML page (Pareto chart, table, failures)."""
    from torchcost.report.sweep import render_sweep_html, render_sweep_markdown

    if markdown:
        write_text(markdown, render_sweep_markdown(result.rows, result.hardware, sort, top))
    if html:
        write_text(html, render_sweep_html(result.rows, result.hardware, sort, top))


def _html(result: Result) -> str:
    from torchcost.report.html import render_html  # plotly is an optional dependency

    return render_html(result)
