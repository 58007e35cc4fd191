"""Building models on meta: initialisation is skipped there, and only there."""

import os
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from torchcost.sources.base import build_on


def shapes(model: nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {name: (tuple(t.shape), t.dtype) for name, t in model.state_dict().items()}


@pytest.mark.parametrize("name", ["resnet18", "vit_tiny_patch16_224", "efficientnet_b0"])
def test_meta_build_has_the_cpu_builds_tensors(name):
    timm = pytest.importorskip("timm")
    on_meta = build_on(torch.device("meta"), lambda: timm.create_model(name))
    assert {t.device.type for t in on_meta.state_dict().values()} == {"meta"}
    assert shapes(on_meta) == shapes(timm.create_model(name))


class ComputesWhileBuilding(nn.Module):
    """Reads values computed in place on the CPU while it is built (as some constructors do)."""

    def __init__(self):
        super().__init__()
        widths = torch.ones(3, device="cpu").mul_(4).add_(1).tolist()  # [5.0, 5.0, 5.0]
        self.layers = nn.ModuleList(nn.Linear(int(w), 2) for w in widths)
        nn.init.zeros_(self.layers[0].weight)  # on meta: skipped, nothing to write


def test_in_place_ops_on_cpu_tensors_still_run_during_a_meta_build():
    model = build_on(torch.device("meta"), ComputesWhileBuilding)
    assert [layer.in_features for layer in model.layers] == [5, 5, 5]
    assert model.layers[0].weight.device.type == "meta"


class Recorded(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_initialisation_never_reaches_the_meta_kernels():
    with Recorded() as outer:  # below build_on's own mode: it sees what that mode lets through
        build_on(torch.device("meta"), lambda: nn.Linear(4, 4))
    assert "empty" in outer.ops and "uniform_" not in outer.ops  # kaiming_uniform_ and the bias's uniform_
    with Recorded() as outer:
        build_on(torch.device("cpu"), lambda: nn.Linear(4, 4))
    assert outer.ops.count("uniform_") == 2  # on the cpu, initialisation runs


def test_random_weights_are_the_same_on_every_build_and_leave_the_global_stream_alone():
    torch.manual_seed(1)
    first = build_on(torch.device("cpu"), lambda: nn.Linear(4, 4))
    state = torch.get_rng_state()
    torch.manual_seed(2)
    second = build_on(torch.device("cpu"), lambda: nn.Linear(4, 4))
    assert torch.equal(first.weight, second.weight)
    torch.manual_seed(1)
    build_on(torch.device("cpu"), lambda: nn.Linear(4, 4))
    assert torch.equal(torch.get_rng_state(), state)


def test_a_detector_counts_the_same_in_every_process():
    """Mask R-CNN's mask head runs on the boxes that survive, which depend on the random weights: two processes
    (another hash seed, so another order of the work before the build) gave 187.6 G and 134.4 G MACs."""
    script = (
        "from torchcost.from_spec import profile_spec; print(profile_spec('torchvision:maskrcnn_resnet50_fpn').macs)"
    )
    counts = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("0", "1")
    }
    assert len(counts) == 1, counts
