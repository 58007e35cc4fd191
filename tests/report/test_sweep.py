"""Reports of a sweep, from hand-made rows."""

import json
import re

import pytest

from torchcost.report.sweep import (
    CHART_FAMILIES,
    pareto_front,
    ranked,
    render_sweep_html,
    render_sweep_markdown,
    sweep_table,
)
from torchcost.sweep.failures import group_failures, reason
from torchcost.sweep.rows import Row


def counted(spec: str, params: int, macs: int, family: str = "resnet", predicted: float | None = None) -> Row:
    return Row(
        spec,
        family=family,
        inputs="1x3x224x224 float32",
        params=params,
        macs=macs,
        flops=2 * macs,
        memory_access_bytes=params * 4,
        predicted_s={} if predicted is None else {"h100": predicted},
        seconds=0.25,
    )


ROWS = [
    counted("timm:a", 10, 400, predicted=4e-3),
    counted("timm:b", 20, 100, family="vit", predicted=1e-3),
    counted("timm:c", 30, 300, predicted=2e-3),
    Row(
        "timm:d",
        error="ProfilingError: module 'blocks.0' (Block) with input shapes [1, 197, 768] failed: "
        "RuntimeError: size 768 does not match 384 hint: check the input shapes",
    ),
    Row(
        "timm:e",
        error="ProfilingError: module 'stages.2' (Stage) with input shapes [1, 64, 56, 56] failed: "
        "RuntimeError: size 512 does not match 256 hint: check the input shapes",
    ),
    Row("timm:f", error="timed out after 300 s (--timeout); its worker was killed"),
]


def test_pareto_front_keeps_the_points_nothing_beats_on_both():
    # (2, 2) beats (2, 3) and (3, 4); (1, 5) has the fewest x; (4, 1) the lowest y
    assert pareto_front([(1, 5), (2, 3), (3, 4), (4, 1), (2, 2)]) == [0, 4, 3]


def test_ranked_leaves_out_failures_and_keeps_the_top():
    assert [r.spec for r in ranked(ROWS, [], "macs", 2)] == ["timm:a", "timm:c"]
    assert [r.spec for r in ranked(ROWS, ["h100"], "predicted", None)] == ["timm:a", "timm:c", "timm:b"]
    with pytest.raises(ValueError, match="--sort predicted needs --hardware"):
        ranked(ROWS, [], "predicted", 2)


def test_failures_group_by_reason_without_names_shapes_and_numbers():
    assert reason(ROWS[3].error) == "ProfilingError: RuntimeError: size N does not match N"
    groups = group_failures(ROWS)
    assert [(g.reason, g.specs) for g in groups] == [
        ("ProfilingError: RuntimeError: size N does not match N", ["timm:d", "timm:e"]),
        ("timed out after N s (--timeout); its worker was killed", ["timm:f"]),
    ]


def test_markdown_top_rows_and_failures():
    text = render_sweep_markdown(ROWS, ["h100"], "params", 2)
    assert text.splitlines()[:7] == [
        "## torchcost sweep",
        "",
        "6 rows: 3 counted, 3 failed; the top 2 by params:",
        "",
        "| spec | family | inputs | params | MACs | FLOPs | memory access | predicted (h100) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
        "| timm:c | resnet | 1x3x224x224 float32 | 30 | 300 | 600 | 120 B | 2.00 ms |",
    ]
    assert "- 2 x ProfilingError: RuntimeError: size N does not match N (timm:d, timm:e)" in text


def test_terminal_table_title_counts_the_rows():
    table = sweep_table(ROWS, [], "macs", 20)
    assert table.title == "top 3 by macs of 6 rows: 3 counted, 3 failed"
    assert table.row_count == 3


def figure_data(page: str) -> list[dict]:
    """The traces of the Pareto chart, from the page's Plotly.newPlot call."""
    call = re.search(r'Plotly\.newPlot\(\s*"chart-pareto",\s*(\[.*?\]),\s*\{', page, re.S)
    assert call is not None
    return json.loads(call.group(1))


def test_html_page_has_the_chart_the_table_and_the_failures():
    pytest.importorskip("plotly")
    page = render_sweep_html(ROWS, ["h100"], "macs", 2)
    traces = figure_data(page)
    assert [t["name"] for t in traces] == ["resnet", "vit", "Pareto front"]
    front = traces[-1]
    assert (front["x"], front["y"]) == ([10, 20], [4e-3, 1e-3])  # timm:c (30 params, 2 ms) is beaten by timm:b
    assert "timm:a<br>resnet" in traces[0]["text"][0]
    assert page.count("<tr class='sweep-row'>") == 2 and "<th class='num'>seconds</th>" in page
    assert "<h2>Failures by reason</h2>" in page and "timm:d, timm:e" in page


def test_html_chart_colours_the_largest_families_and_groups_the_rest():
    pytest.importorskip("plotly")
    rows = [counted(f"m{i}", 10 + i, 100 + i, family=f"family{i}") for i in range(CHART_FAMILIES + 3)]
    names = [t["name"] for t in figure_data(render_sweep_html(rows, [], "macs", 5))]
    assert len(names) == CHART_FAMILIES + 2 and names[-2:] == ["other families", "Pareto front"]
