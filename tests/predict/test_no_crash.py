"""Predictions never crash: ``predict`` on every torchvision classifier and a broad sample of timm and transformers
models (inference, and training steps with autocast, channels_last and optimizers), on two spec-table GPUs (eager
and CUDA graphs) and a spec-table CPU.

Each model is profiled once, on meta at batch 1 and its default input (a small cache, since its tests run one
after another); prediction itself takes milliseconds. Checked on every prediction: no exception, a positive and
finite latency, one op per predicted record (all records of a training step, else the forward's), the ops' times
summing to the latency, a known bound per op; on a GPU, a CUDA-graph replay no slower than eager.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

import torchcost
from torchcost.records import OpRecord

torchvision = pytest.importorskip("torchvision")
pytest.importorskip("timm")
pytest.importorskip("transformers")

GPUS = ("h100", "l4")  # spec-table GPUs, no calibration
CPU = "x86-avx512-32c"  # a spec-table CPU: hardware("cpu") has no bandwidth until calibrated
BOUNDS = {"compute", "memory", "overhead"}


@dataclass(frozen=True)
class Case:
    spec: str
    options: dict[str, Any] = field(default_factory=dict)  # profile_spec's keywords
    id: str = ""
    covers: tuple[str, ...] = ()  # what its profile must hold: see ``COVERS``

    @property
    def name(self) -> str:
        return self.id or self.spec


TORCHVISION = [Case(f"torchvision:{name}") for name in torchvision.models.list_models(module=torchvision.models)]

# Families: ViT (plain, DINOv2, SigLIP), DeiT, Swin, ConvNeXt, EfficientNet, MobileNet v3/v4, RegNet, ResNet
# variants, LeViT, MobileViT, PoolFormer, CoaT, CrossViT, BEiT, XCiT, CaiT, ConViT, EdgeNeXt, EfficientFormer,
# FastViT, HRNet, DLA, NFNet, RepVGG, GhostNet, MLP-Mixer, EVA-02, MaxViT, CoAtNet, DenseNet, Inception, Twins,
# PVT, VOLO, TNT, Visformer, NesT, Sequencer (LSTMs), GCViT, DaViT, Hiera, FocalNet, InceptionNeXt, ReXNet, DPN,
# CSPDarkNet, HGNet, TinyViT, EfficientViT, RepViT, MambaOut.
TIMM = [
    Case(f"timm:{name}")
    for name in (
        "vit_tiny_patch16_224",
        "vit_base_patch16_224",
        "vit_small_patch14_dinov2",
        "vit_base_patch16_siglip_224",
        "deit_tiny_distilled_patch16_224",
        "deit3_small_patch16_224",
        "swin_tiny_patch4_window7_224",
        "swinv2_cr_tiny_ns_224",
        "convnext_atto",
        "convnextv2_atto",
        "efficientnet_b0",
        "tf_efficientnetv2_b0",
        "mobilenetv3_large_100",
        "mobilenetv4_conv_small",
        "regnety_002",
        "regnetz_b16",
        "resnet50d",
        "resnext50_32x4d",
        "seresnext26d_32x4d",
        "resnest14d",
        "levit_128s",
        "mobilevit_xxs",
        "mobilevitv2_050",
        "poolformer_s12",
        "coat_lite_tiny",
        "coat_tiny",
        "crossvit_tiny_240",
        "beit_base_patch16_224",
        "beitv2_base_patch16_224",
        "xcit_nano_12_p16_224",
        "cait_xxs24_224",
        "convit_tiny",
        "edgenext_xx_small",
        "efficientformer_l1",
        "efficientformerv2_s0",
        "fastvit_t8",
        "hrnet_w18_small",
        "dla34",
        "nfnet_f0",
        "repvgg_a0",
        "ghostnet_100",
        "mixer_s32_224",
        "eva02_tiny_patch14_224",
        "maxvit_tiny_tf_224",
        "coatnet_0_rw_224",
        "densenet121",
        "inception_v3",
        "twins_svt_small",
        "pvt_v2_b0",
        "volo_d1_224",
        "tnt_s_patch16_224",
        "visformer_tiny",
        "nest_tiny",
        "sequencer2d_s",
        "gcvit_xxtiny",
        "davit_tiny",
        "hiera_tiny_224",
        "focalnet_tiny_srf",
        "inception_next_atto",
        "rexnet_100",
        "dpn68",
        "cs3darknet_s",
        "hgnetv2_b0",
        "tiny_vit_5m_224",
        "efficientvit_b0",
        "efficientvit_m0",
        "repvit_m0_9",
        "mambaout_femto",
    )
]

# Default configs of each type (``AutoConfig.for_model``), their usual head and default inputs: decoders (dense,
# GQA, MoE, MLA), encoders, encoder-decoders, vision, speech, a state-space model. All of them profile on meta.
HF = [
    Case(f"hf:{name}")
    for name in (
        "gpt2",
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "gemma2",
        "phi3",
        "falcon",
        "bloom",
        "opt",
        "deepseek_v3",
        "bert",
        "distilbert",
        "t5",
        "bart",
        "vit",
        "swin",
        "clip",
        "whisper",
        "wav2vec2",
        "segformer",
        "mamba",
    )
]


def foreach_adamw(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, foreach=True)  # aten._foreach_* records, as CUDA runs it


def foreach_sgd(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=1e-3, momentum=0.9, foreach=True)


def fused_adamw(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, fused=True)  # aten._fused_adamw_; meta tensors refuse it, so on the cpu


# Training steps (backward, and optimizers counted as their per-parameter loop or as foreach/fused calls),
# autocast (bf16/fp16) and channels_last; attention's fused groups forward and backward.
TRAINING = [
    Case("torchvision:resnet18", {"optimizer": "adamw", "channels_last": True}, "resnet18-adamw-cl", ("loop",)),
    Case(
        "torchvision:mobilenet_v3_small",
        {"backward": True, "autocast": "bf16", "channels_last": True},
        "mobilenet_v3_small-bwd-bf16-cl",
    ),
    Case(
        "torchvision:vit_b_16",
        {"optimizer": "sgd-momentum", "autocast": "bf16"},
        "vit_b_16-sgdm-bf16",
        ("loop", "fused backward"),
    ),
    Case(
        "timm:vit_tiny_patch16_224",
        {"optimizer": "adamw", "autocast": "bf16"},
        "vit_tiny-adamw-bf16",
        ("loop", "fused backward"),
    ),
    Case("timm:convnext_atto", {"optimizer": "adam", "channels_last": True}, "convnext_atto-adam-cl", ("loop",)),
    Case("timm:efficientnet_b0", {"autocast": "fp16", "channels_last": True}, "efficientnet_b0-fp16-cl"),
    Case("timm:swin_tiny_patch4_window7_224", {"backward": True}, "swin_tiny-bwd"),
    Case("timm:resnet18", {"optimizer": foreach_adamw}, "resnet18-foreach-adamw", ("multi-tensor",)),
    Case(
        "timm:mobilenetv3_small_050",
        {"optimizer": foreach_sgd, "autocast": "bf16"},
        "mobilenetv3_small-foreach-sgdm-bf16",
        ("multi-tensor",),
    ),
    Case(
        "timm:mobilenetv3_small_050",
        {"optimizer": fused_adamw, "device": "cpu"},
        "mobilenetv3_small-fused-adamw-cpu",
        ("multi-tensor",),
    ),
    Case("hf:gpt2", {"optimizer": "adamw", "autocast": "bf16"}, "gpt2-adamw-bf16", ("loop", "fused backward")),
    Case("hf:bert", {"optimizer": "sgd", "autocast": "bf16"}, "bert-sgd-bf16", ("loop", "fused backward")),
    Case("hf:t5", {"backward": True}, "t5-bwd", ("fused backward",)),
    Case("hf:qwen2_moe", {"autocast": "bf16"}, "qwen2_moe-bf16", ("fused forward",)),
]
# What a case's profile must hold, so that the paths it is there for are predicted: the optimizer as its
# per-parameter loop (mapped to foreach calls), as multi-tensor records, attention's fused groups.
COVERS: dict[str, Callable[[OpRecord], bool]] = {
    "loop": lambda r: r.phase == "optimizer" and not r.op.startswith(("aten._foreach_", "aten._fused_")),
    "multi-tensor": lambda r: r.phase == "optimizer" and r.op.startswith(("aten._foreach_", "aten._fused_")),
    "fused forward": lambda r: bool(r.fused) and r.phase == "forward",
    "fused backward": lambda r: bool(r.fused) and r.phase == "backward",
}

CASES = TORCHVISION + TIMM + HF + TRAINING
TARGETS = (*GPUS, CPU)

# Predictions known to crash, (case, target) -> why: strict xfails, so a fix shows up as an unexpected pass.
KNOWN_CRASHES: dict[tuple[str, str], str] = {}


def params() -> list[Any]:
    """One test per (model, device), a model's devices one after another (so its profile is counted once)."""
    out = []
    for case in CASES:
        for target in TARGETS:
            why = KNOWN_CRASHES.get((case.name, target))
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            out.append(pytest.param(case, target, id=f"{case.name}-{target}", marks=marks))
    return out


