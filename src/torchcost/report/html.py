"""A self-contained HTML report: one file with plotly.js inlined, so it opens offline (no CDN, no server).

Summary cards, the share of FLOPs vs memory access (vs measured time) per op type and per module, the
collapsible module tree, the operator table, and, when the profile holds them, the roofline and the findings.
Rendering never runs a model.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from torchcost.analysis import Analysis, Result, as_analysis
from torchcost.hardware import Hardware
from torchcost.peak_memory.fit import BatchFit
from torchcost.peak_memory.memory_profile import MemoryProfile
from torchcost.peak_memory.memory_profile import label as memory_label
from torchcost.records import ModuleStats, OperatorStats, Profile
from torchcost.report import charts, extras
from torchcost.report.columns import output_shapes
from torchcost.report.files import write_text
from torchcost.report.memory import device_line, fit_verdict, largest_batch_text, run_line
from torchcost.report.summary import compare_rows, inputs_text, run_settings, summary_items
from torchcost.sources.base import MissingPackageError
from torchcost.units import UNIT_NOTE, duration, percent, si

OPEN_DEPTH = 2  # the tree opens with modules down to this depth visible, as the terminal report shows them
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def render_html(result: Result) -> str:
    """The whole report for one profile, as one HTML document."""
    require_plotly()
    analysis = as_analysis(result)
    profile = analysis.profile
    roofs = extras.roofs(analysis.prediction)
    sections = [
        _header(f"torchcost: {profile.model}", _meta_line(profile)),
        _cards(analysis),
        _uncounted(profile),
        _findings(analysis),
        _shares(profile),
        _roofline(profile, roofs) if roofs else "",
        _module_tree(profile),
        _operator_table(profile),
    ]
    return page(f"torchcost: {profile.model}", sections)


def render_compare_html(results: Sequence[Result]) -> str:
    """Several profiles side by side: a table of the headline numbers and one bar chart per quantity."""
    require_plotly()
    profiles = [as_analysis(result) for result in results]
    headers = "".join(f"<th class='num'>{escape(p.model)}</th>" for p in profiles)
    body = "".join(
        f"<tr><td>{escape(label)}</td>{''.join(f'<td class=num>{escape(v)}</td>' for v in values)}</tr>"
        for label, values in compare_rows(profiles)
    )
    table = f"<table class='data'><thead><tr><th>quantity</th>{headers}</tr></thead><tbody>{body}</tbody></table>"
    sections = [
        _header("torchcost compare", " · ".join(escape(p.model) for p in profiles)),
        f"<section><h2>Side by side</h2>{table}</section>",
        f"<section><h2>Compared</h2>{figure_html(charts.compare_figure(profiles), 'chart-compare')}</section>",
    ]
    return page("torchcost compare", sections)


def render_memory_html(result: MemoryProfile, verdict: str | None = None, fit: BatchFit | None = None) -> str:
    """Peak memory: the breakdown as cards (with whether it fits the device, and the largest batch that does,
    as the terminal says them), the timeline stacked by category, each module's activations."""
    require_plotly()
    peak_detail = f"after {result.peak_at.op} ({result.peak_at.phase})" + (f"; {verdict}" if verdict else "")
    cards = [("peak", si(result.peak_bytes, "B"), peak_detail)]
    if result.reserved_bytes is not None:
        cards.append(("reserved", si(result.reserved_bytes, "B"), device_line(result)))
    if fit is not None:
        cards.append(("largest batch", str(fit.batch or "none"), largest_batch_text(fit)))
    cards += [
        (memory_label(c), si(v, "B"), percent(v, result.peak_bytes) + " of the peak")
        for c, v in result.breakdown.items()
        if v
    ]
    card_html = "".join(
        f"<div class='card'><div class='label'>{escape(name)}</div><div class='value'>{escape(value)}</div>"
        f"<div class='detail'>{escape(detail)}</div></div>"
        for name, value, detail in cards
    )
    note = "Live bytes after every op call, stacked by category; hover for the op and its module."
    timeline = figure_html(charts.memory_timeline_figure(result), "chart-memory")
    notes = "".join(f"<li>{escape(line)}</li>" for line in result.notes)
    sections = [
        _header(f"torchcost memory: {result.model}", escape(run_line(result))),
        f"<section class='cards' id='summary'>{card_html}</section>",
        f"<section id='timeline'><h2>Memory over the run</h2><p class='note'>{note}</p>{timeline}</section>",
        _memory_modules(result),
        f"<section id='notes'><h2>Notes</h2><ul class='findings'>{notes}</ul></section>",
    ]
    return page(f"torchcost memory: {result.model}", sections)


