"""Random configurations of each op class, in the ranges that models' layers take, as calls ready to count and
time: a convolution of some channels, kernel and stride at some batch and size, a matrix product of some M, N
and K, a pointwise op on so many elements... Each draws its sizes log-uniformly under a FLOP budget, so that
small and large ops are both sampled and none takes long on a CPU.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

MAX_FLOPS = 2e9  # per sampled op: under about 0.1 s on two cores
MAX_ELEMENTS = 1 << 23  # per tensor of a memory-bound op (32 MB of fp32)


@dataclass(frozen=True)
class Sample:
    """One sampled call of an op class: ``call()`` runs it on tensors made in advance."""

    op_class: str
    call: Callable[[], Any]
    label: str  # what it is, for the calibration's details


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def _conv(rng: random.Random, depthwise: bool) -> Sample:
    batch = rng.choice([1, 1, 2, 4, 8])
    size = rng.choice([7, 14, 28, 56, 112])
    kernel, stride = rng.choice([1, 3, 3, 5, 7]), rng.choice([1, 1, 2])
    if depthwise:
        per_group = rng.choice([1, 1, 1, 2, 4, 8, 16])
        channels = per_group * max(4, _log_uniform(rng, 8, 960) // per_group)  # at least 4 groups
        groups, out_channels, kernel = channels // per_group, channels, rng.choice([3, 3, 5, 7])
    else:
        channels, out_channels, groups = _log_uniform(rng, 3, 1024), _log_uniform(rng, 8, 1024), 1
    out_size = (size + 2 * (kernel // 2) - kernel) // stride + 1
    while 2 * batch * out_channels * out_size**2 * (channels // groups) * kernel**2 > MAX_FLOPS and size > 7:
        size //= 2
        out_size = (size + 2 * (kernel // 2) - kernel) // stride + 1
    x = torch.randn(batch, channels, size, size)
    w, b = torch.randn(out_channels, channels // groups, kernel, kernel), torch.randn(out_channels)
    label = f"conv {batch}x{channels}x{size}x{size} -> {out_channels}, k{kernel} s{stride} g{groups}"
    call = _call(F.conv2d, x, w, b, stride, kernel // 2, 1, groups)
    return Sample("depthwise_conv" if depthwise else "conv", call, label)


def _matmul(rng: random.Random) -> Sample:
    m, n, k = _log_uniform(rng, 1, 4096), _log_uniform(rng, 8, 4096), _log_uniform(rng, 8, 4096)
    batch = rng.choice([1, 1, 1, 4, 12, 32])
    while 2 * batch * m * n * k > MAX_FLOPS:
        m, n = max(1, m // 2), max(8, n // 2)
    kind = rng.choice(["addmm", "mm", "bmm"]) if batch == 1 else "bmm"
    if kind == "bmm":
        call = _call(torch.bmm, torch.randn(batch, m, k), torch.randn(batch, k, n))
    elif kind == "mm":
        call = _call(torch.mm, torch.randn(m, k), torch.randn(k, n))
    else:
        call = _call(torch.addmm, torch.randn(n), torch.randn(m, k), torch.randn(k, n))
    return Sample("matmul", call, f"{kind} {batch}x({m}x{k}) @ ({k}x{n})")


def _attention(rng: random.Random) -> Sample:
    batch, heads, head_dim = rng.choice([1, 2, 4, 8]), rng.choice([1, 2, 4, 8, 12, 16]), rng.choice([32, 64, 128])
    length = _log_uniform(rng, 16, 2048)
    while 4 * batch * heads * length**2 * head_dim > MAX_FLOPS:
        length //= 2
    q, k, v = (torch.randn(batch, heads, length, head_dim) for _ in range(3))
    causal = rng.random() < 0.5
    call = _call(F.scaled_dot_product_attention, q, k, v, is_causal=causal)
    return Sample("attention", call, f"sdpa {batch}x{heads}x{length}x{head_dim} causal={causal}")


def _elements(rng: random.Random) -> tuple[int, ...]:
    """An activation shape: an image-like (N, C, H, W) or a token-like (T, D)."""
    numel = _log_uniform(rng, 64, MAX_ELEMENTS)
    if rng.random() < 0.5:
        channels = rng.choice([16, 32, 64, 128, 256, 512])
        side = max(1, int(math.sqrt(numel / channels)))
        return (1, channels, side, side)
    width = rng.choice([64, 128, 256, 384, 512, 768, 1024, 2048])
    return (max(1, numel // width), width)


def _norm(rng: random.Random) -> Sample:
    shape = _elements(rng)
    x = torch.randn(shape)
    if len(shape) == 4 and rng.random() < 0.7:
        channels = shape[1]
        stats = torch.zeros(channels), torch.ones(channels)
        call = _call(F.batch_norm, x, *stats, torch.ones(channels), torch.zeros(channels), False)
        return Sample("norm", call, f"batch norm {shape}")
    width = shape[-1]
    call = _call(F.layer_norm, x, (width,), torch.ones(width), torch.zeros(width))
    return Sample("norm", call, f"layer norm {shape}")


POINTWISE: list[tuple[str, Callable[..., Any], int]] = [
    ("relu", torch.relu, 1),
    ("relu_", torch.relu_, 1),
    ("gelu", F.gelu, 1),
    ("silu", F.silu, 1),
    ("sigmoid", torch.sigmoid, 1),
    ("hardswish", F.hardswish, 1),
    ("tanh", torch.tanh, 1),
    ("add", torch.add, 2),
    ("mul", torch.mul, 2),
    ("add_", torch.Tensor.add_, 2),
    ("div", torch.div, 2),
]


def _pointwise(rng: random.Random) -> Sample:
    name, function, arity = rng.choice(POINTWISE)
    shape = _elements(rng)
    tensors = [torch.randn(shape) for _ in range(arity)]
    if arity == 2 and rng.random() < 0.3:  # a broadcast operand: a bias or a per-channel scale
        tensors[1] = torch.randn(shape[1], *[1] * (len(shape) - 2)) if len(shape) == 4 else torch.randn(shape[-1])
    return Sample("pointwise", _call(function, *tensors), f"{name} {shape}")


def _pooling(rng: random.Random) -> Sample:
    channels, side = rng.choice([16, 64, 128, 256, 512]), rng.choice([7, 14, 28, 56, 112])
    x = torch.randn(rng.choice([1, 2, 8]), channels, side, side)
    kind = rng.choice(["max", "avg", "adaptive", "upsample"])
    if kind == "max":
        call = _call(F.max_pool2d, x, 3, 2, 1)
    elif kind == "avg":
        call = _call(F.avg_pool2d, x, 2)
    elif kind == "adaptive":  # to a grid: a global pool (to 1) is a mean, sampled with the reductions
        call = _call(F.adaptive_avg_pool2d, x, max(2, side // 4))
    else:
        call = _call(F.interpolate, x, scale_factor=2, mode=rng.choice(["nearest", "bilinear"]))
    return Sample("pooling", call, f"{kind} pool {tuple(x.shape)}")


def _reduction(rng: random.Random) -> Sample:
    x = torch.randn(_elements(rng))
    kind = rng.choice(["sum", "mean", "softmax", "amax", "global pool"])
    # adaptive_avg_pool2d(x, 1) runs as a mean over the last two dimensions
    pooled = kind == "global pool"
    call = _call(torch.mean, x, (-2, -1), True) if pooled else _call(getattr(torch, kind), x, -1)
    return Sample("reduction", call, f"{kind} {tuple(x.shape)}")


def _movement(rng: random.Random) -> Sample:
    shape = _elements(rng)
    x = torch.randn(shape)
    kind = rng.choice(["cat", "contiguous", "clone", "pad", "index_select"])
    if kind == "contiguous" and x.transpose(-1, -2).is_contiguous():  # a shape with ones: nothing to copy
        kind = "clone"
    if kind == "cat":
        call = _call(torch.cat, [x, torch.randn(shape)], 1)
    elif kind == "contiguous":
        call = _call(lambda t: t.contiguous(), x.transpose(-1, -2))
    elif kind == "clone":
        call = _call(torch.clone, x)
    elif kind == "pad":
        call = _call(F.pad, x, (1, 1, 1, 1) if len(shape) == 4 else (0, 8))
    else:
        call = _call(torch.index_select, x, 0, torch.zeros(max(1, shape[0] // 2), dtype=torch.long))
    return Sample("movement", call, f"{kind} {shape}")


VIEWS: list[tuple[str, Callable[[torch.Tensor], Any]]] = [
    ("view", lambda t: t.view(-1)),
    ("transpose", lambda t: t.transpose(0, 1)),
    ("unsqueeze", lambda t: t.unsqueeze(0)),
    ("expand", lambda t: t.expand(2, *t.shape)),
    ("slice", lambda t: t[:1]),
    ("t", lambda t: t.t()),
]


def _view(rng: random.Random) -> Sample:
    name, function = rng.choice(VIEWS)
    x = torch.randn(rng.choice([8, 64, 512]), rng.choice([8, 64, 512]))
    return Sample("view", _call(function, x), f"{name}")


SAMPLERS: dict[str, Callable[[random.Random], Sample]] = {
    "conv": lambda rng: _conv(rng, depthwise=False),
    "depthwise_conv": lambda rng: _conv(rng, depthwise=True),
    "matmul": _matmul,
    "attention": _attention,
    "norm": _norm,
    "pointwise": _pointwise,
    "pooling": _pooling,
    "reduction": _reduction,
    "movement": _movement,
    "view": _view,
}


def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    def call() -> Any:
        return function(*args, **kwargs)

    return call
