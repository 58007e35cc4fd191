"""Measure on an NVIDIA H200 what torchcost predicts for it, case by case: error = predicted / measured - 1.

One prepared script for the GPU machine. Sections, most valuable first; a global time budget (``--budget``) stops
starting cases when it runs out, and every case it did not run is recorded as skipped:

1. gemm: ``F.linear(x, w)`` in bf16, the 42 shapes of ``gpu-truth/h200-gemm.json`` and some held-out shapes.
2. vision: the 22 torchvision models of ``gpu-truth/h200-torchvision.json`` and 17 others (torchvision and timm),
   batch 1 fp32 NCHW and batch 128 fp16 channels-last, forward under ``torch.inference_mode``.
3. llm: a Llama-3-8B-shaped model in bf16 with random weights, batch 1, 1024 tokens of context: the prefill, one
   eager decode step (transformers' forward, DynamicCache) and the same step replayed as a CUDA graph
   (StaticCache); predicted by ``torchcost.llm_profile``.
4. training: one AdamW step (forward, backward, ``optimizer.step()``, ``zero_grad``) of ViT-B/16 (batch 64) and
   GPT-2 (batch 8 x 1024 tokens) in bf16, then in fp32 if time is left.

Timing: CUDA events around each call, synchronised after each, median of the timed calls after warm-ups (the
counts are in ``REPEATS``; the JSON states each section's conditions). Prediction: each case counted on meta by
``torchcost.profile`` (or ``llm_profile``), then ``torchcost.predict(profile, torchcost.hardware("h200"))``, eager
unless the case says graphs. Roles: "fitted on" (in the truth files and in the half ``bench/fit_gpu.py`` fits the
constants on), "held out (truth)" (in the truth files, held out of that fit), "held out (new)" (never measured
before). A case whose prediction fails keeps its measurement (``predicted_s`` null, the reason in its notes).

    PYTHONPATH=src python3 bench/gpu_validation.py --out $OUT                  # the GPU machine: about 5 minutes
    .venv/bin/python bench/gpu_validation.py --device cpu --quick --out /tmp/gv    # a smoke test on a CPU

It writes ``OUT/gpu-validation.json`` (``--out bench/results`` by default) after every case, so a run that is
stopped keeps what it measured; ``bench/report.py`` renders it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import gc
import importlib.metadata
import inspect
import json
import os
import platform
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import torchcost
import torchcost.llm_models
from torchcost.records import Profile
from torchcost.step import default_loss


def process_age_s() -> float:
    """Seconds since this process started (Linux's /proc; 0 elsewhere), so that the budget counts the imports."""
    try:
        started_ticks = float(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
    return age if 0 <= age < 120 else 0.0  # a sandbox's /proc may not say (importing never takes minutes)


STARTED = time.perf_counter() - process_age_s()  # the budget counts from the process's start
HERE = Path(__file__).resolve().parent
TRUTH_DIRS = (HERE / "data" / "gpu-truth", HERE.parent.parent / "shared" / "gpu-truth")
RESULT_NAME = "gpu-validation.json"
HARDWARE = "h200"

SECTIONS = ("gemm", "vision", "llm", "training")
# The share of the budget a section leaves to the sections after it: it starts no case with less than that left
KEEP_FOR_LATER = {"gemm": 0.45, "vision": 0.2, "llm": 0.06, "training": 0.0}
GRACE_S = 10  # past the budget, a watchdog stops the case in progress and writes what was measured

FITTED, TRUTH_HELD_OUT, NEW = "fitted on", "held out (truth)", "held out (new)"
ROLES = (FITTED, TRUTH_HELD_OUT, NEW)

# Held-out GEMM shapes (M, K, N): other LLM widths (Llama-2 7B/13B, Qwen), a non-power-of-two M, square ones
NEW_GEMMS = [
    (1, 8192, 8192), (4, 5120, 13824), (16, 2048, 8192), (64, 4096, 11008), (96, 12288, 4096), (256, 3072, 3072),
    (1000, 4096, 4096), (1024, 1024, 1024), (2048, 5120, 5120), (4096, 4096, 1024), (8192, 8192, 8192),
    (16384, 2048, 2048),
]  # fmt: skip
# Held-out models: torchvision's and timm's (pretrained=False), in pairs of the two so that a cut run keeps both
NEW_VISION = [
    "torchvision:vit_b_16", "timm:vit_base_patch16_224", "torchvision:swin_s", "timm:deit_small_patch16_224",
    "torchvision:efficientnet_b3", "timm:convnext_tiny", "torchvision:regnet_y_8gf", "timm:efficientnet_b0",
    "torchvision:resnet101", "timm:resnet50d", "torchvision:convnext_small", "timm:regnetz_b16",
    "torchvision:vit_b_32", "timm:mobilevitv2_100", "torchvision:shufflenet_v2_x2_0", "torchvision:mnasnet0_5",
    "torchvision:resnet34",
]  # fmt: skip
IMAGE = 224  # input height and width of every vision case
LLM_PRESET = "llama-3-8b"
LLM_CONTEXT = 1024
LLM_FALLBACK_LAYERS = 8  # when the whole model cannot be built
STATIC_SLACK = 8  # StaticCache slots beyond the context (the decode step's own token, rounded up to 8)

QUICK_GEMMS = [(1, 4096, 4096), (64, 256, 512)]
QUICK_VISION = ["torchvision:resnet18", "timm:resnet10t"]
QUICK_LLM_CONTEXT = 64


@dataclass(frozen=True)
class Repeats:
    """Warm-up calls, then timed calls: at least ``runs``, and more until ``min_time_s`` is spent (at most
    ``max_runs``)."""

    warmup: int
    runs: int
    min_time_s: float = 0.0
    max_runs: int = 0

    def describe(self) -> str:
        more = f" (and at least {self.min_time_s} s of them, at most {self.max_runs})" if self.min_time_s else ""
        return f"{self.warmup} warm-up call{'s' * (self.warmup != 1)}, median of {self.runs} timed calls{more}"


REPEATS = {
    "gemm": Repeats(3, 30),
    "vision": Repeats(5, 20, min_time_s=0.4, max_runs=200),
    "prefill": Repeats(3, 10),
    "decode": Repeats(5, 20),
    "replay": Repeats(5, 30),
    "training": Repeats(3, 10),
}
QUICK_REPEATS = Repeats(1, 3)


@dataclass(frozen=True)
class VisionConfig:
    label: str
    batch: int
    dtype: torch.dtype
    channels_last: bool
    image: int = IMAGE  # height and width


VISION_CONFIGS = (
    VisionConfig("b1-fp32", 1, torch.float32, False),
    VisionConfig("b128-fp16-cl", 128, torch.float16, True),
)
QUICK_VISION_CONFIGS = (
    VisionConfig("b1-fp32", 1, torch.float32, False, image=64),
    VisionConfig("b2-fp16-cl", 2, torch.float16, True, image=64),
)
DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@dataclass(frozen=True)
class Settings:
    device: torch.device
    quick: bool
    budget_s: float

    def repeats(self, section: str) -> Repeats:
        return QUICK_REPEATS if self.quick else REPEATS[section]


def conditions(settings: Settings) -> dict[str, str]:
    """What each section measured and predicted, stated beside its figures in the JSON."""
    timer = (
        "CUDA events around each call, synchronised after each"
        if settings.device.type == "cuda"
        else ("time.perf_counter around each call (CPU smoke test)")
    )
    r = settings.repeats
    predicted = 'predicted: counted on meta, then torchcost.predict(p, torchcost.hardware("h200"))'
    vision = "; ".join(
        f"{c.label}: batch {c.batch}, {DTYPE_NAMES[c.dtype]} model and input, "
        f"{'both channels_last' if c.channels_last else 'NCHW'}, {c.image}x{c.image}"
        for c in (QUICK_VISION_CONFIGS if settings.quick else VISION_CONFIGS)
    )
    context = QUICK_LLM_CONTEXT if settings.quick else LLM_CONTEXT
    return {
        "gemm": f"torch.nn.functional.linear(x, w), x (M, K) and w (N, K) bf16 random, no bias, tensors without grad; "
        f"{timer}; {r('gemm').describe()}; {predicted} (eager) of a one-module wrapper around F.linear",
        "vision": "forward of a model with random weights (torchvision, or timm with pretrained=False), under "
        f"torch.inference_mode, eager, torch.backends.cudnn.benchmark = True; {vision} (fp32 convolutions may use "
        f"TF32: PyTorch's default); {timer}; {r('vision').describe()}; {predicted} (eager) of "
        "torchcost.profile(model, x, device='meta', dtype=..., channels_last=...)",
        "llm": f"transformers' LlamaForCausalLM with random bf16 weights built on the device, batch 1, {context} "
        "tokens of context, torch.inference_mode, the attention implementation transformers picks (sdpa); "
        "prefill: the prompt into a new DynamicCache; decode eager: one token with a DynamicCache holding the "
        "context (cropped back to it before each step); decode graphs: the same step with a StaticCache, captured "
        f"once as a torch.cuda.CUDAGraph and timed as graph.replay(); {timer}; prefill: {r('prefill').describe()}; "
        f"decode eager: {r('decode').describe()}; decode graphs: {r('replay').describe()}; predicted: "
        "torchcost.llm_profile(prompt_len=context, gen_len=1, batch=1, hardware 'h200'): prefill.eager_s, "
        "decode[0].eager_s, decode[0].graphs_s",
        "training": "one step: forward, loss = the sum of the outputs that require grad (torchcost.step."
        "default_loss), backward, torch.optim.AdamW(model.parameters()) step (PyTorch's default implementation: "
        f"foreach on CUDA), zero_grad(set_to_none=True); the model cast with model.to(dtype); {timer}; "
        f"{r('training').describe()}; {predicted} (eager) of torchcost.profile(model, inputs, optimizer='adamw', "
        "dtype=..., device='meta')",
    }


# ---------------------------------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    median_s: float
    runs: int
    p10_s: float
    p90_s: float

    @staticmethod
    def of(samples: list[float]) -> Timing:
        ordered = sorted(samples)
        p10, p90 = (ordered[round(q * (len(ordered) - 1))] for q in (0.1, 0.9))
        return Timing(statistics.median(ordered), len(ordered), p10, p90)


class Clock:
    """Times one call: CUDA events around it, synchronised after it, on a GPU; ``perf_counter`` on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def once(self, call: Callable[[], Any]) -> float:
        if not self.cuda:
            began = time.perf_counter()
            call()
            return time.perf_counter() - began
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end)) / 1e3

    def measure(self, call: Callable[[], Any], repeats: Repeats, before: Callable[[], None] | None = None) -> Timing:
        """Warm up, then time ``call`` repeatedly; ``before`` runs ahead of each call, untimed."""
        for _ in range(repeats.warmup):
            if before is not None:
                before()
            call()
        self.sync()
        samples: list[float] = []
        while len(samples) < repeats.runs or (sum(samples) < repeats.min_time_s and len(samples) < repeats.max_runs):
            if before is not None:
                before()
                self.sync()
            samples.append(self.once(call))
        return Timing.of(samples)


# ------------------------------------------------------------------------------------------------- cases and plan


@dataclass(frozen=True)
class Outcome:
    timing: Timing
    predicted_s: float | None  # None: torchcost could not predict it (the notes say why); the measurement stays
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Item:
    """One case before it runs: what it is, and how to measure and predict it given its group's shared state."""

    section: str
    name: str
    config: dict[str, Any]
    role: str
    run: Callable[[Any, Clock], Outcome]
    truth_s: float | None = None


@dataclass
class Group:
    """Cases that share a set-up (a model built once), run in order."""

    items: list[Item]
    setup: Callable[[], Any] = lambda: None

    @property
    def section(self) -> str:
        return self.items[0].section


class OutOfTime(BaseException):
    """Raised by the watchdog past the budget (a BaseException, so no case's handler swallows it)."""


@dataclass(frozen=True)
class Truth:
    """The shared H200 measurements this run repeats: GEMM shape -> seconds, (model spec, config) -> seconds."""

    gemm: dict[tuple[int, int, int], float]
    vision: dict[tuple[str, str], float]
    source: str | None

    def models(self) -> list[str]:
        return sorted({spec for spec, _ in self.vision})

    def role(self, spec: str) -> str:
        """bench/fit_gpu.py fits on every other model in name order and holds out the rest."""
        models = self.models()
        if spec not in models:
            return NEW
        return TRUTH_HELD_OUT if models.index(spec) % 2 else FITTED


def load_truth(explicit: Path | None) -> Truth:
    for folder in (explicit,) if explicit else TRUTH_DIRS:
        if (folder / "h200-gemm.json").exists() and (folder / "h200-torchvision.json").exists():
            gemm_rows = json.loads((folder / "h200-gemm.json").read_text())["rows"]
            vision_rows = json.loads((folder / "h200-torchvision.json").read_text())["rows"]
            return Truth(
                {(r["m"], r["k"], r["n"]): r["measured_s"] for r in gemm_rows},
                {(r["model"], r["config"]): r["measured_s"] for r in vision_rows},
                str(folder),
            )
    print(f"no gpu-truth files in {', '.join(map(str, TRUTH_DIRS))}: the truth cases are left out")
    return Truth({}, {}, None)


_H200: torchcost.Hardware | None = None


def prediction(count: Callable[[], Profile]) -> tuple[float | None, dict[str, Any]]:
    """The eager latency torchcost predicts on the H200 for what ``count`` profiles, with the ops it counted; or
    None and why, so that a measurement stays when its prediction fails."""
    global _H200
    _H200 = _H200 or torchcost.hardware(HARDWARE)
    try:
        counted = count()
        return torchcost.predict(counted, _H200).latency_s, {"ops": len(counted.records)}
    except Exception as error:
        return None, {"prediction_error": f"{type(error).__name__}: {error}"[:400]}


# ----------------------------------------------------------------------------------------------------------- gemm


class Linear(nn.Module):
    """``F.linear(x, w)``, as the GEMM table measured it, inside the one module call a profile needs (the same
    wrapper as bench/fit_gpu.py's)."""

    def __init__(self, n: int, k: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, k, dtype=torch.bfloat16, device="meta"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


def gemm_item(m: int, k: int, n: int, role: str, truth_s: float | None, settings: Settings) -> Item:
    def run(_: None, clock: Clock) -> Outcome:
        x_meta = torch.empty(m, k, dtype=torch.bfloat16, device="meta")
        predicted, notes = prediction(lambda: torchcost.profile(Linear(n, k), x_meta, device="meta"))
        x = torch.randn(m, k, dtype=torch.bfloat16, device=settings.device)  # (M, K)
        w = torch.randn(n, k, dtype=torch.bfloat16, device=settings.device)  # (N, K)
        timing = clock.measure(lambda: F.linear(x, w), settings.repeats("gemm"))
        return Outcome(timing, predicted, notes)

    return Item("gemm", f"gemm {m}x{k}x{n}", {"m": m, "k": k, "n": n, "dtype": "bf16"}, role, run, truth_s)


def gemm_groups(truth: Truth, settings: Settings) -> list[Group]:
    if settings.quick:
        shapes = [(s, FITTED if s in truth.gemm else NEW) for s in QUICK_GEMMS]
    else:
        shapes = [(s, FITTED) for s in truth.gemm] + [(s, NEW) for s in NEW_GEMMS]
    return [Group([gemm_item(*shape, role, truth.gemm.get(shape), settings) for shape, role in shapes])]


# --------------------------------------------------------------------------------------------------------- vision


def build_vision(spec: str, device: torch.device) -> nn.Module:
    """A torchvision or timm classifier with random weights, built on ``device`` (on the CPU and moved, for a
    builder that mixes devices)."""
    family, name = spec.split(":", 1)

    def make() -> nn.Module:
        if family == "timm":
            import timm

            built: nn.Module = timm.create_model(name, pretrained=False)
            return built
        import torchvision

        found: nn.Module = torchvision.models.get_model(name)
        return found

    try:
        with torch.device(device):
            model = make()
    except Exception:
        model = make().to(device)
    return model.eval()


def vision_item(spec: str, config: VisionConfig, role: str, truth_s: float | None, settings: Settings) -> Item:
    def run(model: nn.Module, clock: Clock) -> Outcome:
        model.to(dtype=config.dtype)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        shape = (config.batch, 3, config.image, config.image)
        predicted, notes = prediction(
            lambda: torchcost.profile(
                model,
                torch.empty(shape, device="meta"),
                device="meta",
                dtype=None if config.dtype == torch.float32 else config.dtype,
                channels_last=config.channels_last,
            )
        )
        x = torch.randn(shape, device=settings.device, dtype=config.dtype)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            timing = clock.measure(lambda: model(x), settings.repeats("vision"))
        return Outcome(timing, predicted, notes)

    layout = "channels_last" if config.channels_last else "NCHW"
    described = {
        "model": spec,
        "config": config.label,
        "batch": config.batch,
        "dtype": DTYPE_NAMES[config.dtype],
        "layout": layout,
        "image": config.image,
    }
    return Item("vision", f"{spec.removeprefix('torchvision:')} {config.label}", described, role, run, truth_s)


def vision_order(truth: Truth, settings: Settings) -> list[str]:
    """Truth models and new ones in turn, so that a run cut short keeps some of each."""
    if settings.quick:
        return QUICK_VISION
    old, new = truth.models(), list(NEW_VISION)
    mixed = [spec for pair in zip(old, new, strict=False) for spec in pair]
    return mixed + old[len(new) :] + new[len(old) :]


def truth_of(truth: Truth, spec: str, config: VisionConfig) -> float | None:
    """The shared measurement of the same case (none for the smoke test's smaller images)."""
    return truth.vision.get((spec, config.label)) if config.image == IMAGE else None


def vision_groups(truth: Truth, settings: Settings) -> list[Group]:
    configs = QUICK_VISION_CONFIGS if settings.quick else VISION_CONFIGS
    groups = []
    for spec in vision_order(truth, settings):
        items = [vision_item(spec, c, truth.role(spec), truth_of(truth, spec, c), settings) for c in configs]
        groups.append(Group(items, setup=functools.partial(build_vision, spec, settings.device)))
    return groups


# ------------------------------------------------------------------------------------------------------------ llm


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


@dataclass
class LlamaRig:
    """The model built once for the LLM cases, its inputs and torchcost's prediction for it."""

    model: Any  # a transformers causal LM
    context: int
    prompt: torch.Tensor  # (1, context) token ids
    token: torch.Tensor  # (1, 1): the decode step's token
    predicted: Any  # torchcost.LLMProfile, or None when llm_profile failed
    layers: int
    notes: dict[str, Any]


def llama_config(settings: Settings, layers: int | None = None) -> Any:
    import transformers

    if settings.quick:  # a tiny Llama: the code paths, not the figures
        return transformers.LlamaConfig(
            hidden_size=256,
            intermediate_size=512,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=1000,
            max_position_embeddings=2048,
        )
    config = torchcost.llm_models.preset_config(LLM_PRESET)
    if layers is not None:
        config.num_hidden_layers = layers
    return config


def build_llama(config: Any, device: torch.device) -> nn.Module:
    """Random bf16 weights, initialised on the device itself (fast)."""
    import transformers

    with torch.device(device), default_dtype(torch.bfloat16):
        model = transformers.AutoModelForCausalLM.from_config(config)
    built: nn.Module = model.to(torch.bfloat16).eval()
    return built


def llama_setup(settings: Settings) -> LlamaRig:
    config, built = llama_config(settings), "the whole model"
    try:
        model = build_llama(config, settings.device)
    except Exception as error:  # out of memory, or an API this transformers lacks for the full size
        gc.collect()
        if settings.device.type == "cuda":
            torch.cuda.empty_cache()
        config = llama_config(settings, LLM_FALLBACK_LAYERS)
        built = f"{LLM_FALLBACK_LAYERS} of 32 layers: the whole model failed ({type(error).__name__}: {error})"[:300]
        model = build_llama(config, settings.device)
    context = QUICK_LLM_CONTEXT if settings.quick else LLM_CONTEXT
    if settings.quick or config.num_hidden_layers != 32:
        import transformers

        with torch.device("meta"):
            counted: Any = transformers.AutoModelForCausalLM.from_config(config)
    else:
        counted = LLM_PRESET
    notes = {
        "layers": config.num_hidden_layers,
        "built": built,
        "attention": getattr(model.config, "_attn_implementation", None),
    }
    try:
        predicted = torchcost.llm_profile(
            counted, prompt_len=context, gen_len=1, batch=1, hardware_name=HARDWARE, sweep=False
        )
    except Exception as error:  # the measurements stay worth having
        predicted, notes["prediction_error"] = None, f"{type(error).__name__}: {error}"[:400]
    prompt = torch.randint(0, config.vocab_size, (1, context), device=settings.device)
    token = torch.randint(0, config.vocab_size, (1, 1), device=settings.device)
    return LlamaRig(model, context, prompt, token, predicted, config.num_hidden_layers, notes)


def dynamic_cache(rig: LlamaRig) -> Any:
    import transformers

    return transformers.DynamicCache(config=rig.model.config)


def trim(cache: Any, length: int) -> None:
    """Crop a DynamicCache back to ``length`` tokens (a negative ``crop`` removes that many, in every version)."""
    extra = int(cache.get_seq_length()) - length
    if extra > 0:
        cache.crop(-extra)


def static_step(rig: LlamaRig) -> tuple[Callable[[], torch.Tensor], Callable[[], None], int]:
    """A decode step of static shapes: a StaticCache filled with the context, the token at position ``context``.
    Returns the step (its logits), ``rewind`` (puts the cache's write position back to ``context``: newer
    transformers keep it in the cache as a tensor the step advances) and the cache length."""
    import transformers

    length = rig.context + STATIC_SLACK
    cache = transformers.StaticCache(config=rig.model.config, max_cache_len=length)
    rig.model(rig.prompt, past_key_values=cache, use_cache=True)
    position = torch.full((1, 1), rig.context, dtype=torch.long, device=rig.prompt.device)
    kwargs: dict[str, Any] = {
        "input_ids": rig.token,
        "position_ids": position,
        "past_key_values": cache,
        "use_cache": True,
    }
    if "cache_position" in inspect.signature(rig.model.forward).parameters:  # older transformers
        kwargs["cache_position"] = position[0]
    counters = [
        layer.cumulative_length
        for layer in getattr(cache, "layers", [])
        if isinstance(getattr(layer, "cumulative_length", None), torch.Tensor)
    ]

    def rewind() -> None:
        for counter in counters:
            counter.fill_(rig.context)

    def step() -> torch.Tensor:
        logits: torch.Tensor = rig.model(**kwargs).logits
        return logits

    return step, rewind, length


def as_graph(step: Callable[[], torch.Tensor], rewind: Callable[[], None]) -> tuple[Callable[[], Any], torch.Tensor]:
    """``step`` captured as a CUDA graph (after warm-ups on a side stream): its replay and its output tensor."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            rewind()
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    rewind()
    with torch.cuda.graph(graph):
        out = step()
    return graph.replay, out


def llm_items(settings: Settings) -> list[Item]:
    context = QUICK_LLM_CONTEXT if settings.quick else LLM_CONTEXT
    base = {"model": "tiny llama" if settings.quick else LLM_PRESET, "batch": 1, "dtype": "bf16", "context": context}

    def prefill(rig: LlamaRig, clock: Clock) -> Outcome:
        with torch.inference_mode():
            timing = clock.measure(
                lambda: rig.model(rig.prompt, past_key_values=dynamic_cache(rig), use_cache=True),
                settings.repeats("prefill"),
            )
        return Outcome(timing, rig.predicted and rig.predicted.prefill.eager_s, dict(rig.notes))

    def decode_eager(rig: LlamaRig, clock: Clock) -> Outcome:
        with torch.inference_mode():
            cache = dynamic_cache(rig)
            rig.model(rig.prompt, past_key_values=cache, use_cache=True)
            timing = clock.measure(
                lambda: rig.model(rig.token, past_key_values=cache, use_cache=True),
                settings.repeats("decode"),
                before=lambda: trim(cache, rig.context),
            )
            context = int(cache.get_seq_length()) - 1
        predicted = rig.predicted and rig.predicted.decode[0].eager_s
        return Outcome(timing, predicted, {**rig.notes, "context_at_last_step": context})

    def decode_graphs(rig: LlamaRig, clock: Clock) -> Outcome:
        with torch.inference_mode():
            step, rewind, length = static_step(rig)
            notes: dict[str, Any] = {**rig.notes, "static_cache_length": length}
            if clock.cuda:
                replay, out = as_graph(step, rewind)
                timing = clock.measure(replay, settings.repeats("replay"), before=rewind)
                rewind()
                replay()
                replayed = out.float().clone()
                rewind()
                notes["graph_vs_eager_max_abs_diff"] = (replayed - step().float()).abs().max().item()
            else:  # no CUDA graphs on a CPU: the static step eagerly, to exercise the code path
                timing = clock.measure(step, settings.repeats("replay"), before=rewind)
                notes["cpu"] = "no CUDA graph on a CPU: the static-cache step timed eagerly"
        return Outcome(timing, rig.predicted and rig.predicted.decode[0].graphs_s, notes)

    return [
        Item(
            "llm",
            f"{base['model']} prefill {context} (eager)",
            {**base, "phase": "prefill", "execution": "eager", "tokens": context},
            NEW,
            prefill,
        ),
        Item(
            "llm",
            f"{base['model']} decode @{context} (eager)",
            {**base, "phase": "decode", "execution": "eager", "cache": "DynamicCache"},
            NEW,
            decode_eager,
        ),
        Item(
            "llm",
            f"{base['model']} decode @{context} (CUDA graph)",
            {**base, "phase": "decode", "execution": "graphs", "cache": "StaticCache"},
            NEW,
            decode_graphs,
        ),
    ]


def llm_groups(settings: Settings) -> list[Group]:
    return [Group(llm_items(settings), setup=lambda: llama_setup(settings))]


# ------------------------------------------------------------------------------------------------------- training


def training_model(kind: str, settings: Settings) -> tuple[nn.Module, tuple[torch.Tensor, ...], dict[str, Any]]:
    """The model (on the device, fp32) and its inputs, on meta (their real ones are made alike on the device)."""
    if kind == "vit_b_16":
        import torchvision

        with torch.device(settings.device):
            if settings.quick:
                model: nn.Module = torchvision.models.VisionTransformer(64, 16, 2, 2, 64, 128)
            else:
                model = torchvision.models.vit_b_16()
        batch, image = (2, 64) if settings.quick else (64, IMAGE)
        return model, (torch.empty(batch, 3, image, image, device="meta"),), {}
    import transformers

    config = transformers.GPT2Config()
    if settings.quick:  # a tiny GPT-2: the code paths, not the figures
        config = transformers.GPT2Config(
            n_layer=2, n_embd=64, n_head=2, vocab_size=1000, bos_token_id=0, eos_token_id=0
        )
    with torch.device(settings.device):
        model = transformers.GPT2LMHeadModel(config)
    batch, tokens = (2, 64) if settings.quick else (8, 1024)
    return model, (torch.zeros(batch, tokens, dtype=torch.long, device="meta"),), {"use_cache": False}


def real_inputs(inputs: tuple[torch.Tensor, ...], dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    made = []
    for t in inputs:
        if t.is_floating_point():
            made.append(torch.randn(t.shape, dtype=dtype, device=device))
        else:
            made.append(torch.randint(0, 1000, t.shape, device=device))
    return made


def training_item(kind: str, dtype: torch.dtype, settings: Settings) -> Item:
    def run(_: None, clock: Clock) -> Outcome:
        model, inputs, kwargs = training_model(kind, settings)
        model.to(dtype).train()
        predicted, notes = prediction(
            lambda: torchcost.profile(model, *inputs, optimizer="adamw", dtype=dtype, device="meta", **kwargs)
        )
        x = real_inputs(inputs, dtype, settings.device)
        optimizer = torch.optim.AdamW(model.parameters())

        def step() -> None:
            default_loss(model(*x, **kwargs)).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        timing = clock.measure(step, settings.repeats("training"))
        return Outcome(timing, predicted, notes)

    shape = list(training_shape(kind, settings))
    name = f"{kind} train b{shape[0]} {DTYPE_NAMES[dtype]}"
    config = {"model": kind, "input": shape, "dtype": DTYPE_NAMES[dtype], "optimizer": "AdamW (default)"}
    return Item("training", name, config, NEW, run)


def training_shape(kind: str, settings: Settings) -> tuple[int, ...]:
    if kind == "vit_b_16":
        return (2, 3, 64, 64) if settings.quick else (64, 3, IMAGE, IMAGE)
    return (2, 64) if settings.quick else (8, 1024)


def training_groups(settings: Settings) -> list[Group]:
    kinds = ("vit_b_16", "gpt2")
    order = [(k, torch.bfloat16) for k in kinds] + [(k, torch.float32) for k in kinds]  # fp32 if time is left
    return [Group([training_item(kind, dtype, settings)]) for kind, dtype in order]


# --------------------------------------------------------------------------------------------------------- runner


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class Runner:
    """Runs the groups in order within the budget, records every case (measured, failed or skipped) and rewrites
    the JSON after each."""

    def __init__(self, settings: Settings, out: Path, environment: dict[str, Any]) -> None:
        self.settings, self.out, self.environment = settings, out, environment
        self.clock = Clock(settings.device)
        self.cases: list[dict[str, Any]] = []
        self.done: set[int] = set()

    def left_s(self) -> float:
        return self.settings.budget_s - (time.perf_counter() - STARTED)

    def allows(self, section: str) -> bool:
        return self.left_s() > KEEP_FOR_LATER[section] * self.settings.budget_s

    def run(self, groups: list[Group]) -> None:
        try:
            for group in groups:
                self.run_group(group)
        except OutOfTime:
            print("out of time: the watchdog stopped the case in progress")
        for group in groups:  # whatever did not run
            for item in group.items:
                if id(item) not in self.done:
                    self.record(item, "skipped", note="time budget spent")
        self.write()

    def run_group(self, group: Group) -> None:
        if not self.allows(group.section):
            for item in group.items:
                self.record(item, "skipped", note="time budget spent")
            return
        try:
            state = group.setup()
        except Exception as error:
            for item in group.items:
                self.record(item, "failed", note=f"set-up: {type(error).__name__}: {error}"[:400])
            free_memory(self.settings.device)
            return
        for item in group.items:
            if not self.allows(item.section):
                self.record(item, "skipped", note="time budget spent")
                continue
            self.attempt(item, state)
        del state
        free_memory(self.settings.device)

    def attempt(self, item: Item, state: Any) -> None:
        try:
            outcome = item.run(state, self.clock)
        except Exception as error:  # one case that fails does not end the run; it is reported
            self.record(item, "failed", note=f"{type(error).__name__}: {error}"[:400])
            free_memory(self.settings.device)
            return
        self.record(item, "ok", outcome)

    def record(self, item: Item, status: str, outcome: Outcome | None = None, note: str = "") -> None:
        self.done.add(id(item))
        case = case_row(item, status, outcome, note)
        self.cases.append(case)
        print(progress_line(case, time.perf_counter() - STARTED), flush=True)
        self.write()

    def write(self) -> None:
        report = {
            "environment": self.environment,
            "conditions": conditions(self.settings),
            "elapsed_s": time.perf_counter() - STARTED,
            "summary": summarise(self.cases),
            "cases": self.cases,
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / RESULT_NAME).write_text(json.dumps(report, indent=1) + "\n")


def case_row(item: Item, status: str, outcome: Outcome | None, note: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": item.name,
        "section": item.section,
        "config": item.config,
        "role": item.role,
        "in_truth": item.role != NEW,
        "status": status,
    }
    if outcome is not None:
        t, predicted = outcome.timing, outcome.predicted_s
        row.update(
            measured_s=t.median_s,
            predicted_s=predicted,
            error=None if predicted is None else predicted / t.median_s - 1,
            runs=t.runs,
            p10_s=t.p10_s,
            p90_s=t.p90_s,
        )
        if item.truth_s is not None:
            row.update(truth_s=item.truth_s, vs_truth=t.median_s / item.truth_s - 1)
        row["notes"] = outcome.notes
    if note:
        row["note"] = note
    return row


def progress_line(case: dict[str, Any], elapsed: float) -> str:
    head = f"[{elapsed:5.0f} s] {case['section']:8} {case['name']:44}"
    if case["status"] != "ok":
        return f"{head} {case['status']}: {case.get('note', '')[:120]}"
    measured = f"{head} measured {case['measured_s'] * 1e3:9.3f} ms"
    if case["predicted_s"] is None:
        return f"{measured}, no prediction: {case['notes'].get('prediction_error', '')[:100]}"
    truth = f", truth {case['vs_truth']:+.0%}" if "vs_truth" in case else ""
    return f"{measured}, predicted {case['predicted_s'] * 1e3:9.3f} ms, {case['error']:+.0%}{truth}"


# -------------------------------------------------------------------------------------------------------- summary


def stats(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Median |error| and the shares within 10, 20 and 25% over the measured cases."""
    errors = [c["error"] for c in cases if c["status"] == "ok" and c["error"] is not None]
    absolute = [abs(e) for e in errors]
    within = {
        bound: sum(a <= bound / 100 for a in absolute) / len(absolute) if absolute else None for bound in (10, 20, 25)
    }
    truth = [abs(c["vs_truth"]) for c in cases if c["status"] == "ok" and "vs_truth" in c]
    return {
        "cases": len(errors),
        "median_abs_error": statistics.median(absolute) if absolute else None,
        "within_10": within[10],
        "within_20": within[20],
        "within_25": within[25],
        "median_ratio": statistics.median(1 + e for e in errors) if errors else None,
        "median_abs_vs_truth": statistics.median(truth) if truth else None,
        "unpredicted": sum(c["status"] == "ok" and c["error"] is None for c in cases),  # measured, not predicted
        "failed": sum(c["status"] == "failed" for c in cases),
        "skipped": sum(c["status"] == "skipped" for c in cases),
    }


def summarise(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per section: all its cases, then each role present."""
    summary = {}
    for section in SECTIONS:
        own = [c for c in cases if c["section"] == section]
        if not own:
            continue
        summary[section] = {"all": stats(own)}
        for role in ROLES:
            if any(c["role"] == role for c in own):
                summary[section][role] = stats([c for c in own if c["role"] == role])
    return summary


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


SHOWN = (("median |error|", "median_abs_error", ".1%"), ("within 10%", "within_10", ".0%"),
         ("within 20%", "within_20", ".0%"), ("within 25%", "within_25", ".0%"),
         ("median ratio", "median_ratio", ".2f"), ("measured vs truth", "median_abs_vs_truth", ".1%"),
         ("failed", "failed", "d"), ("skipped", "skipped", "d"))  # fmt: skip


def show(summary: dict[str, dict[str, Any]], environment: dict[str, Any]) -> None:
    """The per-section summary as a table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"torchcost on {environment.get('gpu', environment['device'])}: predicted / measured - 1")
    table.add_column("section: role")
    for title in ("cases", *(title for title, _, _ in SHOWN)):
        table.add_column(title, justify="right")
    for section, groups in summary.items():
        for role, s in groups.items():
            table.add_row(f"{section}: {role}", str(s["cases"]), *(fmt(s[key], spec) for _, key, spec in SHOWN))
    Console(width=160).print(table)


# ---------------------------------------------------------------------------------------------------- environment


def command_output(*command: str) -> str | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def host_cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchcost": torchcost.__version__,
    }
    for name in ("torchvision", "timm", "transformers", "numpy"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def environment(settings: Settings, truth: Truth) -> dict[str, Any]:
    env: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": settings.device.type,
        "quick": settings.quick,
        "versions": versions(),
        "host_cpu": host_cpu(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "budget_s": settings.budget_s,
        "truth": truth.source,
        "predicted_on": HARDWARE,
        "git_commit": command_output("git", "-C", str(HERE), "rev-parse", "--short", "HEAD"),
        "tf32": {
            "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        },
    }
    if settings.device.type == "cuda":
        properties = torch.cuda.get_device_properties(settings.device)
        env.update(
            gpu=properties.name,
            sms=properties.multi_processor_count,
            gpu_memory_bytes=properties.total_memory,
            l2_bytes=getattr(properties, "L2_cache_size", None),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            driver=command_output("nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
        )
    return env


# ----------------------------------------------------------------------------------------------------------- main


def plan(sections: list[str], truth: Truth, settings: Settings) -> list[Group]:
    builders: dict[str, Callable[[], list[Group]]] = {
        "gemm": lambda: gemm_groups(truth, settings),
        "vision": lambda: vision_groups(truth, settings),
        "llm": lambda: llm_groups(settings),
        "training": lambda: training_groups(settings),
    }
    return [group for section in SECTIONS if section in sections for group in builders[section]()]


def start_watchdog(seconds: float) -> None:
    def expire(signum: int, frame: Any) -> None:
        raise OutOfTime

    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, expire)
        signal.alarm(max(1, int(seconds)))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "results", help=f"folder for {RESULT_NAME}")
    parser.add_argument("--budget", type=float, default=None, help="seconds (default 330; 60 with --quick)")
    parser.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu (a smoke test)")
    parser.add_argument("--quick", action="store_true", help="a few tiny cases, to exercise the code paths")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="a comma-separated subset, in any order")
    parser.add_argument("--truth", type=Path, default=None, help="folder of the h200-*.json truth files")
    return parser.parse_args()


def main() -> None:
    args = parse()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; for a smoke test: --device cpu --quick")
    settings = Settings(device, args.quick, args.budget or (60.0 if args.quick else 330.0))
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    truth = load_truth(args.truth)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; use {', '.join(SECTIONS)}")
    env = environment(settings, truth)
    runner = Runner(settings, args.out, env)
    start_watchdog(settings.budget_s + GRACE_S - (time.perf_counter() - STARTED))
    runner.run(plan(sections, truth, settings))
    if hasattr(signal, "SIGALRM"):
        signal.alarm(0)
    show(summarise(runner.cases), env)
    print(f"wrote {args.out / RESULT_NAME} in {time.perf_counter() - STARTED:.0f} s")


if __name__ == "__main__":
    main()
