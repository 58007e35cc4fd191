import torch
import torch.nn.functional as F

from tests.conftest import count, only, total


def test_mm():
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    cost = only(count(torch.mm, a, b), "aten.mm")
    assert cost.macs == 3 * 4 * 5  # 60
    assert cost.flops == 120
    assert cost.bytes_read == (12 + 20) * 4
    assert cost.bytes_written == 15 * 4


def test_linear_with_bias_is_addmm():
    x, w, b = torch.randn(3, 4), torch.randn(5, 4), torch.randn(5)
    cost = only(count(F.linear, x, w, b), "aten.addmm")
    assert cost.macs == 60
    assert cost.flops == 2 * 60 + 15  # one bias add per output element (3 x 5)


def test_linear_on_3d_input():
    x, w = torch.randn(2, 3, 4), torch.randn(5, 4)
    assert total(count(F.linear, x, w)).macs == 2 * 3 * 4 * 5  # 120


def test_bmm_and_baddbmm():
    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    assert only(count(torch.bmm, a, b), "aten.bmm").macs == 120  # 2 x 3 x 4 x 5
    cost = only(count(torch.baddbmm, torch.randn(2, 3, 5), a, b), "aten.baddbmm")
    assert cost.flops == 240 + 30  # 2 x 120 + one add per output (2 x 3 x 5)


def test_matmul_operator_paths():
    assert total(count(torch.matmul, torch.randn(4), torch.randn(4))).macs == 4  # dot
    assert total(count(torch.matmul, torch.randn(3, 4), torch.randn(4))).macs == 12  # mv
    assert total(count(lambda a, b: a @ b, torch.randn(2, 3, 4), torch.randn(4, 5))).macs == 120


def test_einsum():
    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    assert total(count(torch.einsum, "bij,bjk->bik", a, b)).macs == 120  # 2 x 3 x 4 x 5


def test_grouped_mm_counts_every_routed_row_once():
    # 6 routed rows of width 8, 4 experts of (8, 16): 6 x 8 x 16 = 768 MACs whatever the split
    rows, experts = torch.randn(6, 8, dtype=torch.bfloat16), torch.randn(4, 8, 16, dtype=torch.bfloat16)
    offsets = torch.tensor([2, 3, 5, 6], dtype=torch.int32)
    cost = only(count(torch._grouped_mm, rows, experts, offsets), "aten._grouped_mm")
    assert cost.macs == 768
    assert cost.bytes_read == 6 * 8 * 2 + 4 * 8 * 16 * 2 + 4 * 4  # rows, all four experts (6 rows >= 4), offsets
    few = only(
        count(torch._grouped_mm, rows[:2], experts, torch.tensor([1, 2, 2, 2], dtype=torch.int32)), "aten._grouped_mm"
    )
    assert few.bytes_read == 2 * 8 * 2 + 2 * 8 * 16 * 2 + 4 * 4  # two rows reach at most two experts
