"""CSV and Markdown exports, compared with golden files (regenerate with ``TORCHCOST_REGENERATE_GOLDEN=1``)."""

import csv
import io
import json

import pytest

import torchcost
from torchcost.report.csvfile import render_csv
from torchcost.report.exports import ReportOptions, write_compare, write_exports
from torchcost.report.markdown import render_compare_markdown, render_markdown

from .measured import with_measurements
from .test_terminal import check_golden, small_net, small_profile


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_markdown_matches_golden_file():
    check_golden("small_net.md", render_markdown(small_profile(), depth=2))


def test_csv_per_module_matches_golden_file_and_holds_exact_integers():
    profile = small_profile()
    text = render_csv(profile, by="module")
    check_golden("small_net_modules.csv", text)
    rows = rows_of(text)
    assert [r["module"] for r in rows] == [m.name for m in profile.modules]  # every module, tree order
    for row, module in zip(rows, profile.modules, strict=True):
        assert int(row["flops"]) == module.flops and int(row["macs"]) == module.macs
        assert int(row["memory_access_bytes"]) == module.memory_access.total
    assert int(rows[0]["flops"]) == profile.flops  # the root row is the whole model


def test_csv_per_op_matches_golden_file_and_sums_to_the_counted_totals():
    profile = small_profile()
    text = render_csv(profile, by="op")
    check_golden("small_net_ops.csv", text)
    rows = rows_of(text)
    assert sum(int(r["flops"]) for r in rows) == profile.flops
    assert sum(int(r["calls"]) for r in rows) == sum(o.count for o in profile.operators)


def test_csv_sorted_by_memory():
    rows = rows_of(render_csv(small_profile(), by="op", sort="memory"))
    memory = [int(r["memory_access_bytes"]) for r in rows]
    assert memory == sorted(memory, reverse=True)


def test_markdown_one_table_sorted():
    text = render_markdown(small_profile(), by="op", sort="memory", top=3)
    assert "### Per module" not in text and "### Per operator (by memory)" in text
    table_rows = [line for line in text.splitlines() if line.startswith("| aten.")]
    assert len(table_rows) == 3


def test_measured_times_appear_in_csv_and_markdown():
    measured = with_measurements(small_profile())
    rows = rows_of(render_csv(measured.profile, by="op"))
    assert [float(r["measured_s"]) for r in rows] == [o.measured_s for o in measured.profile.operators]
    text = render_markdown(measured)
    assert "| latency | 12.50 ms |" in text and "% time" in text and "- elementwise ops are 1% of FLOPs" in text


def test_compare_markdown_matches_golden_file():
    first = small_profile()
    second = torchcost.profile(small_net(), input_size=(2, 3, 32, 32), device="meta")
    first.model, second.model = "small_net 16x16", "small_net 2x32x32"
    check_golden("compare.md", render_compare_markdown([first, second]))


def test_write_exports_writes_each_file(tmp_path):
    profile = small_profile()
    paths = {name: tmp_path / f"report.{name}" for name in ("json", "csv", "md")}
    write_exports(profile, ReportOptions(by="op"), str(paths["json"]), str(paths["csv"]), str(paths["md"]))
    assert json.loads(paths["json"].read_text())["flops"] == profile.flops
    assert rows_of(paths["csv"].read_text())[0]["op"] == profile.operators[0].op
    assert paths["md"].read_text().startswith("## torchcost: Sequential")


def test_bad_sort_writes_nothing(tmp_path):
    out = tmp_path / "report.md"
    with pytest.raises(ValueError, match="needs measured times"):
        write_exports(small_profile(), ReportOptions(sort="time"), markdown=str(out))
    assert not out.exists()


def test_write_compare_json_to_stdout(capsys):
    write_compare([small_profile(), small_profile()], json_path="-")
    assert len(json.loads(capsys.readouterr().out)) == 2
