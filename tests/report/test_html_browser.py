"""The HTML report in a real headless browser (Debian's chromium driven by Playwright; ``make test`` installs
chromium when it is missing). Offline: any request other than the file itself is aborted and recorded."""

import os

import pytest
import torch

import torchcost
from torchcost.report.html import render_html
from torchcost.sources import load_model

from .browser import chromium_available, open_report
from .measured import with_measurements
from .test_terminal import small_profile

pytest.importorskip("plotly")
pytest.importorskip("playwright")
if not chromium_available():
    if os.environ.get("TORCHCOST_REQUIRE_BROWSER"):  # set by .ci/run: CI must not skip this
        pytest.fail("chromium is missing: apt-get install chromium (make test installs it)", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


def resnet18_profile():
    loaded = load_model("torchvision:resnet18", "meta")
    return torchcost.profile(loaded.model, input_size=loaded.input_sizes)


def visible_rows(page) -> int:
    return page.locator("tr.module-row:visible").count()


def test_resnet18_report_renders_offline_without_errors(tmp_path):
    pytest.importorskip("torchvision")
    profile = resnet18_profile()
    path = tmp_path / "resnet18.html"
    path.write_text(render_html(profile), encoding="utf-8")
    with open_report(path) as opened:
        page = opened.page
        assert opened.errors == []
        assert opened.requests == [path.resolve().as_uri()]
        assert page.locator("#chart-ops .main-svg").count() > 0 and page.locator("#chart-modules .main-svg").count() > 0
        assert page.locator(".js-plotly-plot .bars path").count() > 0  # bars were drawn, not only axes
        assert page.locator("tr.module-row").count() == len(profile.modules) == 68
        assert visible_rows(page) == sum(1 for m in profile.modules if m.depth <= 2)  # opens at depth 2
        page.click("button[data-tree='collapse']")
        assert visible_rows(page) == 1
        page.click("button[data-tree='expand']")
        assert visible_rows(page) == len(profile.modules)


def test_module_tree_sorts_siblings_under_their_parent(tmp_path):
    profile = small_profile()
    path = tmp_path / "small.html"
    path.write_text(render_html(profile), encoding="utf-8")
    with open_report(path) as opened:
        page = opened.page
        page.click("#module-tree th:has-text('memory access')")
        names = page.eval_on_selector_all("tr.module-row", "rows => rows.map(r => r.dataset.name)")
        by_memory = sorted((m for m in profile.modules if m.depth == 1), key=lambda m: -m.memory_access.total)
        top_level = [n for n in names if n and "." not in n]
        assert top_level == [m.name for m in by_memory]
        assert names.index("3.0") == names.index("3") + 1  # children stay right under their parent
        assert opened.errors == []


def test_measured_data_draws_time_bars_and_the_roofline(tmp_path):
    measured = with_measurements(small_profile())
    profile = measured.profile
    path = tmp_path / "measured.html"
    path.write_text(render_html(measured), encoding="utf-8")
    with open_report(path) as opened:
        page = opened.page
        assert opened.errors == []
        assert page.locator("#chart-roofline .main-svg").count() > 0
        assert page.locator("#chart-roofline .scatterlayer .point").count() == sum(
            1 for r in profile.records if r.counted and r.cost.flops > 0 and r.cost.memory_access > 0
        )
        legend = page.locator("#chart-ops .legendtext").all_text_contents()
        assert legend == ["% FLOPs", "% memory access", "% measured time"]


def test_memory_report_draws_its_timeline_offline(tmp_path):
    pytest.importorskip("torchvision")
    from torchcost.peak_memory import memory
    from torchcost.report.html import render_memory_html

    result = memory(load_model("torchvision:resnet18", "meta").model, torch.randn(2, 3, 64, 64), optimizer="adamw")
    path = tmp_path / "memory.html"
    path.write_text(render_memory_html(result), encoding="utf-8")
    with open_report(path) as opened:
        page = opened.page
        assert opened.errors == []
        assert opened.requests == [path.resolve().as_uri()]
        assert page.locator("#chart-memory .main-svg").count() > 0
        drawn = sum(1 for category in result.breakdown if any(p.bytes[category] for p in result.timeline))
        assert page.locator("#chart-memory .scatterlayer .trace").count() == drawn  # one filled area per category
        assert page.locator("tr.module-row").count() == len(result.modules)
