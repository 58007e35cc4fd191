"""The four ShuffleNet V2 experiments (Ma et al., 2018, section 2), rerun on this machine at equal FLOPs.

G1: equal channel widths minimise memory access (1x1 convs with input:output channel ratios 1:1 ... 1:12).
G2: many groups raise memory access (1x1 group convs with 1, 2, 4, 8 groups, widened to keep FLOPs).
G3: fragmentation lowers parallelism (1, 2, 4 small convs in series and in parallel instead of one).
G4: elementwise ops are not free (a ResNet bottleneck with and without ReLU and shortcut).
Each row is a small network: its FLOPs and memory access are counted, its latency predicted by the roofline
and measured, so the user sees whether each relationship holds on their hardware.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from torchcost.errors import renamed
from torchcost.hardware import Hardware
from torchcost.measure.latency import measure
from torchcost.predict import predict
from torchcost.profiler import profile


@dataclass(frozen=True)
class GuidelineSettings:
    size: int = 56  # feature map height and width
    blocks: int = 5  # each network repeats its block this many times
    min_time: float = 0.5  # seconds of timed runs per network

    @classmethod
    def quick(cls) -> GuidelineSettings:
        return cls(size=14, blocks=2, min_time=0.02)


@dataclass(frozen=True)
class Row:
    label: str
    params: int
    macs: int
    flops: int
    memory_access: int
    predicted_s: float | None
    measured_s: float
    cv: float


@dataclass
class Experiment:
    key: str
    title: str
    guideline: str
    rows: list[Row] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "guideline": self.guideline,
            "rows": [asdict(r) for r in self.rows],
        }


def pointwise(c_in: int, c_out: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, groups=groups, bias=False)


class Parallel(nn.Module):
    """Branches on the same input, outputs concatenated along channels."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Bottleneck(nn.Module):
    """ResNet's 1x1 -> 3x3 -> 1x1 bottleneck (256 -> 64 -> 256 channels), ReLU and shortcut optional."""

    def __init__(self, relu: bool, shortcut: bool, width: int = 256, inner: int = 64) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv2d(width, inner, 1), nn.Conv2d(inner, inner, 3, padding=1), nn.Conv2d(inner, width, 1)]
        )
        self.relu, self.shortcut = relu, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for conv in self.convs:
            out = conv(out)
            out = torch.relu(out) if self.relu else out
        return out + x if self.shortcut else out


def _repeat(block: Callable[[], nn.Module], blocks: int) -> nn.Module:
    return nn.Sequential(*[block() for _ in range(blocks)]).eval()


def channel_ratio_networks(blocks: int) -> list[tuple[str, nn.Module, int]]:
    """G1: c1 * c2 kept near 128 * 128; each block is c1 -> c2 -> c1."""
    networks = []
    for ratio in (1, 2, 6, 12):
        c1 = round(128 / math.sqrt(ratio))
        c2 = c1 * ratio
        net = _repeat(functools.partial(_there_and_back, c1, c2), blocks)
        networks.append((f"1:{ratio} (c1={c1}, c2={c2})", net, c1))
    return networks


def _there_and_back(c1: int, c2: int) -> nn.Module:
    return nn.Sequential(pointwise(c1, c2), pointwise(c2, c1))


def group_networks(blocks: int) -> list[tuple[str, nn.Module, int]]:
    """G2: 1x1 group convs, width c = 128 * sqrt(g) (a multiple of g) so FLOPs stay near 128 * 128."""
    networks = []
    for groups in (1, 2, 4, 8):
        width = round(128 * math.sqrt(groups) / groups) * groups
        net = _repeat(functools.partial(pointwise, width, width, groups), blocks)
        networks.append((f"g={groups} (c={width})", net, width))
    return networks


def fragment_networks(blocks: int, width: int = 128) -> list[tuple[str, nn.Module, int]]:
    """G3: one 1x1 conv vs k smaller ones in series (width / sqrt(k) each) or in parallel (width -> width / k)."""
    networks: list[tuple[str, nn.Module, int]] = [
        ("1 fragment", _repeat(lambda: pointwise(width, width), blocks), width)
    ]
    for k in (2, 4):
        narrow = round(width / math.sqrt(k))
        series = _repeat(functools.partial(_series, narrow, k), blocks)
        networks.append((f"{k} in series (c={narrow})", series, narrow))
    for k in (2, 4):
        parallel = _repeat(functools.partial(_parallel, width, k), blocks)
        networks.append((f"{k} in parallel", parallel, width))
    return networks


def _series(width: int, fragments: int) -> nn.Module:
    return nn.Sequential(*[pointwise(width, width) for _ in range(fragments)])


def _parallel(width: int, fragments: int) -> nn.Module:
    return Parallel([pointwise(width, width // fragments) for _ in range(fragments)])


def bottleneck_networks(blocks: int) -> list[tuple[str, nn.Module, int]]:
    """G4: the same convolutions with and without the elementwise ReLU and shortcut add."""
    variants = [
        ("ReLU + shortcut", True, True),
        ("no ReLU", False, True),
        ("no shortcut", True, False),
        ("neither", False, False),
    ]
    return [(label, _repeat(functools.partial(Bottleneck, r, s), blocks), 256) for label, r, s in variants]


EXPERIMENTS: list[tuple[str, str, str, Callable[[int], list[tuple[str, nn.Module, int]]]]] = [
    (
        "G1",
        "1x1 convs, input:output channel ratio",
        "equal channel widths minimise memory access",
        channel_ratio_networks,
    ),
    ("G2", "1x1 group convs at equal FLOPs", "excessive group convolution increases memory access", group_networks),
    (
        "G3",
        "one conv vs fragments in series and in parallel",
        "network fragmentation reduces parallelism",
        fragment_networks,
    ),
    (
        "G4",
        "ResNet bottleneck with and without elementwise ops",
        "elementwise operations are not negligible",
        bottleneck_networks,
    ),
]


def run_guidelines(
    hardware: Hardware | None, settings: GuidelineSettings | None = None, progress: bool = False
) -> list[Experiment]:
    """Count, predict (when ``hardware`` can be predicted for) and measure every network of every experiment."""
    settings = settings or GuidelineSettings()
    torch.manual_seed(0)
    experiments = []
    for key, title, guideline, build in EXPERIMENTS:
        experiment = Experiment(key, title, guideline)
        for label, net, channels in build(settings.blocks):
            x = torch.randn(1, channels, settings.size, settings.size)
            counted = profile(net, x)
            predicted = predict(counted, hardware).latency_s if hardware is not None else None
            latency = measure(net, x, min_time=settings.min_time, max_time=10 * settings.min_time, progress=progress)
            experiment.rows.append(
                Row(
                    label,
                    counted.params.total,
                    counted.macs,
                    counted.flops,
                    counted.memory_access.total,
                    predicted,
                    latency.median_s,
                    latency.cv,
                )
            )
        experiments.append(experiment)
    return experiments


__getattr__ = renamed(__name__, {"Settings": GuidelineSettings})
