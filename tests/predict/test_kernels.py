import torch
from torch import nn

import torchcost
from torchcost.predict.kernels import Gemm, fused_attention, fused_attention_backward, kernels, weight_bytes


def records(model, *inputs, **options):
    return torchcost.profile(model, *inputs, **options).records


def only(found, op):
    (record,) = [r for r in found if r.op == op]
    return record


def test_views_launch_nothing():
    found = records(nn.Linear(8, 4), torch.randn(2, 8))
    assert kernels(only(found, "aten.t")) == []
    (product,) = kernels(only(found, "aten.addmm"))
    assert product.kind == "gemm" and product.gemms == (Gemm(1, 2, 4, 8),)  # (2, 8) x (8, 4)


def test_a_convolution_with_a_bias_runs_two_kernels():
    found = records(nn.Conv2d(16, 32, 3), torch.randn(2, 16, 10, 10))
    conv, bias = kernels(only(found, "aten.convolution"))
    # implicit GEMM: M = 2 x 8 x 8 = 128 output pixels, N = 32 channels, K = 16 x 3 x 3 = 144
    assert conv.kind == "conv" and conv.gemms == (Gemm(1, 128, 32, 144),)
    # then output.add_(bias): reads and writes the 2 x 32 x 8 x 8 fp32 output, 2 x 16,384 bytes
    assert bias.kind == "memory" and bias.bytes == 2 * 2 * 32 * 8 * 8 * 4


def test_narrow_groups_run_on_the_cuda_cores_and_wider_ones_as_grouped_products():
    depthwise = only(records(nn.Conv2d(32, 32, 3, groups=32, bias=False), torch.randn(1, 32, 8, 8)), "aten.convolution")
    assert [k.kind for k in kernels(depthwise)] == ["depthwise"]
    grouped = only(records(nn.Conv2d(64, 64, 3, groups=4, bias=False), torch.randn(1, 64, 8, 8)), "aten.convolution")
    # 4 groups of 16 channels: 4 products of M = 36 pixels, N = 16, K = 16 x 9 = 144
    (kernel,) = kernels(grouped)
    assert kernel.kind == "conv" and kernel.gemms == (Gemm(4, 36, 16, 144),)


def test_a_convolutions_backward_is_dgrad_wgrad_and_the_bias_sum():
    model = nn.Sequential(nn.ReLU(), nn.Conv2d(8, 16, 3))  # the ReLU makes the input need a gradient
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    backward = only(records(model, x, backward=True), "aten.convolution_backward")
    dgrad, wgrad, bias = kernels(backward)
    # dgrad: M = 2 x 6 x 6 = 72 input pixels, N = 8, K = 16 x 9; wgrad: M = 16, N = 8 x 9, K = 2 x 4 x 4 = 32
    assert dgrad.gemms == (Gemm(1, 72, 8, 144),) and wgrad.gemms == (Gemm(1, 16, 72, 32),)
    assert bias.kind == "memory"


def test_the_first_convolutions_backward_skips_dgrad():
    backward = only(records(nn.Conv2d(3, 8, 3, bias=False), torch.randn(1, 3, 6, 6), backward=True),
                    "aten.convolution_backward")  # fmt: skip
    (wgrad,) = kernels(backward)
    assert wgrad.gemms == (Gemm(1, 8, 27, 16),)  # M = 8, N = 3 x 9, K = 4 x 4 output pixels


