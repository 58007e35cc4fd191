"""Values of input-derived tensors on meta, and what MetaFunctions replaces while it is active."""

import subprocess
import sys

import torch
from torch import nn

import torchcost
from torchcost.counting.meta_values import BUILT, values_while_building


class MadeFromData(nn.Module):
    """Makes a tensor from Python data on its input's device and reads it back (as Qwen2-VL's vision tower does)."""

    def forward(self, x):
        merge = torch.tensor([2], device=x.device).expand(x.shape[0])
        return x * sum(merge.tolist())


def test_tensors_made_from_data_on_meta_keep_their_values():
    x = torch.randn(3, 4)
    on_meta = torchcost.profile(MadeFromData(), x, device="meta")
    assert on_meta.flops == torchcost.profile(MadeFromData(), x, device="cpu").flops == 12


def test_buffers_built_on_meta_keep_their_values():
    with torch.device("meta"), values_while_building():
        positions = nn.Module()
        positions.register_buffer("ids", torch.arange(6).view(2, 3))
        weight = nn.Linear(512, 512).weight  # too large to keep: initialised on meta, no value
    assert BUILT.get(positions.ids).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert positions.ids.device.type == "meta" and BUILT.get(weight) is None


def test_replaced_functions_are_restored_and_pytorch_caches_stay_intact():
    # PyTorch caches sets of its functions on first use (the constructors torch.device("meta") applies to):
    # built while torch.tensor is replaced, they would miss the real one for the rest of the process
    script = (
        "import torch, torchcost\n"
        "from torchcost.counting.meta_values import BUILT, MetaFunctions\n"
        "tensor = torch.tensor\n"
        "with MetaFunctions(BUILT):\n"
        "    assert torch.tensor is not tensor\n"
        "assert torch.tensor is tensor\n"
        "with torch.device('meta'):\n"
        "    assert torch.tensor(0).device.type == 'meta'\n"
        "assert torch.tensor in torch.overrides.get_ignored_functions()\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