BY_NAME = {case.name: case for case in CASES}


@functools.lru_cache(maxsize=2)
def profiled(name: str) -> torchcost.Profile:
    case = BY_NAME[name]
    options = {"device": "meta", **case.options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torchcost.profile_spec(case.spec, **options)


@functools.cache
def device(name: str) -> torchcost.Hardware:
    return torchcost.hardware(name)


def check(prediction: torchcost.Prediction, profile: torchcost.Profile) -> None:
    predicted = [i for i, r in enumerate(profile.records) if profile.backward or r.phase == "forward"]
    assert math.isfinite(prediction.latency_s) and prediction.latency_s > 0
    assert len(prediction.ops) == len(predicted)
    assert sorted(op.index for op in prediction.ops) == predicted  # each record once
    assert all(math.isfinite(op.time_s) and op.time_s >= 0 for op in prediction.ops)
    assert math.isclose(math.fsum(op.time_s for op in prediction.ops), prediction.latency_s, rel_tol=1e-9)
    assert {op.bound for op in prediction.ops} <= BOUNDS


@pytest.mark.parametrize(("case", "target"), params())
def test_predict_never_crashes(case: Case, target: str) -> None:
    profile = profiled(case.name)
    for what in case.covers:
        assert any(map(COVERS[what], profile.records)), f"{case.name} has no {what} records"
    hardware = device(target)
    if target == CPU:
        check(torchcost.predict(profile, hardware), profile)
        return
    eager = torchcost.predict(profile, hardware)
    graphs = torchcost.predict(profile, hardware, execution="graphs")
    check(eager, profile)
    check(graphs, profile)
    assert graphs.latency_s <= eager.latency_s


def test_the_sample_is_broad() -> None:
    """Every torchvision classifier, and the timm and transformers samples the issue asks for."""
    assert len(TORCHVISION) == len(torchvision.models.list_models(module=torchvision.models)) >= 80
    assert len(TIMM) >= 25 and len(HF) >= 15
    assert len(BY_NAME) == len(CASES)  # ids are unique
    assert any(case.options.get("autocast") for case in TRAINING)
    assert any(case.options.get("channels_last") for case in TRAINING)
    assert {what for case in TRAINING for what in case.covers} == set(COVERS)
