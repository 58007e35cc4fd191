"""Reports of a sweep: the top rows (terminal, Markdown), and a self-contained HTML page with a Pareto chart
(cost against params, coloured by family), a sortable table and the failures grouped by reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.table import Table

from torchcost.report.charts import LAYOUT
from torchcost.report.html import escape, figure_html, page, require_plotly, td, th
from torchcost.report.markdown import table
from torchcost.sweep.failures import group_failures
from torchcost.sweep.rows import Row
from torchcost.units import UNIT_NOTE, duration, si

SORTS = ("params", "macs", "flops", "memory", "predicted", "seconds")
CHART_FAMILIES = 20  # families with their own colour; the rest share one trace
FAILED_EXAMPLES = 4  # specs listed per failure reason


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Row], float | None]  # the exact number (None: unknown)
    text: Callable[[float], str]


def columns(hardware: Sequence[str], timing: bool = False) -> list[Column]:
    """The numeric columns of the tables: counts, one predicted latency per device, and (``timing``) the
    seconds each task took, which differ from run to run."""
    found = [
        Column("params", lambda r: r.params, si),
        Column("MACs", lambda r: r.macs, si),
        Column("FLOPs", lambda r: r.flops, si),
        Column("memory access", lambda r: r.memory_access_bytes, lambda v: si(v, "B")),
    ]
    for name in hardware:
        found.append(Column(f"predicted ({name})", _predicted(name), duration))
    if timing:
        found.append(Column("seconds", lambda r: r.seconds, lambda v: f"{v:.2f}"))
    return found


def _predicted(name: str) -> Callable[[Row], float | None]:
    return lambda row: row.predicted_s.get(name)


def sort_value(sort: str, hardware: Sequence[str]) -> Callable[[Row], float | None]:
    if sort == "predicted":
        if not hardware:
            raise ValueError("--sort predicted needs --hardware NAME")
        return _predicted(hardware[0])
    keys: dict[str, Callable[[Row], float | None]] = {
        "params": lambda r: r.params,
        "macs": lambda r: r.macs,
        "flops": lambda r: r.flops,
        "memory": lambda r: r.memory_access_bytes,
        "seconds": lambda r: r.seconds,
    }
    return keys[sort]


def ranked(rows: Sequence[Row], hardware: Sequence[str], sort: str, top: int | None) -> list[Row]:
    """The counted rows, costliest first by ``sort``; the first ``top`` of them."""
    value = sort_value(sort, hardware)
    counted = sorted((r for r in rows if r.ok), key=lambda r: (-(value(r) or 0.0), r.key))
    return counted[:top] if top is not None else counted


def summary_line(rows: Sequence[Row]) -> str:
    failed = sum(1 for r in rows if r.error)
    return f"{len(rows)} rows: {len(rows) - failed} counted, {failed} failed"


def _cell(column: Column, row: Row) -> str:
    value = column.value(row)
    return "-" if value is None else column.text(value)


def sweep_table(rows: Sequence[Row], hardware: Sequence[str], sort: str, top: int | None) -> Table:
    """The top rows for the terminal."""
    shown = ranked(rows, hardware, sort, top)
    title = f"top {len(shown)} by {sort} of {summary_line(rows)}"
    grid = Table(title=title, title_justify="left")
    for header in ("spec", "family", "inputs"):
        grid.add_column(header)
    numeric = columns(hardware)
    for column in numeric:
        grid.add_column(column.header, justify="right")
    for row in shown:
        grid.add_row(row.spec, row.family, row.inputs, *(_cell(c, row) for c in numeric))
    return grid


def failures_text(rows: Sequence[Row]) -> list[str]:
    """One line per failure reason: how many rows, the reason, a few of the specs."""
    lines = []
    for group in group_failures(rows):
        lines.append(f"{len(group.specs)} x {group.reason} ({_examples(group.specs)})")
    return lines


def _examples(specs: Sequence[str]) -> str:
    return ", ".join(specs[:FAILED_EXAMPLES]) + (", ..." if len(specs) > FAILED_EXAMPLES else "")


def render_sweep_markdown(rows: Sequence[Row], hardware: Sequence[str], sort: str, top: int | None) -> str:
    numeric = columns(hardware)
    shown = ranked(rows, hardware, sort, top)
    cells = [[row.spec, row.family, row.inputs, *(_cell(c, row) for c in numeric)] for row in shown]
    headers = ["spec", "family", "inputs", *(c.header for c in numeric)]
    parts = [
        "## torchcost sweep",
        f"{summary_line(rows)}; the top {len(shown)} by {sort}:",
        table(headers, [[_escape(c) for c in line] for line in cells], [False] * 3 + [True] * len(numeric)),
    ]
    failed = failures_text(rows)
    if failed:
        parts.append("Failures by reason:\n\n" + "\n".join(f"- {_escape(line)}" for line in failed))
    parts.append(f"_{UNIT_NOTE}_")
    return "\n\n".join(parts) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (lower is better), by increasing x."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    front: list[int] = []
    for index in order:
        if not front or points[index][1] < points[front[-1]][1]:
            front.append(index)
    return front


def render_sweep_html(rows: Sequence[Row], hardware: Sequence[str], sort: str, top: int | None) -> str:
    """One self-contained page: the Pareto chart of every counted row, the top rows, the failures."""
    require_plotly()
    meta = escape(summary_line(rows))
    sections = [
        f"<header><h1>torchcost sweep</h1><p class='meta'>{meta}</p></header>",
        _chart_section(rows, hardware),
        _table_section(rows, hardware, sort, top),
        _failures_section(rows),
    ]
    return page("torchcost sweep", sections)


def _cost_axis(hardware: Sequence[str]) -> tuple[str, Callable[[Row], float | None]]:
    if hardware:
        return f"predicted latency on {hardware[0]}", _predicted(hardware[0])
    return "MACs", lambda r: r.macs


def _chart_section(rows: Sequence[Row], hardware: Sequence[str]) -> str:
    label, cost = _cost_axis(hardware)
    plotted = [r for r in rows if r.ok and r.params and cost(r)]
    if not plotted:
        return ""
    points = [(float(r.params or 0), float(cost(r) or 0)) for r in plotted]
    front = pareto_front(points)
    note = (
        f"Each point is one row: {label} against parameters, both on log scales; the line joins the rows no other "
        "row beats on both (the Pareto front). Hover for the model."
    )
    figure = _pareto_figure(plotted, points, front, label)
    return f"<section id='pareto'><h2>Cost against size</h2><p class='note'>{escape(note)}</p>{figure}</section>"


def _pareto_figure(rows: Sequence[Row], points: Sequence[tuple[float, float]], front: list[int], label: str) -> str:
    import plotly.graph_objects as go

    families = [family for family, _ in Counter(r.family or "?" for r in rows).most_common(CHART_FAMILIES)]
    groups = {family: [i for i, r in enumerate(rows) if (r.family or "?") == family] for family in families}
    groups["other families"] = [i for i, r in enumerate(rows) if (r.family or "?") not in families]
    figure = go.Figure()
    for name, members in groups.items():
        if members:
            figure.add_trace(
                go.Scatter(
                    x=[points[i][0] for i in members],
                    y=[points[i][1] for i in members],
                    mode="markers",
                    name=name,
                    text=[_hover(rows[i], label, points[i][1]) for i in members],
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    figure.add_trace(
        go.Scatter(
            x=[points[i][0] for i in front],
            y=[points[i][1] for i in front],
            mode="lines",
            line={"shape": "hv", "color": "#333333", "width": 1.5},
            name="Pareto front",
            hoverinfo="skip",
        )
    )
    figure.update_layout(**LAYOUT, height=560, xaxis_title="parameters", yaxis_title=label)
    figure.update_xaxes(type="log", exponentformat="SI")
    figure.update_yaxes(type="log", exponentformat="SI", ticksuffix="s" if label.startswith("predicted") else "")
    return figure_html(figure, "chart-pareto")


def _hover(row: Row, label: str, cost: float) -> str:
    shown = duration(cost) if label.startswith("predicted") else si(cost)
    return (
        f"{escape(row.spec)}<br>{escape(row.family)} · {escape(row.inputs)}<br>params {si(row.params or 0)}, "
        f"MACs {si(row.macs or 0)}<br>{escape(label)}: {shown}"
    )


def _table_section(rows: Sequence[Row], hardware: Sequence[str], sort: str, top: int | None) -> str:
    shown = ranked(rows, hardware, sort, top)
    numeric = columns(hardware, timing=True)
    head = "".join(th(name, numeric=False) for name in ("spec", "family", "inputs"))
    head += "".join(th(c.header, numeric=True) for c in numeric)
    body = []
    for row in shown:
        cells = "".join(td(text, None) for text in (row.spec, row.family, row.inputs))
        for column in numeric:
            value = column.value(row)
            cells += td(_cell(column, row), -1.0 if value is None else float(value))
        body.append(f"<tr class='sweep-row'>{cells}</tr>")
    table_html = (
        f"<div class='scroll'><table class='data flat' id='sweep-table'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
    heading = f"<h2>Top {len(shown)} by {escape(sort)}</h2><p class='note'>Click a column to sort.</p>"
    return f"<section id='rows'>{heading}{table_html}</section>"


def _failures_section(rows: Sequence[Row]) -> str:
    groups = group_failures(rows)
    if not groups:
        return ""
    body = "".join(
        f"<tr><td class='num' data-value='{len(g.specs)}'>{len(g.specs)}</td><td>{escape(g.reason)}</td>"
        f"<td>{escape(_examples(g.specs))}</td></tr>"
        for g in groups
    )
    head = "<th class='num'>rows</th><th>reason</th><th>for example</th>"
    table_html = (
        f"<div class='scroll'><table class='data flat' id='failures'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )
    return f"<section id='failed'><h2>Failures by reason</h2>{table_html}</section>"
