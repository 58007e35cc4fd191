import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchcost
from torchcost import ProfilingError


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks)) for m in model.modules()],
        "devices": {p.device for p in model.parameters()},
    }


def assert_same(before: dict, after: dict) -> None:
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), key
    for name in ("training", "requires_grad", "hooks", "devices"):
        assert before[name] == after[name], name
    for a, b in zip(before["grads"], after["grads"], strict=True):
        assert (a is None and b is None) or torch.equal(a, b)


@pytest.mark.parametrize(
    "options", [{}, {"backward": True}, {"device": "meta"}, {"device": "auto"}, {"dtype": torch.float16}]
)
def test_model_is_unchanged(options):
    model = small_cnn().train()
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = snapshot(model)
    torchcost.profile(model, torch.randn(2, 3, 4, 4), **options)
    assert_same(before, snapshot(model))


def test_model_is_unchanged_when_forward_raises():
    model = small_cnn().train()
    before = snapshot(model)
    with pytest.raises(ProfilingError):
        torchcost.profile(model, torch.randn(2, 5, 4, 4), backward=True)
    assert_same(before, snapshot(model))


def test_error_names_the_module_and_shapes():
    model = nn.Sequential(nn.Linear(4, 5), nn.Linear(6, 2))
    with pytest.raises(ProfilingError, match=r"module '1' \(Linear\) with input shapes \[1, 5\]"):
        torchcost.profile(model, torch.randn(1, 4))


def test_totals_and_module_attribution():
    model = small_cnn()
    p = torchcost.profile(model, input_size=(1, 3, 4, 4))
    # conv: 16 positions x 4 out x 27 = 1728 MACs; linear: 64 x 2 = 128
    assert p.macs == 1728 + 128
    by_name = {m.name: m for m in p.modules}
    assert by_name[""].macs == p.macs
    assert by_name["0"].macs == 1728 and by_name["4"].macs == 128
    assert sum(m.flops for m in p.modules if m.depth == 1) == by_name[""].flops
    assert by_name["0"].output_shapes == [(1, 4, 4, 4)]
    assert p.memory_access.total == sum(o.memory_access.total for o in p.operators)
    assert p.inputs[0].shape == (1, 3, 4, 4)


def test_functional_calls_inside_forward_are_counted():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 8))

        def forward(self, x):
            return torch.softmax(x @ self.w, -1) @ self.w.T

    p = torchcost.profile(Functional(), torch.randn(2, 8))
    assert p.macs == 2 * 2 * 8 * 8  # two (2, 8) x (8, 8) products


def test_meta_profile_allocates_no_weights():
    with torch.device("meta"):
        model = nn.Sequential(*[nn.Linear(20_000, 20_000) for _ in range(10)])  # 4 billion parameters, 16 GB
    p = torchcost.profile(model, input_size=(1, 20_000))
    assert p.params.total == 10 * (20_000 * 20_000 + 20_000)
    assert p.macs == 10 * 20_000 * 20_000
    assert p.device == "meta"


def test_device_meta_copies_a_real_model():
    model = small_cnn()
    p = torchcost.profile(model, torch.randn(1, 3, 4, 4), device="meta")
    assert p.device == "meta"
    assert all(param.device.type == "cpu" for param in model.parameters())
    assert p.macs == torchcost.profile(model, torch.randn(1, 3, 4, 4)).macs


def test_copy_keeps_tied_weights_tied():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    model[1].weight = model[0].weight
    moved = torchcost.copy_to(model, torch.device("meta"), None)
    assert moved[0].weight is moved[1].weight


def test_dtype_changes_size_not_counts():
    model = small_cnn()
    full = torchcost.profile(model, input_size=(1, 3, 4, 4))
    half = torchcost.profile(model, input_size=(1, 3, 4, 4), dtype="bfloat16", device="meta")
    assert half.macs == full.macs
    assert half.inputs[0].dtype == "bfloat16"
    assert full.size_bytes - half.size_bytes == (full.params.total + 8) * 2  # floats halve; the int64 counter stays


