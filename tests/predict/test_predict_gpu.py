import dataclasses

import pytest
import torch
from torch import nn

import torchcost
from tests.predict.test_gpu import EXACT, GPU, RATES
from torchcost.hardware.calibration import Calibration
from torchcost.predict import gpu, predict
from torchcost.predict.host import HostCosts
from torchcost.predict.kernels import kernels
from torchcost.predict.predict import REFERENCE_HOST, REFERENCE_OP_OVERHEAD_S, host_costs, predict_gpu

US = 1e-6
HOST = HostCosts(
    dispatch_s={
        "view": 1 * US,
        "kernel": 10 * US,
        "norm": 10 * US,
        "conv": 10 * US,
        "matmul": 20 * US,
        "foreach": 30 * US,
    },
    extra_kernel_s=5 * US,
    foreach_tensor_s=0.5 * US,
    module_call_s=2 * US,
    graph_replay_s=15 * US,
    source="test",
)


def tiny() -> torchcost.Profile:
    return torchcost.profile(nn.Sequential(nn.Linear(64, 64), nn.ReLU()), torch.randn(8, 64), device="meta")


def test_eager_issues_ops_on_the_host_and_runs_kernels_behind_it():
    p = tiny()
    assert [r.op for r in p.records] == ["aten.t", "aten.addmm", "aten.relu"]
    addmm, relu = (gpu.kernel_time(kernels(r)[0], RATES).seconds for r in p.records[1:])
    prediction = predict_gpu(p, RATES, HOST, "fp32", "eager", "wavy")
    # host: t at 2 x 2 (the root and Linear entered) + 1 = 5 us; addmm 20 more (25 us); ReLU entered, relu: 37 us.
    # Each kernel starts at its launch (the device is idle): relu ends at 37 us + its kernel
    assert prediction.latency_s == pytest.approx(37 * US + relu, rel=1e-12)
    assert [op.start_s for op in prediction.ops[1:]] == pytest.approx([25 * US, 37 * US])
    assert prediction.ops[1].device_s == pytest.approx(addmm) and prediction.ops[0].kernels == 0
    assert sum(op.time_s for op in prediction.ops) == pytest.approx(prediction.latency_s)
    assert {op.bound for op in prediction.ops} == {"overhead"}  # the host sets the pace of every op
    assert prediction.module_calls_s == pytest.approx(3 * 2 * US)  # three calls at 2 us
    assert prediction.host_s == pytest.approx(37 * US) and prediction.execution == "eager"


def test_graphs_replay_the_kernels_back_to_back():
    p = tiny()
    device = sum(gpu.kernel_time(kernels(r)[0], RATES).seconds for r in p.records[1:])
    prediction = predict_gpu(p, RATES, HOST, "fp32", "graphs", "wavy")
    assert prediction.latency_s == pytest.approx(15 * US + device, rel=1e-12)  # one replay, then the kernels
    assert prediction.module_calls_s == 0 and prediction.execution == "graphs"


def test_graphs_need_a_gpu():
    with pytest.raises(ValueError, match="not a GPU; use eager"):
        predict(tiny(), torchcost.hardware("apple-m2"), execution="graphs")
    with pytest.raises(ValueError, match="unknown execution 'compiled'"):
        predict(tiny(), GPU, execution="compiled")


def test_a_training_step_maps_the_optimizer_loop_to_foreach_calls():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
    p = torchcost.profile(model, torch.randn(8, 64), optimizer="adamw", device="meta")
    prediction = predict_gpu(p, RATES, HOST, "fp32", "eager", "wavy")
    assert len(prediction.ops) == len(p.records)  # every record is predicted, once
    loop = [op for op in prediction.ops if p.records[op.index].phase == "optimizer"]
    # 4 parameters x 10 ops of the loop, on the host: 8 foreach calls (30 us + 4 x 0.5 us each) and 8 scalar ops
    assert len(loop) == 40
    assert sum(op.overhead_s for op in loop) == pytest.approx(8 * (30 + 4 * 0.5) * US + 8 * 0.5 * US)
    assert sum(op.kernels for op in loop) == 8  # one launch per call: 4 small tensors


def test_attentions_math_reference_runs_as_one_kernel():
    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(64))

        def forward(self, q: torch.Tensor) -> torch.Tensor:
            q = q * self.scale
            return nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=0.1)

    p = torchcost.profile(Attention(), torch.randn(2, 8, 256, 64), backward=True, device="meta")
    prediction = predict_gpu(p, RATES, HOST, "fp32", "eager", "wavy")
    marked = [op for op in prediction.ops if p.records[op.index].fused]
    assert len(marked) > 10  # the math reference's many ops, forward and backward
    assert sum(op.kernels for op in marked) == 3  # the forward kernel, and the backward's two
    issued = {op.start_s for op in marked}
    assert len(issued) == 2  # the forward group, then the backward group


def test_host_costs_come_from_a_cuda_calibration():
    assert host_costs(GPU) is REFERENCE_HOST
    measured = Calibration("cuda", "wavy", 1, "x", "today", host_s={"kernel": 7 * US}, module_call_s=1 * US)
    costs = host_costs(dataclasses.replace(GPU, calibration=measured))
    assert costs.dispatch_s["kernel"] == 7 * US and costs.module_call_s == 1 * US
    assert costs.dispatch_s["conv"] == REFERENCE_HOST.dispatch_s["conv"]  # not measured: the reference's
    # a calibration made before host costs were measured per class scales the reference by its op overhead
    older = Calibration("cuda", "wavy", 1, "x", "today", op_overhead_s=REFERENCE_OP_OVERHEAD_S / 2)
    halved = host_costs(dataclasses.replace(GPU, calibration=older))
    assert halved.dispatch_s["kernel"] == pytest.approx(REFERENCE_HOST.dispatch_s["kernel"] / 2)


def test_predict_picks_the_gpu_model_from_the_hardware():
    p = tiny()
    rates = gpu.gpu_rates(GPU)
    assert predict(p, GPU).latency_s == pytest.approx(
        predict_gpu(p, rates, REFERENCE_HOST, "fp32", "eager", "x").latency_s
    )
    assert predict(p, GPU).notes and "eager" in predict(p, GPU).notes[1]
    assert EXACT.floor_s == 1 * US


def test_a_model_that_runs_no_op_still_calls_its_modules():
    p = torchcost.profile(nn.Identity(), torch.randn(4, 4), device="meta")
    assert not p.records
    assert predict_gpu(p, RATES, HOST, "fp32", "eager", "wavy").latency_s == pytest.approx(2 * US)  # one call
    assert predict_gpu(p, RATES, HOST, "fp32", "graphs", "wavy").latency_s == pytest.approx(15 * US)  # the replay
