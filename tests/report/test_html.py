"""The HTML report's content: self-contained, one tree row per module, sections only for data the profile holds."""

import re
import sys

import pytest
import torch

import torchcost
from torchcost.report.charts import module_shares
from torchcost.report.html import render_compare_html, render_html
from torchcost.sources import MissingPackageError

from .measured import with_measurements
from .test_terminal import small_profile

pytest.importorskip("plotly")


def test_self_contained_with_one_tree_row_per_module():
    profile = small_profile()
    page = render_html(profile)
    assert page.count("class='module-row'") == len(profile.modules)
    assert page.count("class='op-row'") == len(profile.operators)
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=|<link\b|@import", page)  # nothing loaded from elsewhere
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js itself is inlined


def test_sections_only_for_data_the_profile_holds():
    page = render_html(small_profile())
    for absent in ("id='roofline'", "id='findings'", ">latency<", "measured time"):
        assert absent not in page
    measured = render_html(with_measurements(small_profile()))
    for present in ("id='roofline'", "id='findings'", ">latency<", "% measured time", "test chip"):
        assert present in measured


def test_names_are_escaped():
    profile = small_profile()
    profile.model = "<script>alert(1)</script>"
    page = render_html(profile)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_compare_page():
    first, second = small_profile(), small_profile()
    first.model, second.model = "first model", "second model"
    page = render_compare_html([first, second])
    assert "first model" in page and "second model" in page and 'id="chart-compare"' in page


def test_missing_plotly_is_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(MissingPackageError, match=r"pip install 'torchcost\[html\]'"):
        render_html(small_profile())


def test_chart_axes_use_si_prefixes_and_legends_clear_the_toolbar():
    from torchcost.report import charts

    first, second = small_profile(), small_profile()
    compare = charts.compare_figure([first, second])
    axes = [compare.layout[name] for name in ("yaxis", "yaxis2", "yaxis3", "yaxis4")]
    assert [axis.exponentformat for axis in axes] == ["SI"] * 4  # 4G as the tool prints it, not plotly's 4B
    assert axes[3].ticksuffix == "B"  # memory access in bytes
    assert compare.layout.legend.y < 0  # below the charts: the toolbar and the subplot titles are above them
    shares = charts.share_figure(*charts.operator_shares(first))
    assert shares.layout.legend.y > 1 and shares.layout.margin.t >= 60  # a band above the legend for the toolbar


def test_module_shares_are_of_the_whole_model():
    """GPT-2's per-module chart once drew transformer.ln_f at 100% of the FLOPs: the shares were of the bars shown,
    and the blocks' ModuleList counted nothing."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32)
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config)
    p = torchcost.profile(model, torch.zeros(1, 16, dtype=torch.long))
    names, shares = module_shares(p)
    rows = {m.name: m for m in p.modules}
    for name, share in zip(names, shares["FLOPs"], strict=True):
        assert share == pytest.approx(100 * rows[name].flops / rows[""].flops)
    assert shares["FLOPs"][names.index("transformer.ln_f")] < 5
