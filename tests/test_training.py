"""profile(optimizer=): the training step's FLOPs by phase, the optimizer's own kernels, 6·N·tokens and MFU."""

import pytest
import torch
from torch import nn

from torchcost import profile
from torchcost.analysis import timed
from torchcost.hardware import Hardware
from torchcost.predict import predict

TOY = Hardware("toy", "toy GPU", "gpu", {"fp32": 1e12}, 1e11, 1e10, 10, "test")


def chain() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


PARAMS = 4 * 8 + 8 + 8 * 2 + 2  # 58


@pytest.mark.parametrize(
    ("optimizer", "per_param"),
    [
        ("sgd", 1),  # param.add_(grad, alpha=-lr): one FLOP per element (pointwise ops count one)
        ("sgd-momentum", 3),  # buf.mul_(momentum).add_(grad); param.add_(buf, alpha=-lr): three (steady state)
    ],
)
def test_optimizer_flops_by_hand(optimizer, per_param):
    p = profile(chain(), torch.randn(3, 4), optimizer=optimizer, device="meta")
    assert p.training is not None and p.backward
    counted = sum(r.cost.flops for r in p.records if r.phase == "optimizer")
    assert p.training.optimizer_flops == counted == per_param * PARAMS
    assert {r.phase for r in p.records} == {"forward", "backward", "optimizer"}
    assert p.training.forward_flops == profile(chain(), torch.randn(3, 4), device="meta").flops


def test_adam_kernels_are_the_ones_pytorch_runs():
    p = profile(chain(), torch.randn(3, 4), optimizer="adam", device="cpu")
    ops = {r.op for r in p.records if r.phase == "optimizer"}
    assert {"aten.lerp_", "aten.addcmul_", "aten.addcdiv_", "aten.sqrt"} <= ops  # PyTorch's single-tensor Adam
    assert "profiler._record_function_enter_new" not in {r.op for r in p.records}
    assert p.to_dict()["training"]["optimizer"] == "adam"


def test_the_model_is_not_trained():
    model = chain()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile(model, torch.randn(3, 4), optimizer="adamw", device="cpu")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_six_n_tokens_and_mfu_for_a_token_model():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=100)
    model = transformers.GPT2LMHeadModel(config)
    ids = torch.zeros(2, 16, dtype=torch.long)
    p = profile(model, ids, optimizer="sgd", device="meta")
    step = p.training
    assert step is not None and step.tokens == 2 * 16
    trainable = sum(q.numel() for q in model.parameters())  # the tied LM head counted once
    assert step.six_n_flops == 6 * trainable * 32
    assert step.mfu is None  # no step time yet
    prediction = predict(p, TOY)
    timed(step, TOY, "fp32", prediction)
    assert step.step_s == prediction.latency_s and step.step_source == "predicted on toy GPU"
    assert step.mfu == pytest.approx(step.model_flops / (prediction.latency_s * 1e12))


def test_image_models_have_no_token_rule():
    p = profile(nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8), optimizer="sgd", device="meta")
    assert p.training is not None and p.training.tokens is None and p.training.six_n_flops is None


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("steady_optimizer", "torchcost.step"),
        ("counted_step", "torchcost.profiler"),
        ("TrainingStep", "torchcost.records"),
        ("training_step", "torchcost.profiler"),
        ("timed", "torchcost.analysis"),
        ("measure_step", "torchcost.measure.step"),
    ],
)
def test_the_step_kit_moved_with_warnings(name, home):
    import importlib

    import torchcost.training

    with pytest.warns(DeprecationWarning, match=f"torchcost.training.{name} is now {home}.{name}"):
        assert getattr(torchcost.training, name) is getattr(importlib.import_module(home), name)
