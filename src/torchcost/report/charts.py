"""Plotly figures for the HTML report. Each takes plain profile data and returns a figure; none runs a model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torchcost.analysis import Result, as_analysis
from torchcost.peak_memory.memory_profile import MemoryProfile, TimelinePoint
from torchcost.peak_memory.memory_profile import label as memory_label
from torchcost.records import ModuleStats, OpRecord, Profile
from torchcost.report import extras
from torchcost.units import si

TOP_BARS = 12  # bars per share chart; the rest are summed into "other"
COLORS = {"FLOPs": "#4c72b0", "memory access": "#dd8452", "measured time": "#55a868"}
LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    # the top margin leaves the toolbar (top right) a band of its own above the legend
    "margin": {"l": 10, "r": 10, "t": 64, "b": 40},
    "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
}


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def share_figure(names: Sequence[str], shares: Mapping[str, Sequence[float]]) -> Any:
    """Side-by-side horizontal bars: each name's % of FLOPs, of memory access (and of measured time)."""
    go = _go()
    figure = go.Figure()
    labels = list(reversed(names))  # plotly draws the first category at the bottom
    for quantity, values in shares.items():
        figure.add_trace(
            go.Bar(
                name=f"% {quantity}",
                y=labels,
                x=list(reversed(values)),
                orientation="h",
                marker_color=COLORS[quantity],
                hovertemplate="%{y}: %{x:.1f}% of " + quantity + "<extra></extra>",
            )
        )
    figure.update_layout(
        **LAYOUT, barmode="group", height=120 + 26 * len(names) * max(1, len(shares) // 2), xaxis_title="% of total"
    )
    figure.update_yaxes(automargin=True)
    return figure


def operator_shares(profile: Profile) -> tuple[list[str], dict[str, list[float]]]:
    """Each op type's share of FLOPs, memory access and (when measured) time; the biggest few, then "other"."""
    rows = {o.op: (o.flops, o.memory_access.total, o.measured_s or 0.0) for o in profile.operators}
    for record in profile.records:  # uncounted ops: FLOPs unknown, but their bytes are in the total
        if not record.counted:
            name = f"{record.op} (uncounted)"
            rows[name] = (0, rows.get(name, (0, 0, 0.0))[1] + record.cost.memory_access, 0.0)
    return _shares(rows, extras.has_op_times(profile))


def module_shares(profile: Profile) -> tuple[list[str], dict[str, list[float]]]:
    """The same shares for the modules at the shallowest depth that splits the model into a few parts."""
    depth = chart_depth(profile.modules)
    shown = [m for m in profile.modules if m.depth == depth]
    rows = {m.name: (m.flops, m.memory_access.total, m.measured_s or 0.0) for m in shown}
    root = next(m for m in profile.modules if m.name == "")  # shares of the whole model, not of the bars shown
    return _shares(rows, extras.has_module_times(profile), (root.flops, root.memory_access.total, root.measured_s))


def chart_depth(modules: Sequence[ModuleStats], wanted: int = 4) -> int:
    """The smallest depth (1 to 3) with at least ``wanted`` modules; 1 if none has that many."""
    for depth in (1, 2, 3):
        if sum(1 for m in modules if m.depth == depth) >= wanted:
            return depth
    return 1


def _shares(
    rows: Mapping[str, tuple[float, float, float]],
    timed: bool,
    whole: tuple[float, float, float | None] | None = None,
) -> tuple[list[str], dict[str, list[float]]]:
    """Each row's percent of ``whole`` (the sum of the rows when not given), the biggest few, then "other"."""
    quantities = ["FLOPs", "memory access", *(["measured time"] if timed else [])]
    totals = [
        (whole[i] if whole is not None and whole[i] else sum(values[i] for values in rows.values())) or 1.0
        for i in range(len(quantities))
    ]
    percents = {name: [100 * values[i] / totals[i] for i in range(len(quantities))] for name, values in rows.items()}
    percents = {name: shares for name, shares in percents.items() if any(shares)}  # views, allocations: no bars
    ranked = sorted(percents, key=lambda name: max(percents[name]), reverse=True)
    names, rest = ranked[:TOP_BARS], ranked[TOP_BARS:]
    shares = {q: [percents[name][i] for name in names] for i, q in enumerate(quantities)}
    if rest:
        names.append(f"other ({len(rest)})")
        for i, quantity in enumerate(quantities):
            shares[quantity].append(sum(percents[name][i] for name in rest))
    return names, shares


def roofline_figure(profile: Profile, roofs: extras.Roofs) -> Any:
    """Each counted op call as a point: intensity (FLOP/byte) against attained FLOP/s (measured, or the
    roof's attainable rate when the call has no measured time), under the compute and bandwidth roofs."""
    go = _go()
    calls = [r for r in profile.records if r.counted and r.cost.flops > 0 and r.cost.memory_access > 0]
    lowest = min((r.cost.flops / r.cost.memory_access for r in calls), default=0.1)
    highest = max((r.cost.flops / r.cost.memory_access for r in calls), default=100.0)
    x_roof = [min(lowest, roofs.ridge) / 2, roofs.ridge, max(highest, roofs.ridge) * 2]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=x_roof,
            y=[min(roofs.peak_flop_per_s, roofs.bandwidth_byte_per_s * x) for x in x_roof],
            mode="lines",
            name=f"roofs of {roofs.name}",
            line={"color": "#333", "width": 2},
            hoverinfo="skip",
        )
    )
    by_op: dict[str, list[OpRecord]] = {}
    for record in calls:
        by_op.setdefault(record.op, []).append(record)
    for op, records in by_op.items():
        figure.add_trace(_roofline_points(go, op, records, roofs))
    figure.update_layout(**LAYOUT, height=480, xaxis_title="arithmetic intensity (FLOP/byte)", yaxis_title="FLOP/s")
    figure.update_xaxes(type="log", exponentformat="SI")
    figure.update_yaxes(type="log", exponentformat="SI")  # 1G, not plotly's default 1B (a billion, not bytes)
    return figure