def write_memory_html(
    result: MemoryProfile, path: str, device: Hardware | None = None, fit: BatchFit | None = None
) -> None:
    """The memory page of ``result`` (whether it fits ``device``, the largest batch ``fit`` found) to ``path``."""
    write_text(path, render_memory_html(result, fit_verdict(result, device), fit))


def _memory_modules(result: MemoryProfile) -> str:
    names = ["type", "activations", "peak in forward", "peak in backward"]
    head = "<th>module</th>" + "".join(th(name, numeric=name != "type") for name in names)
    rows = []
    for module in result.modules:
        parent = "" if module.depth == 1 else module.name.rsplit(".", 1)[0]
        parent_attr = f" data-parent='{escape(parent)}'" if module.name else ""
        label = module.name.rsplit(".", 1)[-1] if module.name else "(root)"
        cells: list[Cell] = [(module.type, None), (si(module.activation_bytes, "B"), float(module.activation_bytes))]
        cells += [
            ("-", -1.0) if v is None else (si(v, "B"), float(v))
            for v in (module.forward_peak_bytes, module.backward_peak_bytes)
        ]
        rows.append(
            f"<tr class='module-row' data-name='{escape(module.name)}' data-depth='{module.depth}'{parent_attr}>"
            f"<td class='name' title='{escape(module.name or '(root)')}'>"
            f"<span style='padding-left:{1.2 * module.depth:.1f}em'></span>"
            f"<button class='toggle' type='button' aria-label='expand or collapse'></button>{escape(label)}</td>"
            f"{''.join(td(*cell) for cell in cells)}</tr>"
        )
    table = (
        f"<div class='scroll'><table class='data tree' id='module-tree' data-open-depth='{OPEN_DEPTH}'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    note = (
        "Activations: bytes a module made (children included) that are held for backward. Peaks: the highest "
        "live memory of the whole run while the module ran."
    )
    return f"<section id='modules'><h2>Modules ({len(result.modules)})</h2><p class='note'>{note}</p>{table}</section>"


def require_plotly() -> None:
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise MissingPackageError(
            "the HTML report needs plotly, which is not installed: pip install 'torchcost[html]'"
        ) from None


def page(title: str, sections: list[str]) -> str:
    from plotly.offline import get_plotlyjs

    plotly_js = get_plotlyjs().replace("</script", "<\\/script")
    css = resources.files("torchcost.report").joinpath("assets/report.css").read_text(encoding="utf-8")
    script = resources.files("torchcost.report").joinpath("assets/report.js").read_text(encoding="utf-8")
    from torchcost.version import __version__

    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{escape(title)}</title>\n<style>\n{css}</style>\n<script>{plotly_js}</script>\n</head>\n<body>\n"
        + "\n".join(s for s in sections if s)
        + f"\n<footer><p>{escape(UNIT_NOTE)}. Made by torchcost {escape(__version__)}.</p></footer>\n"
        f"<script>\n{script}</script>\n</body>\n</html>\n"
    )


def _header(title: str, meta: str) -> str:
    return f"<header><h1>{escape(title)}</h1><p class='meta'>{meta}</p></header>"


def _meta_line(profile: Profile) -> str:
    parts = [f"inputs {inputs_text(profile)}", f"device {profile.device}"]
    parts += ["forward + backward"] if profile.backward else ["forward, eval mode"]
    parts += run_settings(profile)
    return escape(" · ".join(parts))


