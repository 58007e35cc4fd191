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


# The families registered with the formulas (register(..., family="matmul")), which every record carries.

MATMUL_FAMILY = {
    "aten.mm",
    "aten._int_mm",
    "aten._scaled_mm",
    "aten.bmm",
    "aten.addmm",
    "aten.baddbmm",
    "aten._addmm_activation",
    "aten.addbmm",
    "aten.mv",
    "aten.addmv",
    "aten.dot",
    "aten.vdot",
    "aten._grouped_mm",
    "aten._weight_int8pack_mm",
    "aten._weight_int4pack_mm",
    "aten._weight_int4pack_mm_for_cpu",
    "aten._weight_int4pack_mm_with_scales_and_zeros",
    "aten.mkldnn_rnn_layer",
    "aten._cudnn_rnn",
    "bitsandbytes.gemm_4bit",
    "bitsandbytes.gemv_4bit",
    "bitsandbytes.int8_linear_matmul",
    "bitsandbytes.int8_scaled_mm",
    "bitsandbytes.int8_mixed_scaled_mm",
}


@pytest.mark.parametrize("name", sorted(MATMUL_FAMILY))
def test_each_matrix_product_is_registered_in_the_matmul_family(name):
    from torchcost.counting.registry import family_of

    namespace, op = name.split(".")
    if namespace == "bitsandbytes":
        pytest.importorskip("bitsandbytes")
    packet = getattr(getattr(torch.ops, namespace), op)
    assert all(family_of(getattr(packet, overload)) == "matmul" for overload in packet.overloads())


@pytest.mark.parametrize(
    "op",
    [
        torch.ops.aten.add.Tensor,  # the generic pointwise rule
        torch.ops.aten.relu.default,
        torch.ops.aten.convolution.default,  # a formula with no family
        torch.ops.aten.miopen_rnn.default,  # its formula is _cudnn_rnn's, but the old list left it out
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default,
        torch.ops.aten.t.default,
    ],
)
def test_ops_outside_a_family_have_none(op):
    from torchcost.counting.registry import family_of

    assert family_of(op) == ""


class AddRelu(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + x)


def test_records_carry_the_family_of_their_op():
    p = torchcost.profile(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()), torch.randn(2, 4))
    assert [(r.op, r.family) for r in p.records] == [("aten.t", ""), ("aten.addmm", "matmul"), ("aten.relu", "")]
    p = torchcost.profile(torch.nn.Linear(4, 3), torch.randn(2, 4))
    (addmm,) = [r for r in p.records if r.op == "aten.addmm"]
    assert addmm.family == "matmul"
    q = torchcost.profile(AddRelu(), torch.randn(2, 4))
    assert [(r.op, r.family) for r in q.records] == [("aten.add", ""), ("aten.relu", "")]


def test_the_family_replaces_the_hand_kept_list():
    from torchcost.counting.registry import ops_in_family

    # The list predict/taxonomy.py kept by hand (MATMUL_OPS) before the family replaced it, written out as it was,
    # with the name prefixes it kept beside it (MATMUL_PREFIXES, which stays: it also covers ops with no formula).
    old_matmul_ops = {
        "mm",
        "addmm",
        "bmm",
        "baddbmm",
        "addbmm",
        "mv",
        "addmv",
        "dot",
        "vdot",
        "_addmm_activation",
        "_grouped_mm",
        "_int_mm",
        "_scaled_mm",
        "_weight_int8pack_mm",
        "_weight_int4pack_mm",
        "_weight_int4pack_mm_for_cpu",
        "_weight_int4pack_mm_with_scales_and_zeros",
    }
    old_prefixes = ("bitsandbytes.", "mkldnn_rnn", "_cudnn_rnn")
    family = {op.removeprefix("aten.") for op in ops_in_family("matmul")}
    assert {op for op in family if not op.startswith(old_prefixes)} == old_matmul_ops
    assert ops_in_family("matmul") == MATMUL_FAMILY  # the rest: products the prefixes named
    assert all(op.startswith(old_prefixes) for op in family - old_matmul_ops)


def test_the_old_list_answers_with_a_deprecation_warning():
    import importlib

    taxonomy = importlib.import_module("torchcost.predict.taxonomy")
    with pytest.warns(DeprecationWarning, match=r"MATMUL_OPS is now torchcost\.counting\.registry\.ops_in_family"):
        old = taxonomy.MATMUL_OPS
    assert old == {op.removeprefix("aten.") for op in MATMUL_FAMILY if op.startswith("aten.")}


def test_a_user_formula_names_its_family_and_an_override_keeps_it():
    from torchcost.counting.registry import family_of, ops_in_family

    op = torch.ops.torchcost_test.mystery
    register(op, family="matmul")(lambda call: call.cost(macs=call.output.numel()))
    try:
        assert family_of(op.default) == "matmul" and "torchcost_test.mystery" in ops_in_family("matmul")
        p = torchcost.profile(UsesMystery(), torch.randn(3, 4))
        assert [(r.op, r.family) for r in p.records] == [("torchcost_test.mystery", "matmul"), ("aten.add", "")]
        register(op, override=True)(lambda call: OpCost())
        assert family_of(op.default) == "matmul"
    finally:
        unregister(op)
    assert family_of(op.default) == "" and "torchcost_test.mystery" not in ops_in_family("matmul")
    with pytest.raises(TypeError, match="family"):
        register(op, family=3)  # type: ignore[arg-type]


def test_what_counting_learnt_of_signatures_is_forgotten_when_a_formula_changes():
    from torch import nn

    from torchcost.counting.mode import REPLAYS

    linear, x = nn.Linear(8, 4), torch.randn(2, 8)
    first = torchcost.profile(linear, x, device="meta")
    assert REPLAYS.current().on_meta  # the addmm's outputs and cost, kept for the next profile

    @register(torch.ops.aten.addmm, override=True)
    def doubled(call):  # twice the usual count, so that a stale replay would show
        return call.cost(macs=2 * call.inputs[1].shape[0] * call.inputs[1].shape[1] * call.inputs[2].shape[1])

    try:
        again = torchcost.profile(linear, x, device="meta")
    finally:
        unregister(torch.ops.aten.addmm)
        from torchcost.counting.formulas import matmul

        register(torch.ops.aten.addmm, family="matmul")(matmul.addmm)
    # 2 x 8 x 4 = 64 MACs; the doubled formula 128
    assert [r.cost.macs for r in first.records if r.op == "aten.addmm"] == [64]
    assert [r.cost.macs for r in again.records if r.op == "aten.addmm"] == [128]
