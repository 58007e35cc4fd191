"""The hand-made models of bench/cases.py (functional calls, @, einsum, attention, tied weights, frozen layers,
grouped/depthwise/transposed convs, kwargs and dict inputs, LSTM): exact params and MACs, on every path."""

import sys
from pathlib import Path

import pytest

import torchcost

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from cases import handmade_cases

CASES = {case.name: case for case in handmade_cases()}


@pytest.mark.parametrize("device", [None, "meta", "auto"])
@pytest.mark.parametrize("name", list(CASES))
def test_hand_made_model_counts_exactly(name, device):
    case = CASES[name]  # each reference is worked out by hand in bench/cases.py
    model, args, kwargs = case.build()
    p = torchcost.profile(model, *args, device=device, **kwargs)
    assert (p.params.total, p.macs) == (case.params, case.macs)
    assert p.uncounted == []
    assert p.device == ("cpu" if device is None else "meta")
