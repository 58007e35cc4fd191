"""The printed report, compared with a golden file. Regenerate after an intended change with
``TORCHCOST_REGENERATE_GOLDEN=1 make test`` and review the diff."""

import os
from pathlib import Path

import torch
from torch import nn

import torchcost
from torchcost.report.terminal import render_text

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


def test_rows_sum_to_their_parent():
    profile = torchcost.profile(small_net(), input_size=(1, 3, 16, 16))
    rows = {m.name: m for m in profile.modules}
    # this model does all its work inside its leaf modules, so each parent is the sum of its children
    for parent, children in [("", ["0", "1", "2", "3", "4", "5", "6"]), ("3", ["3.0", "3.1"])]:
        assert rows[parent].flops == sum(rows[c].flops for c in children)
        assert rows[parent].memory_access.total == sum(rows[c].memory_access.total for c in children)
    assert rows[""].flops == profile.flops
