"""The printed report, compared with a golden file. Regenerate after an intended change with
``TORCHCOST_REGENERATE_GOLDEN=1 make test`` and review the diff."""

import io
import os
import re
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

import torchcost
from torchcost.records import TensorSpec
from torchcost.report.terminal import render, render_brief, render_text
from torchcost.units import si

from .measured import with_measurements

GOLDEN = Path(__file__).parent.parent / "golden"


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TORCHCOST_REGENERATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs; regenerate with TORCHCOST_REGENERATE_GOLDEN=1 if intended"


def test_report_matches_golden_file():
    profile = torchcost.profile(small_net(), input_size=(1, 3, 16, 16), device="meta")
    check_golden("small_net.txt", render_text(profile, depth=2))


def test_report_at_80_columns_matches_golden_file():
    profile = torchcost.profile(small_net(), input_size=(1, 3, 16, 16), device="meta")
    text = render_text(profile, depth=2, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    check_golden("small_net_80.txt", text)


NUMBER = re.compile(r"^(-|\d[\d,]*(\.\d+)?( [kMGT]?(B|FLOP/s)?|%| [mµn]?s)?)$")


def test_at_80_columns_numbers_stay_whole_and_the_measured_time_is_kept():
    profile = with_measurements(small_profile())
    text = render_with(profile, width=80, depth=2)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for line in lines:
        if line.startswith("│") and line.count("│") > 4:  # a row of the module or operator table
            cells = [cell.strip() for cell in line.strip("│").split("│")[1:]]
            assert all(NUMBER.match(cell) or cell == "" for cell in cells), line
    assert len(re.findall(r"┃ +time ┃", text)) == 2  # module and operator tables keep it (dropped last)


def test_rows_sum_to_their_parent():
    profile = torchcost.profile(small_net(), input_size=(1, 3, 16, 16))
    rows = {m.name: m for m in profile.modules}
    # this model does all its work inside its leaf modules, so each parent is the sum of its children
    for parent, children in [("", ["0", "1", "2", "3", "4", "5", "6"]), ("3", ["3.0", "3.1"])]:
        assert rows[parent].flops == sum(rows[c].flops for c in children)
        assert rows[parent].memory_access.total == sum(rows[c].memory_access.total for c in children)
    assert rows[""].flops == profile.flops


def small_profile():
    return torchcost.profile(small_net(), input_size=(1, 3, 16, 16), device="meta")


def op_lines(text: str, profile) -> list[str]:
    names = {o.op for o in profile.operators}
    return [
        line.split("│")[1].strip()
        for line in text.splitlines()
        if line.count("│") > 2 and line.split("│")[1].strip() in names
    ]


def render_with(profile, width=200, **options) -> str:
    buffer = io.StringIO()
    render(profile, Console(file=buffer, width=width, color_system=None), **options)
    return buffer.getvalue()


@pytest.mark.parametrize("sort", ["flops", "macs", "memory"])
def test_operators_sorted_by_each_cost(sort):
    profile = small_profile()
    key = {"flops": lambda o: o.flops, "macs": lambda o: o.macs, "memory": lambda o: o.memory_access.total}[sort]
    shown = op_lines(render_with(profile, sort=sort), profile)
    assert [key(o) for o in (next(x for x in profile.operators if x.op == s) for s in shown)] == sorted(
        (key(o) for o in profile.operators), reverse=True
    )


def test_by_op_or_module_shows_one_table():
    profile = small_profile()
    assert "per module" not in render_with(profile, by="op") and "per operator" in render_with(profile, by="op")
    by_module = render_with(profile, by="module")
    assert "per module" in by_module and "per operator" not in by_module


def test_sorted_modules_are_a_flat_list_of_full_paths():
    profile = small_profile()
    text = render_with(profile, by="module", sort="flops", top=2, depth=5)
    rows = sorted((m for m in profile.modules if m.name), key=lambda m: m.flops, reverse=True)[:2]
    assert "per module (depth 5), by flops" in text
    assert all(f"│ {m.name} " in text for m in rows) and "(root)" not in text


def test_brief_is_one_line():
    profile = small_profile()
    buffer = io.StringIO()
    render_brief(profile, Console(file=buffer, width=80, color_system=None))
    line = buffer.getvalue()
    assert line.count("\n") == 1
    assert line.startswith("Sequential: params ") and f"MACs {si(profile.macs)}" in line and "all ops counted" in line


def test_sort_by_time_needs_measured_times():
    with pytest.raises(ValueError, match="--sort time needs measured times"):
        render_with(small_profile(), sort="time")


def test_measured_data_adds_latency_time_columns_and_findings():
    measured = with_measurements(small_profile())
    profile = measured.profile
    text = render_with(measured, sort="time")
    assert "latency" in text and "12.50 ms" in text and "CV 2.1%" in text
    assert "% time" in text and "findings:" in text and "40% of measured time" in text
    slowest = max(profile.operators, key=lambda o: o.measured_s)
    assert op_lines(text, profile)[0] == slowest.op


def test_brackets_in_names_are_printed_not_read_as_markup():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("proj[bold]", nn.Linear(4, 4))

        def forward(self, x):
            return getattr(self, "proj[bold]")(x)

    profile = torchcost.profile(Gate(), input_size=(1, 4), device="meta")
    profile.model = "hf:configs/[html]/config.json"
    text = render_with(profile, depth=1, sort="flops")
    assert "torchcost: hf:configs/[html]/config.json" in text and "│ proj[bold] " in text


def test_long_inputs_wrap_and_never_cut_a_number_or_hide_a_note():
    """At 140 columns, hf:llava's summary once printed `4,919,474,831,3…`, and hf:qwen2_vl's hid a note: the
    inputs' long value kept its column wide and squeezed the details."""
    p = small_profile()
    p.inputs = [TensorSpec((1, 3, 336, 336), "float32", f"pixel_values_{i}") for i in range(6)]
    p.macs, p.flops = 4_919_474_831_360, 9_843_501_583_364
    p.notes = ["the config's vision_config.hidden_size differs from its text model's width: taken as 8192"]
    console = Console(file=io.StringIO(), width=140, record=True)
    render(p, console)
    text = console.export_text()
    assert "…" not in text.split("per module")[0]
    assert "4,919,474,831,360" in text and "9,843,501,583,364" in text
    words = " ".join(line.split("│")[3].strip() for line in text.splitlines() if line.count("│") == 4)
    assert p.notes[0] in " ".join(words.split())