def _cards(analysis: Analysis) -> str:
    profile = analysis.profile
    cards = [
        f"<div class='card'><div class='label'>{escape(item.label)}</div><div class='value'>{escape(item.value)}</div>"
        f"<div class='detail'>{escape(item.detail)}</div></div>"
        for item in summary_items(analysis)
        if item.label != "inputs"
    ]
    if profile.uncounted:
        calls = sum(u.count for u in profile.uncounted)
        cards.append(
            f"<div class='card warning'><div class='label'>uncounted ops</div><div class='value'>{calls}</div>"
            f"<div class='detail'>calls of {len(profile.uncounted)} ops with unknown FLOPs</div></div>"
        )
    return f"<section class='cards' id='summary'>{''.join(cards)}</section>"


def _uncounted(profile: Profile) -> str:
    if not profile.uncounted:
        return ""
    ops = ", ".join(f"<code>{escape(u.op)}</code> x{u.count}" for u in profile.uncounted)
    return (
        f"<p class='warning-text'>Uncounted ops (FLOPs unknown, not zero; their memory access is included): {ops}</p>"
    )


def _findings(analysis: Analysis) -> str:
    found = [finding.message for finding in analysis.findings]
    if not found:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in found)
    return f"<section id='findings'><h2>Findings</h2><ul class='findings'>{items}</ul></section>"


def _shares(profile: Profile) -> str:
    timed = " vs measured time" if extras.has_op_times(profile) else ""
    op_names, op_shares = charts.operator_shares(profile)
    figures = [
        figure_html(
            charts.share_figure(op_names, op_shares), "chart-ops", f"per op type: FLOPs vs memory access{timed}"
        )
    ]
    module_names, module_shares = charts.module_shares(profile)
    if len(module_names) > 1:
        depth = charts.chart_depth(profile.modules)
        title = f"per module at depth {depth}: FLOPs vs memory access{timed}"
        figures.append(figure_html(charts.share_figure(module_names, module_shares), "chart-modules", title))
    note = "FLOPs are not latency: ops with a small share of FLOPs can move a large share of the bytes" + (
        " and take a large share of the time." if timed else "."
    )
    charts_html = f"<div class='charts'>{''.join(figures)}</div>"
    return f"<section id='shares'><h2>Where the work goes</h2><p class='note'>{note}</p>{charts_html}</section>"


def _roofline(profile: Profile, roofs: extras.Roofs) -> str:
    note = (
        f"Each point is one op call. Roofs of {escape(roofs.name)}: "
        f"{escape(si(roofs.peak_flop_per_s, 'FLOP/s'))} compute, {escape(si(roofs.bandwidth_byte_per_s, 'B/s'))} "
        f"memory bandwidth; ridge point {roofs.ridge:.1f} FLOP/byte."
    )
    figure = figure_html(charts.roofline_figure(profile, roofs), "chart-roofline")
    return f"<section id='roofline'><h2>Roofline</h2><p class='note'>{note}</p>{figure}</section>"


def figure_html(figure: Any, div_id: str, title: str = "") -> str:
    heading = f"<h3>{escape(title)}</h3>" if title else ""
    body = figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG)
    return f"<div class='chart'>{heading}{body}</div>"


Cell = tuple[str, float | None]  # the text shown, and the exact value it sorts by (None: sorts as text)


def _module_cells(profile: Profile) -> list[tuple[str, Callable[[ModuleStats], Cell]]]:
    cells: list[tuple[str, Callable[[ModuleStats], Cell]]] = [
        ("type", lambda m: (m.type, None)),
        ("output shape", lambda m: (output_shapes(m), None)),
        ("params", lambda m: (si(m.params), m.params)),
        ("MACs", lambda m: (si(m.macs), m.macs)),
        ("FLOPs", lambda m: (si(m.flops), m.flops)),
        ("memory access", lambda m: (si(m.memory_access.total, "B"), m.memory_access.total)),
        ("% FLOPs", lambda m: (percent(m.flops, profile.flops), m.flops)),
        ("% memory", lambda m: (percent(m.memory_access.total, profile.memory_access.total), m.memory_access.total)),
    ]
    if extras.has_module_times(profile):
        cells.append(("time", lambda m: _time_cell(m.measured_s)))
    return cells


