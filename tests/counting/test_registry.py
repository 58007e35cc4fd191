import pytest
import torch

import torchcost
from torchcost.counting.registry import DuplicateFormulaError, OpCall, find_formula, register, unregister
from torchcost.records import OpCost


@torch.library.custom_op("torchcost_test::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@mystery.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class UsesMystery(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mystery(x) + 1


def test_duplicate_registration_is_rejected():
    with pytest.raises(DuplicateFormulaError, match="override=True"):
        register(torch.ops.aten.mm)(lambda call: OpCost())


def test_unknown_custom_op_is_listed_as_uncounted():
    p = torchcost.profile(UsesMystery(), torch.randn(3, 4))
    assert [(u.op, u.count) for u in p.uncounted] == [("torchcost_test.mystery", 1)]
    assert p.flops == 12  # only the counted "+ 1"
    assert p.memory_access.total == 2 * 48 + 2 * 48  # the mystery op's bytes are still known


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_user_formula_counts_a_custom_op(device):
    op = torch.ops.torchcost_test.mystery

    @register(op)
    def mystery_cost(call: OpCall) -> OpCost:
        return call.cost(flops=call.output.numel())  # one multiply per element

    try:
        p = torchcost.profile(UsesMystery(), torch.randn(3, 4), device=device)
        assert p.uncounted == []
        assert p.flops == 24
    finally:
        unregister(op)
    assert find_formula(op.default) is None


def test_override_replaces_a_builtin_formula():
    original = find_formula(torch.ops.aten.relu.default)
    assert original is None  # relu is counted by the generic pointwise rule

    @register(torch.ops.aten.relu, override=True)
    def relu_cost(call: OpCall) -> OpCost:
        return call.cost(flops=3 * call.output.numel())

    try:
        assert torchcost.profile(torch.nn.ReLU(), torch.randn(4)).flops == 12
    finally:
        unregister(torch.ops.aten.relu)


def test_register_rejects_non_ops():
    with pytest.raises(TypeError, match=r"ops such as torch\.ops\.aten\.mm"):
        register(torch.mm)  # type: ignore[arg-type]


def test_tensors_in_walks_containers_as_pytree_does():
    import collections

    from torch.utils._pytree import tree_leaves

    from torchcost.tensors import tensors_in

    pair = collections.namedtuple("pair", "a b")
    tree = [
        torch.ones(1),
        (torch.zeros(2), {"b": torch.ones(3), "a": torch.ones(4)}),
        pair(torch.ones(5), 3),
        collections.OrderedDict(x=torch.ones(6)),
        torch.max(torch.ones(2, 7), 1),  # a torch.return_types structseq
        None,
        "text",
    ]
    expected = [leaf for leaf in tree_leaves(tree) if isinstance(leaf, torch.Tensor)]
    assert [t.numel() for t in tensors_in(tree)] == [1, 2, 3, 4, 5, 6, 2, 2]
    assert all(a is b for a, b in zip(tensors_in(tree), expected, strict=True))


class FusedGate(torch.nn.Module):
    """Stands for a fused extension: its forward runs ops whose count the user replaces with their own."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 16)

    def forward(self, x):
        gate, value = self.proj(x).chunk(2, dim=-1)
        return torch.sigmoid(gate) * value


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_module_formula_replaces_the_count_of_everything_inside(device):
    from torchcost.counting.registry import register_module

    @register_module(FusedGate)
    def fused_gate(module, inputs, output):
        x = inputs[0]  # (4, 8)
        return OpCost(flops=2 * x.shape[0] * 8 * 16 + 3 * output.numel(), macs=x.shape[0] * 8 * 16)

    try:
        model = torch.nn.Sequential(FusedGate(), torch.nn.ReLU())
        p = torchcost.profile(model, torch.randn(4, 8), device=device)
    finally:
        unregister(FusedGate)
    assert p.macs == 4 * 8 * 16  # 512, the formula's: the Linear inside it is not counted again
    assert p.flops == 2 * 512 + 3 * 32 + 32  # the formula's, plus the ReLU's 32 outputs
    gate = next(m for m in p.modules if m.name == "0")
    assert gate.user_formula and gate.macs == 512 and not next(m for m in p.modules if m.name == "0.proj").macs
    assert [o.op for o in p.operators] == ["FusedGate (user formula)", "aten.relu"]
    with pytest.raises(DuplicateFormulaError):
        register_module(torch.nn.Linear)(fused_gate)
        register_module(torch.nn.Linear)(fused_gate)
    unregister(torch.nn.Linear)
