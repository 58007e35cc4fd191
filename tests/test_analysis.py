"""analyze(): the CLI's whole result in one call, equal to the steps it is made of."""

import doctest
import json

import pytest
import torch
from torch import nn

import torchcost
from torchcost import analysis
from torchcost.analysis import Analysis, analysis_of, analyze
from torchcost.explain import explain
from torchcost.predict import predict


def small() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def test_a_prediction_and_findings_equal_the_separate_steps():
    x = torch.randn(4, 64)
    result = analyze(small(), x, hardware="h100")
    alone = torchcost.profile(small(), x)
    h100 = torchcost.hardware("h100")
    expected = predict(alone, h100)
    assert result.profile.flops == alone.flops and result.prediction is not None
    assert result.prediction.latency_s == expected.latency_s
    assert [f.kind for f in result.findings] == [f.kind for f in explain(alone, prediction=expected, hardware=h100)]
    assert result.latency is None and result.known_latency == (expected.latency_s, "predicted")


def test_counts_alone_when_nothing_else_is_asked():
    result = analyze(small(), torch.randn(4, 64), explain=False)
    assert result.prediction is None and result.findings == [] and result.known_latency is None


def test_the_json_keeps_the_order_the_cli_wrote():
    result = analyze(small(), torch.randn(4, 64), hardware="h100")
    keys = list(json.loads(json.dumps(result.to_dict())))
    assert keys[keys.index("uncounted") + 1 : keys.index("uncounted") + 3] == ["prediction", "findings"]
    assert {k: v for k, v in result.to_dict().items() if k not in ("prediction", "findings")} == (
        result.profile.to_dict()
    )


def test_a_measured_run_times_the_forward_each_op_and_the_step():
    result = analyze(small(), torch.randn(4, 64), latency=True, optimizer="sgd", min_time=0.05, threads=1)
    assert result.latency is not None and result.latency.median_s > 0 and result.latency.threads == 1
    assert result.profile.device == "cpu"  # counted where it was timed
    assert all(op.measured_s is not None for op in result.profile.operators if op.op in ("aten.addmm", "aten.relu"))
    assert result.training is not None and result.training.step_source == "measured" and result.training.step_s
    assert result.known_latency == (result.latency.median_s, "measured")


def test_a_prediction_the_hardware_cannot_make_is_a_note():
    cpu = torchcost.hardware("x86-avx2-8c")
    counted = torchcost.profile(small(), torch.randn(4, 64))
    with pytest.raises(ValueError) as raised:
        predict(counted, cpu, execution="graphs")  # CUDA graphs: GPUs only
    result = analysis_of(counted, None, cpu, "graphs")
    assert result.prediction is None and result.notes == [f"no prediction: {raised.value}"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"latency": True, "autocast": "bf16"}, "autocast is counted, not measured"),
        ({"latency": True, "channels_last": True}, "channels_last is counted, not measured"),
        ({"execution": "jit"}, "unknown execution 'jit'"),
    ],
)
def test_bad_options_get_one_line(options, message):
    with pytest.raises(torchcost.ProfilingError, match=message):
        analyze(small(), torch.randn(4, 64), **options)


def test_an_analysis_prints_as_the_cli_report_and_its_line_names_its_type():
    result = analyze(small(), torch.randn(4, 64), hardware="h100")
    assert "predicted latency" in str(result) and "findings:" in str(result)
    assert repr(result).startswith("<Analysis Sequential: params") and "\n" not in repr(result)
    assert "predicted latency" in result._repr_html_()
    assert repr(result.profile).startswith("<Profile Sequential: params")


def test_the_docstring_example_holds():
    assert doctest.testmod(analysis).failed == 0


def test_analysis_is_public():
    assert torchcost.analyze is analyze and torchcost.Analysis is Analysis
