"""The memory report: terminal tables, the HTML page with its timeline, and the timeline's thinning."""

import dataclasses
import io

import pytest
import torch
from rich.console import Console
from torch import nn

from torchcost.peak_memory import memory
from torchcost.peak_memory.memory_profile import TimelinePoint
from torchcost.report.charts import timeline_points
from torchcost.report.memory import memory_report


def profile(**settings):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2)))
    return memory(model, torch.randn(3, 4), device="meta", **settings)


def text(result, depth=1, device=None, fit=None):
    console = Console(file=io.StringIO(), width=160, record=True)
    console.print(memory_report(result, depth, device, fit))
    return console.export_text()


def test_terminal_breakdown_rows_add_up():
    result = profile(optimizer="adam")
    printed = text(result)
    assert f"{result.peak_bytes:,}" in printed
    for value in result.breakdown.values():
        if value:
            assert f"{value:,}" in printed
    assert "training: adam step, steady state" in printed and "peak after" in printed
    assert "forward" in printed and "backward" in printed and "optimizer" in printed


def test_terminal_depth_and_inference_columns():
    result = profile()
    shallow, deep = text(result, 1), text(result, 2)
    assert "peak in backward" not in shallow and "activations" not in shallow.split("per module")[1]
    assert deep.count("Linear") == 3 and shallow.count("Linear") == 1


def test_html_page_has_the_timeline_and_one_row_per_module():
    pytest.importorskip("plotly")
    from torchcost.report.html import render_memory_html

    result = profile(optimizer="sgd")
    result.model = "<b>net</b>"
    page = render_memory_html(result)
    assert 'id="chart-memory"' in page and "Plotly.newPlot" in page
    assert page.count("class='module-row'") == len(result.modules)
    assert "<b>net</b>" not in page and "&lt;b&gt;net&lt;/b&gt;" in page
    assert "activations saved for backward" in page or result.breakdown["activations"] == 0


def test_long_timelines_are_thinned_and_keep_the_peak():
    points = [TimelinePoint(i, "aten.add", "forward", "", {"temporaries": (i * 7919) % 1000}) for i in range(10_000)]
    kept = timeline_points(points, most=500)
    assert len(kept) <= 500
    assert max(p.total for p in kept) == max(p.total for p in points)
    assert timeline_points(points[:10], most=500) == points[:10]


def test_repr_is_one_line_and_html_repr_is_a_table():
    result = profile()
    assert "\n" not in repr(result) and "peak" in repr(result)
    assert dataclasses.replace(result, model="x")._repr_html_().count("<tr>") == len(result.breakdown)


def test_the_html_page_says_what_the_terminal_says_about_fitting(tmp_path):
    """The page of `memory --max-batch --hardware l4` once had neither the largest batch nor the verdict, and its
    timeline axis ran past the last op."""
    pytest.importorskip("plotly")
    from torchcost.hardware import hardware
    from torchcost.peak_memory.fit import BatchFit
    from torchcost.report.charts import memory_timeline_figure
    from torchcost.report.html import write_memory_html

    result = profile()
    l4 = hardware("l4")
    fit = BatchFit(4096, result.peak_bytes, l4.memory, l4.name, "cuda", False, {4096: result.peak_bytes})
    terminal = text(result, 1, l4, fit)
    path = tmp_path / "memory.html"
    write_memory_html(result, str(path), l4, fit)
    page = path.read_text(encoding="utf-8")
    for said in (f"fits in {l4.name}", "largest batch: 4096"):
        assert said in terminal and said in page
    axis = memory_timeline_figure(result).layout.xaxis.range
    assert tuple(axis) == (result.timeline[0].step, result.timeline[-1].step)


def test_the_memory_page_writer_moved_to_html_with_a_warning():
    from torchcost.report import html, memory

    with pytest.warns(DeprecationWarning, match="is now torchcost.report.html.write_memory_html"):
        assert memory.write_memory_html is html.write_memory_html