def test_kwargs_dicts_and_tuples():
    class Multi(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(5, 3)

        def forward(self, pair, extra, *, scale):
            return {"out": (self.a(pair[0]) + self.b(pair[1])) * scale, "aux": [extra["x"]]}

    x = (torch.randn(2, 4), torch.randn(2, 5))
    p = torchcost.profile(Multi(), x, {"x": torch.randn(1)}, scale=torch.tensor(2.0))
    assert p.macs == 2 * 4 * 3 + 2 * 5 * 3
    assert len(p.inputs) == 4


def test_input_size_with_several_inputs():
    class Pair(nn.Module):
        def forward(self, a, b):
            return a @ b

    assert torchcost.profile(Pair(), input_size=[(2, 3), (3, 4)]).macs == 24


def test_backward_counts_what_autograd_runs():
    model = nn.Linear(4, 5)
    p = torchcost.profile(model, torch.randn(3, 4), backward=True)
    # forward addmm 3x4x5 = 60; backward: weight gradient 60 (the input needs no gradient), bias gradient a sum
    assert p.macs == 120
    phases = {r.phase for r in p.records}
    assert phases == {"forward", "backward"}
    assert model.weight.grad is None


def test_backward_attributes_to_modules():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    p = torchcost.profile(model, torch.randn(3, 4), backward=True)
    by_name = {m.name: m for m in p.modules}
    # layer 2: forward 3x5x2 = 30, backward input and weight gradients 30 each
    assert by_name["2"].macs == 90
    assert by_name["0"].macs == 60 + 60


def test_input_and_input_size_together_is_an_error():
    with pytest.raises(ValueError, match="not both"):
        torchcost.profile(nn.Linear(2, 2), torch.randn(1, 2), input_size=(1, 2))


def test_profile_prints_a_table():
    text = str(torchcost.profile(small_cnn(), input_size=(1, 3, 4, 4)))
    assert "per module" in text and "uncounted ops: none" in text and "MACs" in text


def test_to_dict_is_plain_data():
    d = torchcost.profile(copy.deepcopy(small_cnn()), input_size=(1, 3, 4, 4)).to_dict()
    assert d["memory_access_bytes"]["total"] == d["memory_access_bytes"]["read"] + d["memory_access_bytes"]["write"]
    assert {"name", "type", "depth", "params", "macs", "flops", "memory_access_bytes", "output_shapes"} <= d["modules"][
        0
    ].keys()


def test_meta_failure_on_a_weight_dependent_branch_says_to_use_real_data():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * 2 if self.gate.sum() > 0 else x

    with pytest.raises(ProfilingError, match="needs real data"):
        torchcost.profile(Branchy(), torch.randn(3), device="meta")
    assert torchcost.profile(Branchy(), torch.ones(3)).flops > 0


class LooksAtItsInputs(nn.Module):
    """Control flow and shapes that depend on the input's values, as transformers' masks and routing do."""

    def forward(self, ids, mask):
        if mask.all():  # an all-ones mask is dropped
            mask = None
        kept = ids[torch.nonzero(ids > 2).squeeze(1)]  # a data-dependent shape
        steps = int(ids.max().item())
        chunks = torch.ones(steps + 1).split(ids[:2].tolist())  # sizes 1 and 5
        return kept * 2, [c.sum() for c in chunks], mask


def test_meta_knows_the_values_that_derive_from_the_inputs():
    ids, mask = torch.tensor([1, 5, 3, 0, 4]), torch.ones(5, dtype=torch.bool)
    on_cpu = torchcost.profile(LooksAtItsInputs(), ids, mask, device="cpu")
    on_meta = torchcost.profile(LooksAtItsInputs(), ids, mask, device="meta")
    assert [r.op for r in on_meta.records] == [r.op for r in on_cpu.records]
    assert [r.output_shapes for r in on_meta.records] == [r.output_shapes for r in on_cpu.records]
    assert on_meta.modules[0].output_shapes == on_cpu.modules[0].output_shapes == [(3,), (), ()]


def test_auto_counts_on_meta_when_shapes_suffice():
    model = small_cnn()
    x = torch.randn(1, 3, 4, 4)
    p = torchcost.profile(model, x, device="auto")
    assert p.device == "meta"
    # conv: 4 outputs x 16 positions x 3 x 9 = 1728 MACs; linear: 64 x 2 = 128 MACs
    assert p.macs == 1728 + 128 == torchcost.profile(model, x).macs
    assert all(param.device.type == "cpu" for param in model.parameters())


def test_auto_falls_back_to_real_tensors_for_data_dependent_models():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Linear(3, 3, bias=False)

        def forward(self, x):
            return self.scale(x) if self.scale(x).sum() > 0 else x  # depends on the weights' values

    model = Branchy()
    torch.nn.init.ones_(model.scale.weight)
    p = torchcost.profile(model, torch.ones(1, 3), device="auto")
    assert p.device == "cpu"
    assert p.macs == 2 * 9  # (1, 3) x (3, 3), twice


def test_auto_on_a_meta_model_cannot_fall_back():
    class Branchy(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(3, 3), Branchy())
    with pytest.raises(ProfilingError, match="needs real data"):
        torchcost.profile(model, input_size=(1, 3), device="auto")


class MLPBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc, self.norm = nn.Linear(width, width), nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + F.gelu(self.fc(x)) * 0.5)