def _module_tree(profile: Profile) -> str:
    cells = _module_cells(profile)
    head = "<th>module</th>" + "".join(th(name, numeric=name not in ("type", "output shape")) for name, _ in cells)
    rows = []
    for module in profile.modules:
        parent = "" if module.depth == 1 else module.name.rsplit(".", 1)[0]
        parent_attr = f" data-parent='{escape(parent)}'" if module.name else ""
        label = module.name.rsplit(".", 1)[-1] if module.name else "(root)"
        name_cell = (
            f"<td class='name' title='{escape(module.name or '(root)')}'>"
            f"<span style='padding-left:{1.2 * module.depth:.1f}em'></span>"
            f"<button class='toggle' type='button' aria-label='expand or collapse'></button>{escape(label)}</td>"
        )
        tds = "".join(td(*cell(module)) for _, cell in cells)
        rows.append(
            f"<tr class='module-row' data-name='{escape(module.name)}' data-depth='{module.depth}'{parent_attr}>"
            f"{name_cell}{tds}</tr>"
        )
    toolbar = (
        "<div class='toolbar'><button type='button' data-tree='expand'>expand all</button>"
        "<button type='button' data-tree='collapse'>collapse all</button></div>"
    )
    table = (
        f"<div class='scroll'><table class='data tree' id='module-tree' data-open-depth='{OPEN_DEPTH}'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    note = "Each module's numbers include its children's. Click a column to sort siblings; ▸ opens a module."
    heading = f"<h2>Modules ({len(profile.modules)})</h2><p class='note'>{note}</p>"
    return f"<section id='modules'>{heading}{toolbar}{table}</section>"


def _operator_table(profile: Profile) -> str:
    timed = extras.has_op_times(profile)
    total_time = sum(o.measured_s or 0.0 for o in profile.operators)

    def cells(op: OperatorStats) -> list[Cell]:
        row: list[Cell] = [
            (op.op, None),
            (str(op.count), op.count),
            (si(op.macs), op.macs),
            (si(op.flops), op.flops),
            (si(op.memory_access.total, "B"), op.memory_access.total),
            (percent(op.flops, profile.flops), op.flops),
            (percent(op.memory_access.total, profile.memory_access.total), op.memory_access.total),
        ]
        if timed:
            measured = op.measured_s
            row += [_time_cell(measured), (percent(measured or 0.0, total_time), measured or 0.0)]
        return row

    names = [
        "op",
        "calls",
        "MACs",
        "FLOPs",
        "memory access",
        "% FLOPs",
        "% memory",
        *(["time", "% time"] if timed else []),
    ]
    head = "".join(th(name, numeric=name != "op") for name in names)
    body = "".join(f"<tr class='op-row'>{''.join(td(*cell) for cell in cells(op))}</tr>" for op in profile.operators)
    table = (
        f"<div class='scroll'><table class='data flat' id='operators'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )
    return f"<section id='operator-table'><h2>Operators ({len(profile.operators)})</h2>{table}</section>"


def _time_cell(measured: float | None) -> Cell:
    return ("-", -1.0) if measured is None else (duration(measured), measured)


def th(name: str, numeric: bool) -> str:
    return f"<th class='num'>{escape(name)}</th>" if numeric else f"<th>{escape(name)}</th>"


def td(text: str, value: float | None) -> str:
    if value is None:
        return f"<td>{escape(text)}</td>"
    return f"<td class='num' data-value='{value!r}'>{escape(text)}</td>"


def escape(text: str) -> str:
    return html.escape(text, quote=True)
