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