def _roofline_points(go: Any, op: str, records: list[OpRecord], roofs: extras.Roofs) -> Any:
    xs, ys, texts = [], [], []
    for record in records:
        intensity = record.cost.flops / record.cost.memory_access
        measured = record.measured_s
        rate = (
            record.cost.flops / measured
            if measured
            else min(roofs.peak_flop_per_s, roofs.bandwidth_byte_per_s * intensity)
        )
        shapes = ", ".join(str(list(s)) for s in record.input_shapes)
        where = record.modules[-1] if record.modules and record.modules[-1] else "(root)"
        texts.append(
            f"{op}<br>{where}<br>inputs {shapes}<br>{si(record.cost.flops)}FLOPs, "
            f"{si(record.cost.memory_access, 'B')}<br>{intensity:.2f} FLOP/byte, "
            f"{si(rate, 'FLOP/s')} ({'measured' if measured else 'attainable'})"
        )
        xs.append(intensity)
        ys.append(rate)
    return go.Scatter(x=xs, y=ys, mode="markers", name=op, text=texts, hovertemplate="%{text}<extra></extra>")


def compare_figure(results: Sequence[Result]) -> Any:
    """One small bar chart per quantity, one bar per model."""
    from plotly.subplots import make_subplots

    analyses = [as_analysis(result) for result in results]
    go = _go()
    quantities: list[tuple[str, str, Any]] = [  # (title, unit, value)
        ("params", "", lambda a: a.profile.params.total),
        ("MACs", "", lambda a: a.profile.macs),
        ("FLOPs", "", lambda a: a.profile.flops),
        ("memory access", "B", lambda a: a.profile.memory_access.total),
    ]
    if all(a.latency is not None for a in analyses):
        quantities.append(("latency", "s", lambda a: a.latency.median_s if a.latency else 0.0))
    figure = make_subplots(rows=1, cols=len(quantities), subplot_titles=[q for q, _, _ in quantities])
    palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]
    for index, analysis in enumerate(analyses):
        for column, (quantity, unit, value) in enumerate(quantities, start=1):
            figure.add_trace(
                go.Bar(
                    x=[analysis.model],
                    y=[value(analysis)],
                    name=analysis.model,
                    legendgroup=analysis.model,
                    showlegend=column == 1,
                    marker_color=palette[index % len(palette)],
                    hovertemplate=f"{analysis.model}<br>{quantity}: %{{y:.4s}}{unit}<extra></extra>",
                ),
                row=1,
                col=column,
            )
    # the legend below the charts: above them are the subplot titles
    legend = {"orientation": "h", "x": 0, "y": -0.04, "yanchor": "top"}
    figure.update_layout(**{**LAYOUT, "legend": legend}, height=400, barmode="group")
    figure.update_xaxes(showticklabels=False)
    for column, (_, unit, _) in enumerate(quantities, start=1):
        figure.update_yaxes(exponentformat="SI", ticksuffix=unit, row=1, col=column)  # 4G as printed, not 4B
    return figure