@pytest.mark.parametrize("backward", [False, True])
def test_meta_replay_gives_the_same_records(monkeypatch, backward):
    """On meta, repeated layers replay the first call's outputs and cost, batch norm, layer norm and addmm
    take shape-only kernels, and pointwise ops reuse the output dtype learnt for their input dtypes: every
    record must equal the one computed by running each op's own meta kernel (all of that switched off)."""
    from torchcost.counting import mode

    block = lambda: nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Hardswish())  # noqa: E731
    attention = nn.MultiheadAttention(16, 2, batch_first=True)
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3), *[block() for _ in range(3)], nn.AdaptiveAvgPool2d(4), nn.Flatten(1))
    mlp = nn.Sequential(MLPBlock(16), MLPBlock(16), nn.Linear(16, 24), MLPBlock(24))

    def run() -> list:
        p = torchcost.profile(cnn, input_size=(2, 3, 10, 10), device="meta", backward=backward)
        q = torchcost.profile(attention, *[torch.randn(1, 5, 16)] * 3, device="meta", backward=backward)
        r = torchcost.profile(mlp, input_size=(4, 16), device="meta", backward=backward)
        return p.records + q.records + r.records

    replays = []
    empty_meta = mode.empty_meta
    monkeypatch.setattr(mode, "empty_meta", lambda spec: replays.append(spec) or empty_meta(spec))
    replayed = run()
    assert len(replays) > 10  # the three blocks' convolutions, batch norms, ...
    monkeypatch.setattr(mode, "returns_new_tensors", lambda op: False)
    batch_norm = torch.ops.aten.native_batch_norm.default  # kept: it returns what the CPU kernel returns (see
    # test_norm_pool), which PyTorch's meta kernel does not in eval mode
    monkeypatch.setattr(mode, "META_SHORTCUTS", {batch_norm: mode.META_SHORTCUTS[batch_norm]})
    monkeypatch.setattr(mode, "pointwise_on_meta_key", lambda op, args, kwargs: None)
    assert run() == replayed


def test_meta_replays_ops_with_zero_dim_outputs():
    class SumsTwice(nn.Module):
        def forward(self, x):
            return x.sum() + x.sum()  # the second sum replays the first's (shape (), stride ()) output

    p = torchcost.profile(SumsTwice(), torch.randn(4), device="meta")
    assert [r.op for r in p.records] == [
        "aten.sum",
        "aten.sum",
        "aten.add",
    ] and p.flops == 4 + 4 + 1  # a sum: one FLOP per element read


