"""What a notebook shows: a one-line repr and a compact HTML view (cards and the top of the module tree)."""

import re

import torch
from torch import nn

import torchcost
from torchcost.measure.latency import BatchLatency
from torchcost.report.notebook import TREE_ROWS
from torchcost.report.summary import brief_line, summary_items

from .measured import with_measurements
from .test_terminal import small_profile


def wide_profile():
    """A root with 14 children: more than the notebook view shows."""
    model = nn.Sequential(*[nn.Linear(8 * (i + 1), 8 * (i + 2)) for i in range(14)])
    return torchcost.profile(model, input_size=(1, 8), device="meta")


def test_profile_repr_is_the_brief_line():
    profile = small_profile()
    assert repr(profile) == f"<Profile {brief_line(profile)}>"
    assert "\n" not in repr(profile) and len(repr(profile)) < 200


def test_profile_html_has_the_cards_and_the_top_of_the_tree_without_scripts():
    profile = wide_profile()
    page = profile._repr_html_()
    for item in summary_items(profile):
        if item.label != "inputs":
            assert f"<div class='value'>{item.value}</div>" in page
    rows = re.findall(r"<tr><td class='name'>([^<]*)</td>", page)
    assert rows[0] == "(root)" and len(rows) == 1 + TREE_ROWS + 1  # the root, the costliest, one '...' row
    costliest = sorted((m for m in profile.modules if m.name), key=lambda m: m.flops, reverse=True)[:TREE_ROWS]
    assert {r.strip() for r in rows if r.strip() not in ("(root)", "...")} == {m.name for m in costliest}
    assert "<script" not in page and "plotly" not in page.lower() and len(page) < 12_000


def test_latency_and_prediction_views():
    measured = with_measurements(small_profile())
    latency, prediction = measured.latency, measured.prediction
    assert repr(latency).startswith("<Latency 12.50 ms median, CV 2.1%, 40 runs; test cpu (cpu), 2 threads")
    assert "<div class='value'>12.50 ms</div>" in latency._repr_html_()
    latency.by_batch.append(BatchLatency(8, 0.05, 0.05, 0.001, 0.052, 0.053, 0.01, 20, 160.0))
    assert "<td class='num'>160.0</td>" in latency._repr_html_()  # a table of the batch sizes
    assert repr(prediction).startswith("<Prediction ") and "on test chip, eager:" in repr(prediction)
    bounds = prediction.time_by("bound")
    page = prediction._repr_html_()
    assert all(f"<div class='label'>{bound}-bound</div>" in page for bound in bounds)
    assert "\n" not in repr(latency) + repr(prediction)


def test_html_escapes_names():
    profile = torchcost.profile(nn.Linear(2, 2), torch.randn(1, 2))
    profile.model = "<b>mine</b>"
    assert "<b>mine" not in profile._repr_html_() and "&lt;b&gt;mine" in profile._repr_html_()