MEMORY_COLORS = {
    "parameters": "#4c72b0",
    "buffers": "#8172b3",
    "gradients": "#dd8452",
    "optimizer_state": "#937860",
    "activations": "#c44e52",
    "temporaries": "#55a868",
    "inputs_outputs": "#8c8c8c",
}
PHASE_SHADES = {"backward": "#f4ecec", "optimizer": "#ebf0f5"}  # forward stays white
TIMELINE_POINTS = 3000  # longer timelines keep, per stretch of ops, the point with the most live memory


def timeline_points(points: Sequence[TimelinePoint], most: int = TIMELINE_POINTS) -> list[TimelinePoint]:
    """At most ``most`` points: every point of a short timeline; of a long one, the highest of each stretch
    (the peak is always kept)."""
    if len(points) <= most:
        return list(points)
    stretch = -(-len(points) // most)
    return [max(points[i : i + stretch], key=lambda p: p.total) for i in range(0, len(points), stretch)]


def memory_timeline_figure(result: MemoryProfile) -> Any:
    """Live bytes after every op, stacked by category, with the phases shaded and the peak marked."""
    go = _go()
    points = timeline_points(result.timeline)
    steps = [p.step for p in points]
    hover = [
        f"op {p.step}: {p.op}<br>{p.module if p.module != '-' else 'outside the model'} ({p.phase})<br>"
        f"total {si(p.total, 'B')}"
        for p in points
    ]
    figure = go.Figure()
    for category in result.breakdown:
        values = [p.bytes.get(category, 0) for p in points]
        if not any(values):
            continue
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                name=memory_label(category),
                stackgroup="live",
                mode="none",
                fillcolor=MEMORY_COLORS.get(category, "#da8bc3"),
                text=hover,
                hovertemplate="%{text}<br>" + memory_label(category) + ": %{y:.4s}B<extra></extra>",
            )
        )
    for phase, first, last in _phase_spans(result.timeline):
        shade = PHASE_SHADES.get(phase)
        if shade:
            figure.add_vrect(x0=first, x1=last, fillcolor=shade, opacity=0.6, line_width=0, layer="below")
        figure.add_annotation(x=(first + last) / 2, y=1, yref="paper", yanchor="bottom", text=phase, showarrow=False)
    peak = result.peak_at
    figure.add_vline(x=peak.step, line_dash="dot", line_color="#333")
    figure.add_annotation(
        x=peak.step,
        y=result.peak_bytes,
        text=f"peak {si(result.peak_bytes, 'B')} after {peak.op}",
        showarrow=True,
        ax=40,
        ay=-30,
        xanchor="left",
        bgcolor="rgba(255,255,255,0.8)",
    )
    layout = {**LAYOUT, "legend": {"orientation": "h", "y": -0.2, "yanchor": "top", "x": 0}}
    figure.update_layout(**layout, height=460, xaxis_title="op call", yaxis_title="live bytes", hovermode="closest")
    # the axis ends at the last op: the peak's label would otherwise stretch it past the run
    figure.update_xaxes(range=[result.timeline[0].step, result.timeline[-1].step])
    figure.update_yaxes(exponentformat="SI", ticksuffix="B")
    return figure


def _phase_spans(points: Sequence[TimelinePoint]) -> list[tuple[str, int, int]]:
    spans: list[tuple[str, int, int]] = []
    for point in points[1:]:
        if spans and spans[-1][0] == point.phase:
            spans[-1] = (point.phase, spans[-1][1], point.step)
        else:
            spans.append((point.phase, point.step, point.step))
    return spans