def test_profiling_leaves_the_global_random_stream_alone():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    x = torch.randn(4, 8)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    torchcost.profile(model, input_size=(4, 8), device="cpu", backward=True)  # dropout draws in training mode
    torchcost.profile(model, x, device="meta")
    assert torch.equal(torch.get_rng_state(), before)


def test_a_forward_that_takes_no_input():
    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.seed = nn.Parameter(torch.randn(1, 16))
            self.out = nn.Linear(16, 4)

        def forward(self):
            return self.out(self.seed)

    assert torchcost.profile(Generator()).macs == 16 * 4  # (1, 16) x (16, 4)
    with pytest.raises(ProfilingError, match=r"profile\(model, torch.randn"):
        torchcost.profile(nn.Linear(3, 3))  # forgot the input


def test_lazy_modules_are_initialised_on_a_copy():
    model = nn.Sequential(nn.LazyConv2d(8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    x = torch.randn(1, 3, 8, 8)
    for device in ("cpu", "meta", "auto"):
        p = torchcost.profile(model, x, device=device)
        # conv: 8 x 3 x 3 x 3 weights at 6 x 6 positions = 7,776 MACs; linear: 8*6*6 = 288 -> 10 = 2,880 MACs
        assert p.macs == 7_776 + 2_880 and p.params.total == 8 * 27 + 8 + 288 * 10 + 10
    assert all(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())


class ScalarGate(nn.Module):
    """Pointwise ops on 0-dim tensors, repeated (as timm's DiffAttention computes its lambda): on meta the second
    call replays the first one's 0-dim output."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Parameter(torch.tensor(0.5)), nn.Parameter(torch.tensor(0.25))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(2):
            x = x * torch.exp(self.a * self.b)
        return x


def test_zero_dim_outputs_replay_on_meta():
    model = ScalarGate()
    on_meta = torchcost.profile(model, torch.randn(2, 3), device="meta")
    assert on_meta.records == torchcost.profile(model, torch.randn(2, 3)).records


def test_a_container_that_is_never_called_sums_the_modules_inside_it():
    """nn.ModuleList is never called: its row once read 0 FLOPs ("not called") and hid GPT-2's blocks."""

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
            self.parts = nn.ModuleDict({"head": nn.Linear(8, 2)})

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.parts["head"](x)

    p = torchcost.profile(Stack(), torch.randn(1, 8))
    rows = {m.name: m for m in p.modules}
    assert rows["blocks"].macs == rows["blocks.0"].macs + rows["blocks.1"].macs == 2 * 64  # 8 x 8 each
    assert rows["parts"].macs == rows["parts.head"].macs == 16
    assert rows["blocks"].memory_access.total == sum(rows[f"blocks.{i}"].memory_access.total for i in (0, 1))
    assert rows["blocks"].calls == 0
    assert rows["blocks"].macs + rows["parts"].macs == p.macs


class EqualArguments(nn.Module):
    """Arguments that compare equal (1 == 1.0 == True) but give outputs of different dtypes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.long()
        return (ids + 1).sum() + (ids + 1.0).sum() + (ids + True).sum()


def test_meta_replays_tell_apart_arguments_that_compare_equal():
    on_cpu = torchcost.profile(EqualArguments(), torch.ones(2, 3), device="cpu")
    for _ in range(2):  # the second profile replays what the first learnt
        on_meta = torchcost.profile(EqualArguments(), torch.ones(2, 3), device="meta")
        assert [r.output_dtypes for r in on_meta.records] == [r.output_dtypes for r in on_cpu.records]
    adds = [r.output_dtypes for r in on_cpu.records if r.op == "aten.add" and r.input_shapes[0] == (2, 3)]
    assert adds == [("int64",), ("float32",), ("int64",)]  # ids + 1, ids + 1.0, ids + True
