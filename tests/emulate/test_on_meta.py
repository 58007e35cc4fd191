"""What CudaChoices makes a meta run choose: the kernels CUDA would run where a CPU runs others."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchcost
from torchcost.emulate.on_meta import CudaChoices


class Attention(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.dropout = dropout

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, q, q, dropout_p=self.dropout, is_causal=True)


def attention_ops(head_size: int, dtype: torch.dtype, dropout: float = 0.1) -> set[str]:
    q = torch.randn(2, 4, 64, head_size, dtype=dtype, device="meta", requires_grad=True)
    with CudaChoices():
        records = torchcost.profile(Attention(dropout), q, device="meta", backward=True).records
    return {r.op for r in records}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_attention_with_dropout_runs_one_fused_kernel_as_on_cuda(dtype):
    # a CPU computes the whole score matrix under dropout; CUDA's flash or memory-efficient kernel takes dropout
    ops = attention_ops(64, dtype)
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in ops and "aten.bmm" not in ops


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_attention_with_an_unaligned_head_size_keeps_the_reference(dropout):
    # CUDA's fused kernels need a head size that is a multiple of 8 in fp16 (sdp_utils.cpp), whatever a CPU
    # would choose (without dropout, its own fused kernel)
    ops = attention_ops(36, torch.float16, dropout)
    assert "aten._scaled_dot_product_flash_attention_for_cpu" not in ops and "aten.bmm" in ops


def test_dropout_keeps_a_one_byte_mask_as_on_cuda():
    x = torch.randn(8, 16, device="meta", requires_grad=True)
    with CudaChoices():
        records = torchcost.profile(nn.Dropout(0.1), x, device="meta", backward=True).records
    (dropout,) = [r for r in records if r.op == "aten.native_dropout"]
    assert dropout.output_dtypes == ("float32", "bool")


class GroupedAttention(nn.Module):
    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, kv, kv, is_causal=True, enable_gqa=True)


@pytest.mark.parametrize(("dtype", "fused"), [(torch.bfloat16, True), (torch.float32, False)])
def test_grouped_query_attention_is_fused_in_half_precision_only(dtype, fused):
    # 8 query heads over 2 key-value heads: FlashAttention takes them in fp16 and bf16; in fp32 CUDA has no fused
    # kernel for grouped heads and computes the reference
    q = torch.randn(2, 8, 64, 64, dtype=dtype, device="meta", requires_grad=True)
    kv = torch.randn(2, 2, 64, 64, dtype=dtype, device="meta", requires_grad=True)
    with CudaChoices():
        ops = {r.op for r in torchcost.profile(GroupedAttention(), q, kv, device="meta", backward=True).records}
    assert ("aten._scaled_dot_product_flash_attention_for_cpu" in ops) == fused
