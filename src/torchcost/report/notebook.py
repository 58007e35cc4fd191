"""What a notebook shows for a result: ``repr`` is one line; ``_repr_html_`` is a compact card view (no plotly,
no script), built from the same summary items as the other reports. ``card_view`` is the shared piece: any
result that can list its headline numbers as ``Item``s gets the same look."""

from __future__ import annotations

import html
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING

from torchcost.analysis import Result, as_analysis
from torchcost.report.columns import module_columns
from torchcost.report.measurements import conditions
from torchcost.report.rows import modules_shown
from torchcost.report.summary import Item, brief_line, inputs_text, run_settings, summary_items
from torchcost.units import duration, percent, si

if TYPE_CHECKING:
    from torchcost.measure.latency import Latency
    from torchcost.predict import Prediction

TREE_DEPTH = 1  # the notebook view shows the top of the module tree: this deep ...
TREE_ROWS = 10  # ... and at most this many costliest modules ("..." where rows are left out)


def card_view(title: str, meta: str, items: Sequence[Item], sections: Sequence[str] = ()) -> str:
    """A title, a muted line under it, one card per item, then ``sections`` (HTML, already escaped)."""
    css = resources.files("torchcost.report").joinpath("assets/notebook.css").read_text(encoding="utf-8")
    cards = "".join(
        f"<div class='card'><div class='label'>{_e(item.label)}</div><div class='value'>{_e(item.value)}</div>"
        f"<div class='detail'>{_e(item.detail)}</div></div>"
        for item in items
    )
    return (
        f"<div class='torchcost-nb'><style>{css}</style><div class='title'>{_e(title)}</div>"
        f"<div class='meta'>{_e(meta)}</div><div class='cards'>{cards}</div>{''.join(sections)}</div>"
    )


def table_html(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    """A plain table; numeric columns are right-aligned, the others in a monospace font (module and op names)."""
    head = "".join(_cell("th", h, n) for h, n in zip(headers, numeric, strict=True))
    body = "".join(
        "<tr>" + "".join(_cell("td", c, n) for c, n in zip(row, numeric, strict=True)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(tag: str, text: str, numeric: bool) -> str:
    return f"<{tag} class='{'num' if numeric else 'name'}'>{_e(text)}</{tag}>"


def profile_line(result: Result) -> str:
    return f"<{type(result).__name__} {brief_line(result)}>"


def profile_html(result: Result) -> str:
    """Summary cards, the uncounted ops, and the top of the module tree."""
    profile = as_analysis(result).profile
    items = [item for item in summary_items(result) if item.label != "inputs"]
    sections = []
    if profile.uncounted:
        ops = ", ".join(f"{u.op} x{u.count}" for u in profile.uncounted)
        sections.append(f"<p class='warning'>uncounted ops (FLOPs unknown, not zero): {_e(ops)}</p>")
    columns = [c for c in module_columns(profile, flat=False) if c.header != "output shape"]
    rows = modules_shown(profile, TREE_DEPTH, top=TREE_ROWS)
    cells = [["..."] + [""] * (len(columns) - 1) if m is None else [c.cell(m) for c in columns] for m in rows]
    costliest = f", the {TREE_ROWS} costliest" if None in rows else ""
    sections.append(f"<div class='section'>modules to depth {TREE_DEPTH}{costliest}; print(profile) shows more</div>")
    sections.append(table_html([c.header for c in columns], cells, [c.numeric for c in columns]))
    parts = [f"inputs {inputs_text(profile)}", f"device {profile.device}", *["forward + backward"] * profile.backward]
    meta = " · ".join([*parts, *run_settings(profile)])
    return card_view(f"torchcost: {profile.model}", meta, items, sections)


def latency_line(latency: Latency) -> str:
    spread = f"CV {latency.cv:.1%}, {latency.runs} runs"
    return f"<Latency {duration(latency.median_s)} median, {spread}; {conditions(latency)}>"


def latency_html(latency: Latency) -> str:
    """The median and its spread as cards; each batch size in a table when several were measured."""
    items = [
        Item("median", duration(latency.median_s), f"{latency.runs} runs"),
        Item("p90", duration(latency.p90_s), f"p99 {duration(latency.p99_s)}"),
        Item("spread", f"{latency.cv:.1%}", f"coefficient of variation; IQR {duration(latency.iqr_s)}"),
    ]
    sections = [f"<p class='warning'>warning: {_e(w)}</p>" for w in latency.warnings()]
    if len(latency.by_batch) > 1:
        rows = [
            [
                "as given" if b.batch is None else str(b.batch),
                duration(b.median_s),
                duration(b.p90_s),
                f"{b.cv:.1%}",
                f"{b.samples_per_s:,.1f}" if b.samples_per_s else "-",
            ]
            for b in latency.by_batch
        ]
        headers = ["batch", "median", "p90", "CV", "samples/s"]
        sections.append(table_html(headers, rows, [True] * len(headers)))
    return card_view("latency", conditions(latency), items, sections)


def prediction_line(prediction: Prediction) -> str:
    where = f"{prediction.hardware}, {prediction.execution}"
    return f"<Prediction {duration(prediction.latency_s)} on {where}: {_bounds(prediction)}>"


def prediction_html(prediction: Prediction) -> str:
    """The predicted latency, its split by bound, and the time per op class."""
    total = prediction.latency_s
    items = [Item("predicted latency", duration(total), f"{len(prediction.ops)} op calls, {prediction.dtype}")]
    items += [Item(f"{bound}-bound", percent(t, total), duration(t)) for bound, t in _by(prediction, "bound")]
    rows = [[name, duration(t), percent(t, total)] for name, t in _by(prediction, "op_class")]
    sections = [table_html(["op class", "time", "% time"], rows, [False, True, True])]
    meta = (
        f"{prediction.execution} on {prediction.hardware} ({prediction.rates.source}); "
        f"{si(prediction.rates.bandwidth, 'B/s')}"
    )
    return card_view("predicted latency", meta, items, sections)


def _by(prediction: Prediction, key: str) -> list[tuple[str, float]]:
    return sorted(prediction.time_by(key).items(), key=lambda item: item[1], reverse=True)


def _bounds(prediction: Prediction) -> str:
    return ", ".join(f"{bound}-bound {percent(t, prediction.latency_s)}" for bound, t in _by(prediction, "bound"))


def _e(text: str) -> str:
    return html.escape(text, quote=True)
