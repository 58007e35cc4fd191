"""torchcost.display: data shows through views the reports install; data never imports its renderers."""

import ast
from pathlib import Path

import pytest

import torchcost
from torchcost import display

SOURCE = Path(torchcost.__file__).parent


class Plain:
    pass


def test_a_type_without_views_shows_its_name_and_text_falls_back_to_the_line():
    assert display.show(Plain(), "html") == "<Plain>"
    display.install(Plain, line=lambda _: "<one line>")
    assert display.show(Plain(), "text") == "<one line>" and display.show(Plain(), "html") == "<Plain>"


def test_an_unknown_view_is_refused():
    with pytest.raises(ValueError, match="unknown view 'pdf': use one of text, line, html"):
        display.install(Plain, pdf=str)


@pytest.mark.parametrize("module", ["records.py", "measure/latency.py", "predict/prediction.py", "display.py"])
def test_data_modules_never_import_the_reports(module):
    tree = ast.parse((SOURCE / module).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    assert not [name for name in imported if name.startswith(("torchcost.report", "torchcost.analysis"))]
