"""The sweep's HTML page in a real headless browser (as test_html_browser.py: Debian's chromium, offline)."""

import os

import pytest

from torchcost.report.sweep import render_sweep_html

from .browser import chromium_available, open_report
from .test_sweep import ROWS, counted

pytest.importorskip("plotly")
pytest.importorskip("playwright")
if not chromium_available():
    if os.environ.get("TORCHCOST_REQUIRE_BROWSER"):  # set by .ci/run: CI must not skip this
        pytest.fail("chromium is missing: apt-get install chromium (make test installs it)", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


def test_sweep_page_draws_every_counted_row_and_sorts_its_table(tmp_path):
    rows = [*ROWS, counted("timm:g", 5, 50, family="vit", predicted=5e-4)]
    path = tmp_path / "sweep.html"
    path.write_text(render_sweep_html(rows, ["h100"], "macs", None), encoding="utf-8")
    with open_report(path) as opened:
        page = opened.page
        assert opened.errors == []
        assert opened.requests == [path.resolve().as_uri()]
        assert page.locator("#chart-pareto .scatterlayer .point").count() == 4  # the counted rows
        assert page.locator("#chart-pareto .legendtext").all_text_contents() == ["resnet", "vit", "Pareto front"]
        specs = page.eval_on_selector_all("tr.sweep-row", "rows => rows.map(r => r.cells[0].textContent)")
        assert specs == ["timm:a", "timm:c", "timm:b", "timm:g"]  # by MACs: 400, 300, 100, 50
        page.click("#sweep-table th:has-text('params')")  # largest first
        specs = page.eval_on_selector_all("tr.sweep-row", "rows => rows.map(r => r.cells[0].textContent)")
        assert specs == ["timm:c", "timm:b", "timm:a", "timm:g"]  # 30, 20, 10, 5 params
        assert page.locator("#failures tr").count() == 1 + 2  # header and two reasons
