"""The modelled kernel workspaces (BLAS operand copies, CPU convolutions, fused attention), by hand."""

import pytest
import torch
from torch import nn

from torchcost.peak_memory import memory
from torchcost.peak_memory.workspace import workspace_bytes


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # PyTorch's conv backend choice depends on it
    yield
    torch.set_num_threads(threads)


def test_onednn_convolution_by_hand():
    conv = nn.Conv2d(16, 32, 3, padding=1)
    x = torch.randn(8, 16, 28, 28)
    # input 8 x 16 x 28 x 28 x 4 = 401,408 and weight 32 x 16 x 3 x 3 x 4 = 18,432 reordered: 419,840;
    # oneDNN's result buffer, the size of the output 8 x 32 x 28 x 28 x 4 = 802,816: the larger one
    p = memory(conv, x, device="meta")
    conv_step = next(point for point in p.timeline if point.op == "aten.convolution")
    assert conv_step.bytes["workspace"] == 802_816
    start = p.timeline[0].total  # params 18,560 + input 401,408
    assert p.peak_bytes == start + 802_816 + 802_816 and p.breakdown["workspace"] == 802_816


def test_slow_path_im2col_columns_by_hand():
    conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
    x = torch.randn(1, 8, 10, 10)
    backend = torch._C._select_conv_backend(x, conv.weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, None)
    assert str(backend).endswith("Slow2d")  # batch 1, one thread: PyTorch's own choice
    # im2col columns: batch 1 x (8 channels x 3 x 3) x (10 x 10 outputs) = 7,200 fp32 values
    p = memory(conv, x, device="meta")
    assert p.breakdown["workspace"] == 7_200 * 4


def test_no_workspace_for_cuda_figures_or_other_ops():
    x = torch.randn(8, 16, 28, 28)
    p = memory(nn.Conv2d(16, 32, 3, padding=1), x, device="meta", target="cuda")
    assert all(point.bytes["workspace"] == 0 for point in p.timeline)
    assert workspace_bytes(torch.ops.aten.relu.default, (x,), torch.relu(x), "cpu") == 0


@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_blas_copies_an_expanded_gradient(target):
    linear = nn.Linear(16, 32, bias=False)
    p = memory(linear, torch.randn(8, 16), train=True, device="meta", target=target)
    # backward of the sum: an (8, 32) gradient expanded from a scalar (strides 0, 0); the weight's gradient
    # x.t().mm(grad) copies it to a contiguous (8, 32) fp32 matrix first: 1,024 bytes (512-byte blocks: 1,024)
    products = [point for point in p.timeline if point.op == "aten.mm"]
    assert [point.phase for point in products] == ["forward", "backward"]
    assert [point.bytes["workspace"] for point in products] == [0, 1_024]


def test_blas_takes_transposed_operands_as_they_are():
    a, b = torch.randn(8, 4), torch.randn(6, 4)
    mm = torch.ops.aten.mm.default
    assert workspace_bytes(mm, (a, b.t()), a @ b.t(), "cpu") == 0  # column-major b: no copy
    expanded = torch.ones(()).expand(8, 4)
    assert workspace_bytes(mm, (expanded, b.t()), expanded @ b.t(), "cuda") == 8 * 4 * 4


def test_fused_attention_on_cuda_takes_the_fast_path():
    attention = nn.MultiheadAttention(256, 8, batch_first=True)

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = attention

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attention(x, x, x, need_weights=False)[0]

    x = torch.randn(8, 128, 256)  # BTD = 262,144 fp32 values = 1 MiB
    on_cpu, on_cuda = (memory(SelfAttention(), x, device="meta", target=target) for target in ("cpu", "cuda"))
    step = [point.op for point in on_cpu.timeline].index("aten._native_multi_head_attention")
    # CPU: max(5 BTD, 2 BTD + B H T T) = max(5, 2 + 4) MiB beyond the output (B H T T = 8 x 8 x 128 x 128 x 4 bytes)
    assert on_cpu.timeline[step].bytes["workspace"] == 6 * 2**20
    # CUDA, head dimension 32: the projection (3 BTD) and the attention result (BTD), one 4 MiB block
    assert on_cuda.timeline[step].bytes["workspace"] == 4 * 2**20
