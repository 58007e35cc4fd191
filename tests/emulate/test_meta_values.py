"""Values of input-derived tensors on meta, and what MetaFunctions replaces while it is active."""

import subprocess
import sys

import torch
from torch import nn

import torchcost
from torchcost.emulate.meta_values import BUILT
from torchcost.emulate.on_meta import values_while_building


class MadeFromData(nn.Module):
    """Makes a tensor from Python data on its input's device and reads it back (as Qwen2-VL's vision tower does)."""

    def forward(self, x):
        merge = torch.tensor([2], device=x.device).expand(x.shape[0])
        return x * sum(merge.tolist())


def test_tensors_made_from_data_on_meta_keep_their_values():
    x = torch.randn(3, 4)
    on_meta = torchcost.profile(MadeFromData(), x, device="meta")
    assert on_meta.flops == torchcost.profile(MadeFromData(), x, device="cpu").flops == 12


class PackedValidity(nn.Module):
    """Packs a validity flag beside keys that depend on the weights, splits it off again and keeps the valid keys
    (as GLM-5-Next's indexer does with its pooled keys)."""

    def __init__(self):
        super().__init__()
        self.keys = nn.Linear(4, 4)

    def forward(self, x, valid):
        packed = torch.cat([self.keys(x), valid[:, None]], dim=-1)
        keys, flag = packed.split([4, 1], dim=-1)
        return keys[flag.squeeze(-1).bool()] * 2


def test_known_elements_beside_unknown_ones_stay_known():
    x, valid = torch.randn(6, 4), torch.tensor([1.0, 0, 1, 1, 0, 1])
    on_meta = torchcost.profile(PackedValidity(), x, valid, device="meta")
    on_cpu = torchcost.profile(PackedValidity(), x, valid, device="cpu")
    multiply = next(op for op in on_meta.operators if op.op == "aten.mul")
    assert multiply.flops == 4 * 4  # the 4 valid rows of 4 keys
    assert on_meta.flops == on_cpu.flops


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
        "from torchcost.emulate.meta_values import BUILT\n"
        "from torchcost.emulate.on_meta import MetaFunctions\n"
        "tensor = torch.tensor\n"
        "with MetaFunctions(BUILT):\n"
        "    assert torch.tensor is not tensor\n"
        "assert torch.tensor is tensor\n"
        "with torch.device('meta'):\n"
        "    assert torch.tensor(0).device.type == 'meta'\n"
        "assert torch.tensor in torch.overrides.get_ignored_functions()\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


class LoopedExperts(nn.Module):
    """A mixture of experts that loops over the experts the router picked (as Switch, NLLB-MoE and JetMoE do):
    ``torch.where`` on the router's top-k choices, which depend on the weights."""

    def __init__(self, width=8, hidden=16, experts=4, top_k=2):
        super().__init__()
        self.top_k = top_k
        self.router = nn.Linear(width, experts, bias=False)
        self.experts = nn.ModuleList(nn.Linear(width, hidden, bias=False) for _ in range(experts))

    def forward(self, x):
        weights, picked = self.router(x).softmax(-1).topk(self.top_k, dim=-1)
        out = x.new_zeros(x.shape[0], self.experts[0].out_features)
        for expert, layer in enumerate(self.experts):
            rows, slot = torch.where(picked == expert)
            if rows.numel():
                out[rows] += layer(x[rows]) * weights[rows, slot, None]
        return out


def test_router_picks_on_meta_are_spread_evenly_and_the_expert_work_is_exact():
    x = torch.randn(10, 8)
    on_meta = torchcost.profile(LoopedExperts(), x, device="meta")
    on_cpu = torchcost.profile(LoopedExperts(), x, device="cpu")
    # router 10 tokens x 8 x 4 = 320; experts: 10 tokens x 2 picks x 8 x 16 = 2,560, whichever experts are picked
    assert on_meta.macs == on_cpu.macs == 320 + 2_560
    assert any("spread evenly" in note for note in on_meta.notes)
    assert not any("spread evenly" in note for note in on_cpu.notes)


class FilledOnItsDevice(nn.Module):
    """Makes tensors from arguments alone on its input's device (empty then filled, arange) and reads them back."""

    def forward(self, x):
        keep = int(torch.empty(1, dtype=torch.long, device=x.device).fill_(3).item())
        steps = torch.arange(4, device=x.device).sum().item()
        return x[:keep] * steps


def test_tensors_made_from_arguments_alone_on_meta_keep_their_values():
    x = torch.randn(5, 4)
    for _ in range(2):  # the second time, the ops with no tensor input replay their meta outputs
        on_meta = torchcost.profile(FilledOnItsDevice(), x, device="meta")
        # the sum of 4 steps, then 3 rows kept of 4 times the steps' sum
        assert on_meta.device == "meta" and on_meta.flops == 4 + 3 * 4


class LongestPlusNothing(nn.Module):
    """Adds the sum of none of the weights' outputs to the longest length: a tensor with no elements has no value
    that could be unknown, and its sum is zero."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, lengths):
        none_from_weights = self.lin(x)[:0]
        longest = int(lengths.max() + none_from_weights.sum())
        return self.lin(x[:, :longest].repeat(1, 4 // longest))


def test_tensors_without_elements_have_known_values_on_meta():
    x, lengths = torch.randn(3, 4), torch.tensor([1, 2])
    found = torchcost.profile(LongestPlusNothing(), x, lengths)
    assert found.device == "meta"  # without that rule, the maximum is unknown on meta and the profile runs on the cpu
    assert found.flops == torchcost.profile(LongestPlusNothing(), x, lengths, device="cpu").flops
