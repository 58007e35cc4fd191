import torch
import torch.nn.functional as F

from tests.conftest import count, only, total
from torchcost.tensors import tensor_bytes


def test_broadcast_add():
    x, y = torch.randn(3, 4), torch.randn(4)
    cost = only(count(torch.add, x, y), "aten.add")
    assert cost.flops == 12
    assert (cost.bytes_read, cost.bytes_written) == (48 + 16, 48)


def test_in_place_add_reads_and_writes_its_target():
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    cost = only(count(x.add_, y), "aten.add_")
    assert (cost.flops, cost.bytes_read, cost.bytes_written) == (12, 96, 48)


def test_activation_softmax_reductions():
    x = torch.randn(3, 4)
    assert only(count(F.relu, x), "aten.relu").flops == 12
    assert only(count(F.softmax, x, -1), "aten._softmax").flops == 60  # 5 per element
    assert only(count(F.log_softmax, x, -1), "aten._log_softmax").flops == 60
    assert only(count(torch.sum, x), "aten.sum").flops == 12
    assert only(count(torch.var, x), "aten.var").flops == 48  # 4 per element


def test_views_move_nothing():
    x = torch.randn(2, 3, 4)
    records = count(lambda t: t.view(6, 4).transpose(0, 1).permute(1, 0).unsqueeze(0), x)
    assert records and all(r.cost.memory_access == 0 and r.counted for r in records)


def test_cat_and_clone():
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    cost = only(count(torch.cat, [a, b]), "aten.cat")
    assert (cost.flops, cost.bytes_read, cost.bytes_written) == (0, 48, 48)
    assert only(count(torch.clone, a), "aten.clone").memory_access == 48


def test_embedding_reads_only_the_rows_it_gathers():
    weight, ids = torch.randn(100, 8), torch.zeros(2, 3, dtype=torch.long)
    cost = only(count(F.embedding, ids, weight), "aten.embedding")
    assert cost.bytes_written == 2 * 3 * 8 * 4  # 192
    assert cost.bytes_read == 192 + 6 * 8  # the gathered rows and the int64 indices, not the 3200-byte table


def test_broadcast_tensor_counts_its_storage_once():
    assert tensor_bytes(torch.ones(4).expand(3, 4)) == 16


def test_decomposed_op_counts_its_parts_and_its_own_bytes():
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    cost = only(count(F.mse_loss, x, y), "aten.mse_loss")
    assert cost.flops == 36  # subtract 12, square 12, mean over 12
    assert (cost.bytes_read, cost.bytes_written) == (96, 4)


def test_op_without_formula_is_uncounted_not_zero():
    records = count(torch.kthvalue, torch.randn(10), 3)
    (record,) = [r for r in records if r.op == "aten.kthvalue"]
    assert not record.counted
    assert record.cost.bytes_read == 40


def test_total_helper_sums():
    x = torch.randn(2, 2)
    assert total(count(lambda t: t + t * t, x)).flops == 8


def test_selection_ops():
    x = torch.randn(3, 16)
    assert only(count(torch.sort, x), "aten.sort").flops == 3 * 16 * 4  # n log2 n comparisons per row
    assert only(count(torch.topk, x, 2), "aten.topk").flops == 3 * 16  # one pass per row
    assert only(count(torch.histc, x, 4), "aten.histc").flops == 48


def test_decomposition_runs_once_per_signature(monkeypatch):
    """The second call with the same shapes reuses the counts; another shape gets its own."""
    from torchcost.counting.mode import REPLAYS, CountingMode

    REPLAYS.clear()  # nothing learnt by earlier tests

    runs = []
    original = CountingMode._run_decomposition

    def spy(self, func, args, kwargs):
        runs.append(str(func))
        return original(self, func, args, kwargs)

    monkeypatch.setattr(CountingMode, "_run_decomposition", spy)
    x, y, z = torch.randn(3, 4), torch.randn(3, 4), torch.randn(2, 4)
    records = count(lambda: (F.mse_loss(x, y), F.mse_loss(x, y), F.mse_loss(z, z)))
    costs = [r.cost for r in records if r.op == "aten.mse_loss"]
    # 3x4: subtract 12, square 12, mean 12 = 36; 2x4: 8 + 8 + 8 = 24
    assert [c.flops for c in costs] == [36, 36, 24]
    assert [(c.bytes_read, c.bytes_written) for c in costs] == [(96, 4), (96, 4), (64, 4)]
    assert runs.count("aten.mse_loss.default") == 2


def test_op_without_decomposition_stays_uncounted_on_repeat():
    records = count(lambda v: (torch.kthvalue(v, 3), torch.kthvalue(v, 3)), torch.randn(10))
    found = [r for r in records if r.op == "aten.kthvalue"]
    assert len(found) == 2 and not any(r.counted for r in found)


def test_pointwise_ops_on_meta_reuse_the_output_dtype_learnt_per_input_dtypes():
    """A comparison makes bool, sigmoid of integers makes float, mul keeps int64: the second shape's output
    is built without the meta kernel and must match what the kernel gives."""
    from torchcost.counting.mode import REPLAYS, CountingMode, ModuleStack, pointwise_on_meta_key

    aten = torch.ops.aten
    ops = (lambda t: aten.gt.Tensor(t, t), lambda t: aten.mul.Tensor(t, t), lambda t: aten.sigmoid.default(t))
    for make in ops:
        REPLAYS.clear()  # nothing learnt by earlier calls
        first = torch.empty(3, 4, dtype=torch.int64, device="meta")
        second = torch.empty(5, 6, 7, dtype=torch.int64, device="meta")
        stack = ModuleStack({})
        with stack, CountingMode(stack) as mode:
            make(first)
            learnt = make(second)
        assert len(mode._pointwise_dtype) == 1  # learnt from the first call, used for the second
        expected = make(second)
        assert (learnt.shape, learnt.stride(), learnt.dtype) == (expected.shape, expected.stride(), expected.dtype)
        assert [r.cost.flops for r in mode.records] == [12, 210]  # 1 per output element
    x = torch.empty(3, 4, device="meta")
    assert pointwise_on_meta_key(aten.add.Tensor, (x, x.t()), {}) is None  # not contiguous: not learnt
    assert pointwise_on_meta_key(aten.mm.default, (x, x.t()), {}) is None  # not pointwise
