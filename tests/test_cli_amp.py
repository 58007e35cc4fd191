"""torchcost profile --amp fp16|bf16 and --channels-last."""

import json

import pytest

from tests.test_cli_messages import assert_one_line_error, run

CONV_PY = """
from torch import nn

INPUT_SIZE = (2, 3, 16, 16)


def build():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 4), nn.LayerNorm(4))
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "conv.py"
    path.write_text(CONV_PY)
    return f"{path}:build"


def profile_json(spec, capsys, *options):
    code, out, err = run(["profile", spec, "--json", "-", *options], capsys)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize(("amp", "dtype"), [("fp16", "float16"), ("bf16", "bfloat16")])
def test_amp_counts_16_bit_matmuls_and_fp32_norms(spec, capsys, amp, dtype):
    plain, mixed = profile_json(spec, capsys), profile_json(spec, capsys, "--amp", amp)
    assert mixed["autocast"] == dtype and "autocast" not in plain
    assert (mixed["macs"], mixed["flops"] > 0) == (plain["macs"], True)
    ops = {op["op"]: op for op in mixed["operators"]}
    before = {op["op"]: op for op in plain["operators"]}
    # the conv reads its input and weight and writes its output at 2 bytes an element instead of 4
    assert (
        ops["aten.convolution"]["memory_access_bytes"]["total"] * 2
        == before["aten.convolution"]["memory_access_bytes"]["total"]
    )
    assert "aten._to_copy" in ops and "aten._to_copy" not in before  # the casts, counted
    assert ops["aten.native_layer_norm"] == before["aten.native_layer_norm"]  # fp32 list: in fp32, as before


def test_channels_last_keeps_macs_and_flops(spec, capsys):
    plain, last = profile_json(spec, capsys), profile_json(spec, capsys, "--channels-last")
    assert last["channels_last"] is True and "channels_last" not in plain
    assert (last["macs"], last["flops"]) == (plain["macs"], plain["flops"])


def test_the_report_says_how_it_was_counted(spec, capsys):
    code, out, err = run(["profile", spec, "--amp", "bf16", "--channels-last", "--hardware", "h100"], capsys)
    assert code == 0, err
    assert "autocast bfloat16, channels_last" in out
    assert "bf16" in out  # the prediction's dtype


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--amp", "fp16", "--latency"], "--amp is counted, not measured"),
        (["--channels-last", "--latency"], "--channels-last is counted, not measured"),
    ],
)
def test_bad_values_are_one_line_errors(spec, capsys, options, expected):
    code, _, err = run(["profile", spec, *options], capsys)
    assert_one_line_error(code, err, expected)


def test_an_unknown_amp_dtype_names_the_choices(spec, capsys):
    code, _, err = run(["profile", spec, "--amp", "fp32"], capsys)
    assert_one_line_error(code, err, "argument --amp: invalid choice: 'fp32' (choose from")
    assert "fp16" in err and "bf16" in err
