import pytest

from torchcost.hardware import Hardware
from torchcost.hardware.calibration import Calibration
from torchcost.predict import predict, rates_for
from torchcost.predict.roofline import BANDWIDTH_EFFICIENCY, QUICK_SOURCE, SPEC_EFFICIENCY
from torchcost.predict.taxonomy import op_class
from torchcost.records import MemoryAccess, OpCost, OpRecord, ParamCount, Profile, TensorSpec


def record(op: str, flops: int, bytes_: int, inputs=((4, 8), (8, 4)), modules=("", "block")) -> OpRecord:
    return OpRecord(op, "forward", modules, OpCost(flops, flops // 2, bytes_, 0), tuple(inputs), ((4, 4),))


SMALL_INPUT = TensorSpec((4, 8), "float32")


def hand_profile(records: list[OpRecord], inputs: TensorSpec = SMALL_INPUT) -> Profile:
    """A profile of these records alone (the prediction reads the records and the inputs' dtype)."""
    return Profile(
        model="hand",
        inputs=[inputs],
        device="meta",
        backward=False,
        params=ParamCount(),
        size_bytes=0,
        size_if={},
        macs=sum(r.cost.macs for r in records),
        flops=sum(r.cost.flops for r in records),
        memory_access=MemoryAccess(sum(r.cost.bytes_read for r in records), 0),
        modules=[],
        operators=[],
        uncounted=[],
        records=records,
    )


# A made-up device: 1 TFLOP/s fp32 peak, 100 GB/s, a CPU (2 us per op by default).
TOY = Hardware("toy", "toy", "cpu", {"fp32": 1e12}, 100e9, None, 4, "test")


def test_prediction_arithmetic_on_spec_rates():
    ops = [
        record("aten.mm", flops=7_000_000_000, bytes_=1_000_000),  # compute: 7e9 / (0.7 x 1e12) = 10 ms
        record("aten.add", flops=1_000, bytes_=8_000_000_000),  # memory: 8e9 / (0.8 x 100e9) = 100 ms
        record("aten.relu", flops=10, bytes_=80),  # tiny: 2 us of overhead dominates
    ]
    prediction = predict(hand_profile(ops), TOY)
    mm, add, relu = prediction.ops
    assert SPEC_EFFICIENCY["matmul"] == 0.7 and BANDWIDTH_EFFICIENCY == 0.8
    assert mm.compute_s == pytest.approx(0.010) and mm.bound == "compute"
    assert add.memory_s == pytest.approx(0.100) and add.bound == "memory"
    assert relu.bound == "overhead"
    assert mm.time_s == pytest.approx(0.010 + 2e-6)
    assert prediction.latency_s == pytest.approx(0.010 + 0.100 + 3 * 2e-6 + relu.memory_s)
    assert prediction.by_module["block"] == pytest.approx(prediction.latency_s)
    assert prediction.time_by("bound")["memory"] == pytest.approx(add.time_s)


def test_ridge_point_separates_the_bounds():
    rates = rates_for(TOY)
    ridge = rates.ridge_point("matmul")  # 0.7e12 / 80e9 = 8.75 FLOP/byte
    assert ridge == pytest.approx(8.75)
    below = record("aten.mm", flops=8_000_000, bytes_=1_000_000)  # intensity 8
    above = record("aten.mm", flops=9_000_000, bytes_=1_000_000)  # intensity 9
    first, second = predict(hand_profile([below, above]), TOY).ops
    assert (first.bound, second.bound) == ("memory", "compute")


def test_calibrated_rates_are_used_per_class():
    calibration = Calibration(
        "cpu",
        "toy",
        4,
        "x",
        "today",
        matmul_flops={"fp32": 2e11},
        conv_flops=1e11,
        depthwise_conv_flops=1e9,
        copy_bandwidth=40e9,
        add_bandwidth=30e9,
        op_overhead_s=1e-6,
        class_overhead_s={"conv": 20e-6},
    )
    device = Hardware("toy", "toy", "cpu", {"fp32": 1e12}, None, None, 4, "test", calibration=calibration)
    dense = record("aten.convolution", 1_000_000_000, 1, inputs=((1, 8, 4, 4), (8, 8, 3, 3)))
    depthwise = record("aten.convolution", 1_000_000_000, 1, inputs=((1, 8, 4, 4), (8, 1, 3, 3)))
    assert op_class(dense) == "conv" and op_class(depthwise) == "depthwise_conv"
    first, second = predict(hand_profile([dense, depthwise]), device).ops
    assert first.time_s == pytest.approx(1e9 / 1e11 + 20e-6)  # 10 ms + the conv set-up cost
    assert second.compute_s == pytest.approx(1.0)  # 1e9 FLOPs at 1 GFLOP/s
    assert predict(hand_profile([dense]), device).rates.bandwidth == 40e9  # the better of copy and add


def test_spec_hardware_without_bandwidth_cannot_predict():
    with pytest.raises(ValueError, match="calibrate"):
        predict(hand_profile([record("aten.mm", 1, 1)]), Hardware("x", "x", "cpu", {"fp32": 1e12}, None, None, 1, "t"))


def test_predicts_a_real_model_on_a_spec_device():
    import torch

    import torchcost

    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU())
    p = torchcost.profile(model, torch.randn(8, 64), device="meta")
    prediction = predict(p, torchcost.hardware("l4"))
    assert prediction.latency_s > 0 and len(prediction.ops) == len(p.records)
    assert prediction.to_dict()["latency_s"] == prediction.latency_s


@pytest.mark.parametrize("op", ["aten._grouped_mm", "aten._weight_int8pack_mm", "aten._int_mm", "aten.addmm"])
def test_expert_and_quantised_matrix_products_are_matmuls(op):
    # mixture-of-experts layers run their experts through _grouped_mm (70% of a Mixtral's FLOPs)
    assert op_class(record(op, 1000, 10, inputs=((8, 4), (2, 4, 3)))) == "matmul"


def test_this_cpu_without_a_calibration_measures_its_bandwidth_in_a_copy():
    """`llm ... --hardware local` once failed before calibration although the CPU's peaks were known."""
    local = Hardware("cpu", "this CPU", "cpu", {"fp32": 1e11, "bf16": 2e11}, None, None, 2, "detected")
    rates = rates_for(local, "bf16")
    assert rates.source == QUICK_SOURCE
    assert 1e8 < rates.bandwidth < 1e13  # bytes/s of a real copy, whatever the machine


def test_what_is_missing_is_named():
    spec_cpu = Hardware("toy", "toy CPU", "cpu", {}, None, None, 2, "test")
    with pytest.raises(ValueError, match="toy CPU has no bf16 peak and no memory bandwidth"):
        rates_for(spec_cpu, "bf16")
