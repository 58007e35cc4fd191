import dataclasses

import pytest
import torch
from torch import nn

import torchcost
from torchcost.explain import explain, fill_size, parallelism
from torchcost.hardware import Hardware
from torchcost.measure.latency import BatchLatency, Latency
from torchcost.predict import predict

TOY = Hardware("toy", "toy", "cpu", {"fp32": 1e12}, 100e9, None, 4, "test")


def kinds(findings):
    return {f.kind: f for f in findings}


def elementwise_heavy() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), *[nn.ReLU() for _ in range(6)])


def with_times(profile, seconds_by_op):
    profile.records = [dataclasses.replace(r, measured_s=seconds_by_op.get(r.op, 1e-6)) for r in profile.records]
    return profile


def test_cheap_ops_finding_compares_flops_and_time():
    p = with_times(torchcost.profile(elementwise_heavy(), torch.randn(4, 64)), {"aten.addmm": 1e-4, "aten.relu": 1e-4})
    finding = kinds(explain(p))["cheap_ops"]
    assert "of FLOPs but" in finding.message and "measured time" in finding.message
    # 6 ReLUs: 6 x 256 FLOPs of 2 x 16384 + 256 + 1536; 6 x 1e-4 s of the 7e-4 s (+ views)
    assert finding.numbers["flops_share"] < 0.05 and finding.numbers["time_share"] > 0.8


def test_memory_bound_and_launch_findings_need_a_prediction():
    # 4 rows: every op is too small to be more than its dispatch (2 us); 4,096 rows: a ReLU moves 2 MB, 25 us
    small = torchcost.profile(elementwise_heavy(), torch.randn(4, 64))
    assert "memory_bound" not in kinds(explain(small))
    found = kinds(explain(small, prediction=predict(small, TOY), hardware=TOY))
    assert "memory_bound" not in found  # nothing to say: no op is memory-bound
    assert found["launches"].numbers["launches"] == len(small.records)
    assert "too small to fill the 4 cores" in found["parallelism"].message
    large = torchcost.profile(elementwise_heavy(), torch.randn(4096, 64))
    found = kinds(explain(large, prediction=predict(large, TOY), hardware=TOY))
    assert "memory-bound ops" in found["memory_bound"].message


def test_a_finding_with_nothing_to_say_is_not_made():
    # one linear layer: no elementwise, norm, pooling or data-movement op, so no cheap-ops finding
    p = torchcost.profile(nn.Linear(64, 64), torch.randn(4, 64))
    assert "cheap_ops" not in kinds(explain(p))


def test_depthwise_efficiency_finding():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 8, 1))
    p = with_times(torchcost.profile(model, torch.randn(1, 8, 16, 16)), {"aten.convolution": 1e-3})
    finding = kinds(explain(p, hardware=TOY))["depthwise_conv"]
    assert finding.numbers["efficiency"] < 0.01 and "dense convolutions" in finding.message


def test_shared_parameters_finding():
    model = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False))
    model[1].weight = model[0].weight
    finding = kinds(explain(torchcost.profile(model, torch.randn(1, 8))))["shared_params"]
    assert finding.numbers["shared"] == 64


def test_findings_are_ranked():
    p = torchcost.profile(elementwise_heavy(), torch.randn(4, 64))
    scores = [f.score for f in explain(p, prediction=predict(p, TOY), hardware=TOY)]
    assert scores == sorted(scores, reverse=True)


def test_parallelism_measure():
    p = torchcost.profile(nn.Linear(4, 2), torch.randn(3, 4))
    addmm = next(r for r in p.records if r.op == "aten.addmm")
    assert fill_size(TOY) == 4 * 16
    assert parallelism(addmm, TOY) == 6 / 64  # a (3, 2) output on 4 cores x 16 lanes


def test_compare_findings_relate_models_to_the_first():
    from torchcost.explain import compare_findings

    small = torchcost.profile(nn.Linear(64, 64), torch.randn(4, 64))
    large = torchcost.profile(nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64)), torch.randn(4, 64))
    small.model, large.model = "small", "large"
    (line,) = compare_findings([small, large])
    assert line.startswith("large has 2.00x the FLOPs of small")
    assert compare_findings([small]) == []


def test_overhead_finding_says_what_would_help_when_it_dominates():
    from torchcost.hardware.calibration import Calibration
    from torchcost.predict.learned import FEATURE_COUNT, Observation

    # every op learned at 1 us (too cheap to be anything but dispatch) and 50 us per module call
    samples = [
        Observation(c, (float(i),) * FEATURE_COUNT, 1e-6) for c in ("matmul", "pointwise", "view") for i in range(8)
    ]
    calibration = Calibration(
        "cpu", "toy", 1, "", "", {"fp32": 1e12}, copy_bandwidth=1e11, add_bandwidth=1e11,
        observations=[o.to_dict() for o in samples], module_call_s=50e-6,
    )  # fmt: skip
    device = dataclasses.replace(TOY, calibration=calibration)
    p = torchcost.profile(elementwise_heavy(), torch.randn(4, 64))
    prediction = predict(p, device)
    found = kinds(explain(p, prediction=prediction, hardware=device))["launches"]
    calls = sum(m.calls for m in p.modules)  # the Sequential, the Linear and six ReLUs
    assert calls == 8 and prediction.module_calls_s == 8 * 50e-6
    assert "8 module calls" in found.message and "torch.compile" in found.message
    assert found.score > 0.5


def test_the_overhead_share_is_the_summary_s_even_with_a_measured_latency():
    """resnet50 on an L4 said "overhead 38.1%" in the summary and "(48%)" in the finding, which divided the
    predicted wait by a measured latency."""
    torchvision = pytest.importorskip("torchvision")
    p = torchcost.profile(torchvision.models.resnet18(), input_size=(1, 3, 224, 224))
    l4 = torchcost.hardware("l4")
    prediction = predict(p, l4)
    measured = BatchLatency(None, prediction.latency_s * 3, prediction.latency_s * 3, 0.0, 0.0, 0.0, 0.0, 10, None)
    latency = Latency("cuda", "NVIDIA L4", 1, "float32", "test", None, by_batch=[measured])
    finding = kinds(explain(p, latency, prediction=prediction, hardware=l4))["launches"]
    assert finding.score == pytest.approx(prediction.overhead_s / prediction.latency_s)
    assert prediction.time_by("bound")["overhead"] == pytest.approx(prediction.overhead_s)