class SelfAttention(nn.Module):
    """nn.MultiheadAttention called as a ViT calls it: one tensor as query, key and value (its fast path)."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=False)[0]


def test_the_fused_multi_head_attention_is_its_projections_and_one_attention_kernel():
    with torch.no_grad():
        found = records(SelfAttention().eval(), torch.randn(2, 10, 64))
    qkv, split, attention, projection = kernels(only(found, "aten._native_multi_head_attention"))
    assert qkv.gemms == (Gemm(1, 20, 192, 64),) and projection.gemms == (Gemm(1, 20, 64, 64),)
    # 4 heads (from the op's FLOPs) of 64 / 4 = 16: Q K^T and P V per head
    assert attention.gemms == (Gemm(8, 10, 10, 16), Gemm(8, 10, 16, 10))
    assert split.kind == "memory"


def test_the_fused_encoder_layer_adds_its_feed_forward():
    layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True).eval()
    with torch.no_grad():
        found = records(layer, torch.randn(2, 10, 64))
    parts = kernels(only(found, "aten._transformer_encoder_layer_fwd"))
    products = [k.gemms[0] for k in parts if k.kind == "gemm"]
    # QKV, the output projection, then 64 -> 128 -> 64 over 20 rows (the width 128 from the op's MACs)
    assert products == [Gemm(1, 20, 192, 64), Gemm(1, 20, 64, 64), Gemm(1, 20, 128, 64), Gemm(1, 20, 64, 128)]
    assert [k.gemms for k in parts if k.kind == "attention"] == [(Gemm(8, 10, 10, 16), Gemm(8, 10, 16, 10))]


def test_batch_norm_in_training_computes_its_statistics_first():
    model, x = nn.BatchNorm2d(16), torch.randn(2, 16, 6, 6)
    assert len(kernels(only(records(model, x, backward=True), "aten.native_batch_norm"))) == 2  # counted training
    assert len(kernels(only(records(model, x), "aten.native_batch_norm"))) == 1  # eval: the running statistics


class Attention(nn.Module):
    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=0.1, is_causal=True)


def test_attentions_math_reference_is_one_fused_kernel_on_a_gpu():
    # with dropout a CPU runs the math reference (the score matrix written out); its records are marked
    q = torch.randn(2, 4, 32, 16, requires_grad=True)
    found = records(Attention(), q, backward=True)
    forward = [r for r in found if r.fused and r.phase == "forward"]
    backward = [r for r in found if r.fused and r.phase == "backward"]
    assert {r.fused for r in forward + backward} == {"scaled_dot_product_attention#0 causal"}
    assert any(r.op == "aten.bmm" for r in forward) and any(r.op == "aten.bmm" for r in backward)
    kernel = fused_attention(forward, causal=True)
    assert kernel is not None and kernel.gemms == (Gemm(8, 32, 32, 16), Gemm(8, 32, 16, 32))
    # causal: 32 x 33 / 2 = 528 of 1,024 pairs per head; 2 products of 8 heads x 16 per pair
    assert kernel.macs == 2 * 8 * 32 * 32 * 16 * 528 // 1024
    assert kernel.bytes == 4 * 2 * 4 * 32 * 16 * 4  # Q, K, V read and O written once, fp32
    assert fused_attention_backward(kernel).macs == round(2.5 * kernel.macs)


def test_the_weight_an_op_reads():
    found = records(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)), torch.randn(1, 3, 8, 8))
    assert weight_bytes(only(found, "aten.convolution")) == 8 * 3 * 3 * 3 * 4  # (8, 3, 3, 3) fp32
    assert weight_bytes(only(found, "aten.addmm")) == 288 * 10 * 4  # addmm(bias, x, w.t()): the last operand
    assert weight_bytes(only(found, "aten.view")) == 0


class Casts(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wide = x.float()  # a dtype cast: contiguous in, contiguous out
        return wide.to(memory_format=torch.channels_last), wide.transpose(2, 3).contiguous()


def test_a_dtype_cast_streams_where_layout_changes_copy_with_strides():
    found = records(Casts(), torch.randn(2, 3, 4, 5, dtype=torch.float16))
    casts = [r for r in found if r.op == "aten._to_copy"]
    assert [kernels(r)[0].kind for r in casts] == ["memory", "copy"]  # fp16 -> fp32, then to channels-last
    assert kernels(only(found, "aten.clone"))[0].kind == "copy"  # the permuted tensor made contiguous
