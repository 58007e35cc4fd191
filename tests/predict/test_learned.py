import dataclasses
import math
import random

import pytest
import torch
from torch import nn

import torchcost
from torchcost.hardware import Hardware
from torchcost.hardware.calibration import Calibration
from torchcost.predict import predict
from torchcost.predict.learned import FEATURE_COUNT, Check, Observation, OpTimeModel, features, held_out_check
from torchcost.predict.learned.features import element_cost
from torchcost.predict.learned.observe import main_record
from torchcost.predict.learned.sampling import SAMPLERS
from torchcost.predict.taxonomy import op_class
from torchcost.records import OpCost, OpRecord


def conv_record() -> OpRecord:
    # conv 1x16x8x8 -> 32 channels, 3x3, stride 2, padding 1: output 1x32x4x4
    # FLOPs 2 x (32 x 4 x 4) x (16 x 9) = 147_456; reads 4 x (1024 + 4608) = 22_528 bytes; writes 4 x 512 = 2048
    cost = OpCost(147_456, 73_728, 22_528, 2_048)
    return OpRecord("aten.convolution", "forward", ("",), cost, ((1, 16, 8, 8), (32, 16, 3, 3)), ((1, 32, 4, 4),))


def test_features_of_a_conv_are_its_sizes_and_tiling_shape():
    cache = 1 << 20
    got = features(conv_record(), cache)
    expected = [
        math.log2(147_456 + 1),
        math.log2(22_528 + 1),
        math.log2(2_048 + 1),
        math.log2(512 + 1),  # output elements
        math.log2(1024 + 1),  # first input's elements
        math.log2((22_528 + 2_048 + 1) / cache),  # working set over the cache
        math.log2(2_048 + 1),  # the output it allocates (not in place)
        0.0,  # multiply-adds: the cheapest kind of arithmetic per element
        math.log2(16 + 1),  # input channels per group
        math.log2(32 + 1),  # output channels
        math.log2(9 + 1),  # kernel area
        2.0,  # stride: 8 / 4
    ]
    assert got == pytest.approx(expected) and len(got) == FEATURE_COUNT
    in_place = dataclasses.replace(conv_record(), op="aten.relu_")
    assert features(in_place, cache)[6] == 0.0  # writes into its input: allocates nothing
    assert [element_cost(op) for op in ("aten.relu_", "aten.div", "aten.gelu", "aten._softmax")] == [0, 1, 2, 2]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_makes_a_countable_op_of_its_class(name):
    sample = SAMPLERS[name](random.Random(0))
    found = main_record(sample)
    assert found is not None and op_class(found) == name == sample.op_class
    assert found.cost.memory_access > 0 or name == "view"


def power_law(n: int, seed: int, op_class_: str = "matmul") -> list[Observation]:
    """Synthetic samples timed by a power law, 1 ns x FLOPs^0.8 x bytes read^0.2, the other features random."""
    rng = random.Random(seed)
    samples = []
    for _ in range(n):
        flops, read = 2 ** rng.uniform(10, 30), 2 ** rng.uniform(10, 26)
        row = (math.log2(flops + 1), math.log2(read + 1), *(rng.uniform(0, 20) for _ in range(FEATURE_COUNT - 2)))
        samples.append(Observation(op_class_, row, law(flops, read)))
    return samples


def law(flops: float, read: float) -> float:
    return 1e-9 * flops**0.8 * read**0.2


@pytest.mark.parametrize("n", [12, 120])  # the closed form (few samples), gradient boosting (many)
def test_learned_models_predict_held_out_samples_of_a_known_law(n):
    pytest.importorskip("sklearn")
    check = held_out_check(power_law(n, seed=1))
    assert check.median_error < 0.25  # noiseless; a model that missed the law would be off by orders of magnitude
    model = OpTimeModel(power_law(n, seed=2))
    assert model.seconds("conv", [0.0] * FEATURE_COUNT) is None  # no samples of that class: no guess
    flops, read = 2.0**20, 2.0**18
    predicted = model.seconds("matmul", [math.log2(flops + 1), math.log2(read + 1)] + [10.0] * (FEATURE_COUNT - 2))
    assert predicted == pytest.approx(law(flops, read), rel=0.25)


def test_check_summarises_relative_errors():
    # errors +5%, -15%, +30%: |errors| sorted 0.05, 0.15, 0.30, median 0.15; one of three within 10%
    check = Check({"matmul": [0.05, -0.15, 0.30]})
    assert check.median_error == pytest.approx(0.15)
    assert check.share_within(0.10) == pytest.approx(1 / 3)
    assert check.to_dict()["per_class_median"] == {"matmul": pytest.approx(0.15)}


def learned_calibration(observations: list[Observation]) -> Calibration:
    return Calibration(
        "cpu",
        "test cpu",
        torch.get_num_threads(),
        torch.__version__,
        "today",
        {"fp32": 1e10},
        conv_flops=1e10,
        depthwise_conv_flops=1e9,
        copy_bandwidth=1e10,
        add_bandwidth=1e10,
        observations=[o.to_dict() for o in observations],
        module_call_s=3e-6,
        cache_bytes=1 << 20,
    )


def test_predict_uses_a_meta_profile_and_the_calibration_only(monkeypatch):
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
    profile = torchcost.profile(model, torch.randn(4, 64), device="meta")
    assert profile.device == "meta"
    calibration = learned_calibration(
        [*power_law(30, seed=6), *power_law(30, seed=7, op_class_="pointwise"), *power_law(30, 8, "view")]
    )
    cpu = Hardware("local", "test cpu", "cpu", {"fp32": 1e10}, 1e10, None, 2, "test", calibration=calibration)

    def no_kernels(*args, **kwargs):
        raise AssertionError("predict ran a kernel")

    monkeypatch.setattr(torch, "mm", no_kernels)
    monkeypatch.setattr(torch, "addmm", no_kernels)
    prediction = predict(profile, cpu)
    classes = {op_class(r) for r in profile.records}
    assert classes <= {"matmul", "pointwise", "view"}
    assert all(op.learned_s is not None and op.learned_s > 0 for op in prediction.ops)
    calls = sum(m.calls for m in profile.modules)  # the root, two Linear and a ReLU: one call each
    assert calls == 4 and prediction.module_calls_s == pytest.approx(4 * 3e-6)
    assert prediction.latency_s == pytest.approx(sum(op.learned_s for op in prediction.ops) + 4 * 3e-6)
    assert prediction.overhead_s >= prediction.module_calls_s
    assert prediction.rates.source == "calibrated, learned op-time models"


def test_weights_too_large_for_the_cache_stream_from_memory():
    # the samples were timed with their weights in the cache; a model whose weights do not fit (here 4 MB of a
    # 1 MiB cache) reads each weight from memory every forward, at half the copy bandwidth: 5e9 B/s
    calibration = learned_calibration(power_law(30, seed=9))
    cpu = Hardware("local", "test cpu", "cpu", {"fp32": 1e10}, 1e10, None, 2, "test", calibration=calibration)
    large = torchcost.profile(nn.Linear(1024, 1024), torch.randn(1, 1024), device="meta")
    (addmm,) = [op for op in predict(large, cpu).ops if op.op == "aten.addmm"]
    assert addmm.learned_s >= 1024 * 1024 * 4 / 5e9  # 838.8608 us at least
    small = torchcost.profile(nn.Linear(64, 64), torch.randn(1, 64), device="meta")
    (addmm,) = [op for op in predict(small, cpu).ops if op.op == "aten.addmm"]
    assert addmm.learned_s < 64 * 64 * 4 / 5e9 * 10  # 16 kB of weights stay in the cache: no floor
