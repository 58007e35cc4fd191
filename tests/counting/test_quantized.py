"""Matrix products on quantized weights, and the size and parameters of quantized models."""

import pytest
import torch
from torch import nn

import torchcost
from tests.conftest import count, only
from torchcost.counting.registry import OpCall, find_formula


def test_int8_packed_weights():
    x, w, scales = torch.randn(3, 64), torch.randint(-128, 127, (32, 64), dtype=torch.int8), torch.rand(32)
    cost = only(count(torch._weight_int8pack_mm, x, w, scales), "aten._weight_int8pack_mm")
    assert cost.macs == 3 * 64 * 32  # 6,144
    assert cost.flops == 2 * 6144 + 3 * 32  # and one scale per output


def test_int4_packed_weights():
    x = torch.randn(3, 64, dtype=torch.bfloat16)
    packed = torch._convert_weight_to_int4pack_for_cpu(torch.randint(0, 16, (32, 64), dtype=torch.int32), 1)
    scales_and_zeros = torch.rand(2, 32, 2, dtype=torch.bfloat16)  # 2 groups of 32 along k
    records = count(torch._weight_int4pack_mm_for_cpu, x, packed, 32, scales_and_zeros)
    assert only(records, "aten._weight_int4pack_mm_for_cpu").macs == 3 * 64 * 32
    assert packed.numel() * packed.element_size() == 32 * 64 // 2  # two weights per byte


def test_torchao_int8_weights_are_stored_as_int8():
    quantization = pytest.importorskip("torchao.quantization")
    model = nn.Linear(64, 32)
    quantization.quantize_(model, quantization.Int8WeightOnlyConfig())
    for device in ("cpu", "meta"):
        p = torchcost.profile(model, torch.randn(2, 64), device=device)
        assert p.params.total == 64 * 32 + 32  # logical elements, as before quantizing
        assert p.macs == 2 * 64 * 32
        # stored: int8 data 2,048 + per row an fp32 scale (128) and an int8 zero point (32) + fp32 bias 128,
        # not the 8,320 bytes of fp32 weights
        assert p.size_bytes == 2048 + 128 + 32 + 128


@pytest.mark.parametrize("repack", [False, True], ids=["gemm_4bit", "gemv_4bit"])
def test_bitsandbytes_4bit_weights(repack):
    bnb = pytest.importorskip("bitsandbytes")
    layer = bnb.nn.Linear4bit(64, 32, compute_dtype=torch.float32, quant_type="nf4")
    layer.load_state_dict(nn.Linear(64, 32).state_dict())
    layer = layer.to("cpu")  # quantizes: 2,048 weights packed two per byte
    # In eval mode on a CPU with AVX512-BF16, Linear4bit repacks its weight and runs gemv_4bit (+ the bias after
    # it), elsewhere gemm_4bit: choose the path here, so that both run whatever this CPU has
    layer.support_avx512bf16_for_cpu = repack
    p = torchcost.profile(layer, torch.randn(2, 64), device="cpu")
    kernel = "bitsandbytes.gemv_4bit" if repack else "bitsandbytes.gemm_4bit"
    assert [r.op for r in p.records if r.cost.macs] == [kernel]
    assert p.params.total == 64 * 32 + 32 and p.macs == 2 * 64 * 32 and not p.uncounted
    # repacking dequantizes the double-quantized scales (dequantize_blockwise) and keeps them as bf16
    state = layer.weight.quant_state
    assert getattr(state, "packing_format_for_cpu", False) == repack
    state_bytes = sum(t.numel() * t.element_size() for t in vars(state).values() if isinstance(t, torch.Tensor))
    nested = getattr(state, "state2", None)
    state_bytes += (
        sum(t.numel() * t.element_size() for t in vars(nested).values() if isinstance(t, torch.Tensor)) if nested else 0
    )
    assert p.size_bytes == 1024 + state_bytes + 32 * 4  # packed weights, absmax and code book, fp32 bias


# Each bitsandbytes op called directly: the kernel it runs on depends on the CPU (gemv_4bit has a fused
# AVX512-BF16 kernel, else dequantize_4bit + linear; int8_linear_matmul uses torch._int_mm with AVX512, else an
# fp32 matmul), its count does not. Weights below: a (32, 64) weight, blocks of 64, 2 rows of input.


def _bnb_4bit(nested: bool = False):
    functional = pytest.importorskip("bitsandbytes.functional")
    return functional.quantize_4bit(torch.randn(32, 64), blocksize=64, compress_statistics=nested, quant_type="nf4")


def _nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("bias", [False, True])
def test_bitsandbytes_gemm_4bit(bias):
    packed, state = _bnb_4bit()
    x, b = torch.randn(2, 64), torch.randn(32) if bias else None
    args = (x, packed, list(state.shape), state.absmax, 64, "nf4")
    cost = only(count(torch.ops.bitsandbytes.gemm_4bit, *args, bias=b), "bitsandbytes.gemm_4bit")
    assert cost.macs == 2 * 64 * 32  # 4,096: the logical (2, 64) x (64, 32), not the packed (1024, 1)
    assert cost.flops == 2 * 4096 + (2 * 32 if bias else 0)  # + the bias, added by the kernel
    assert cost.bytes_read == 512 + 1024 + 4 * 32 + (128 if bias else 0)  # x, packed weights, 32 absmax, bias
    assert cost.bytes_written == 2 * 32 * 4


def test_bitsandbytes_gemm_4bit_double_quantized():
    packed, state = _bnb_4bit(nested=True)
    x, state2 = torch.randn(2, 64), state.state2
    args = (x, packed, list(state.shape), state2.absmax, 64, "nf4")
    extra = {"absmax_8bit": state.absmax, "absmax_code": state2.code, "absmax_offset": state.offset}
    cost = only(count(torch.ops.bitsandbytes.gemm_4bit, *args, **extra), "bitsandbytes.gemm_4bit")
    assert cost.macs == 2 * 64 * 32 and cost.flops == 2 * 4096
    # x, packed weights, the 1 fp32 scale of the 32 uint8 absmax, those, their 256-entry fp32 code, the offset
    assert cost.bytes_read == 512 + 1024 + 4 + 32 + 1024 + 4


def test_bitsandbytes_gemv_4bit():
    packed, state = _bnb_4bit()
    x = torch.randn(2, 64)
    args = (x, packed, list(state.shape), state.absmax, state.code, 64)
    cost = only(count(torch.ops.bitsandbytes.gemv_4bit, *args), "bitsandbytes.gemv_4bit")
    assert cost.macs == 2 * 64 * 32 and cost.flops == 2 * 4096  # no bias in this kernel
    assert cost.bytes_read == 512 + 1024 + 4 * 32 + 4 * 16  # x, packed weights, absmax, 16-entry NF4 code
    assert cost.bytes_written == 2 * 32 * 4


def test_bitsandbytes_out_overloads_write_out():
    pytest.importorskip("bitsandbytes")
    ops = torch.ops.bitsandbytes
    # gemv_4bit.out and dequantize_blockwise.out have CUDA/XPU/MPS kernels only: their fake kernels run on meta
    x, packed = torch.empty(2, 64, device="meta"), torch.empty(1024, 1, dtype=torch.uint8, device="meta")
    absmax, code = torch.empty(32, device="meta"), torch.empty(16, device="meta")
    out = torch.empty(2, 32, device="meta")
    cost = only(count(ops.gemv_4bit.out, x, packed, [32, 64], absmax, code, 64, out=out), "bitsandbytes.gemv_4bit")
    assert cost.macs == 2 * 64 * 32
    assert (cost.bytes_read, cost.bytes_written) == (512 + 1024 + 128 + 64, 256)  # out is written, not read

    q, scale = torch.empty(512, dtype=torch.uint8, device="meta"), torch.empty(2, device="meta")
    code8, out = torch.empty(256, device="meta"), torch.empty(512, device="meta")
    records = count(ops.dequantize_blockwise.out, q, scale, code8, 256, torch.float32, out)
    cost = only(records, "bitsandbytes.dequantize_blockwise")
    assert cost.flops == 2 * 512 and (cost.bytes_read, cost.bytes_written) == (512 + 8 + 1024, 4 * 512)

    a, b, out = torch.ones(2, 64, dtype=torch.int8), torch.ones(32, 64, dtype=torch.int8), torch.empty(2, 32).int()
    cost = only(count(ops.int8_linear_matmul.out, a, b, out), "bitsandbytes.int8_linear_matmul")
    assert cost.macs == 2 * 64 * 32 and (cost.bytes_read, cost.bytes_written) == (128 + 2048, 256)

    # dequantize_4bit.out: bitsandbytes' own fake kernel rejects its int[] shape on meta, so the formula is
    # applied to the call as it would be recorded
    op = ops.dequantize_4bit.out
    packed, absmax, out = torch.empty(1024, 1, dtype=torch.uint8), torch.empty(32), torch.empty(32, 64)
    call = OpCall(op, (packed, absmax, 64, "nf4", [32, 64], torch.float32, out), {}, None)
    cost = find_formula(op)(call)
    assert cost.flops == 2 * 2048 and (cost.bytes_read, cost.bytes_written) == (1024 + 128, 4 * 2048)


def test_bitsandbytes_dequantize_and_quantize():
    packed, state = _bnb_4bit()
    functional = pytest.importorskip("bitsandbytes.functional")
    ops = torch.ops.bitsandbytes
    w, code8 = torch.randn(32, 64), functional.create_dynamic_map().float()  # the 256-entry dynamic code
    codes = torch.zeros(512, dtype=torch.uint8)
    cases = [
        # (op, args, FLOPs): element-wise, no MACs
        (ops.dequantize_4bit, (packed, state.absmax, 64, "nf4", [32, 64], torch.float32), 2 * 2048),  # lookup, scale
        (ops.dequantize_blockwise, (codes, torch.ones(2), code8, 256, torch.float32), 2 * 512),  # lookup, scale
        (ops.quantize_4bit, (w, 64, "nf4", torch.uint8), (3 + 4) * 2048),  # abs, max, scale; search 16 values
        (ops.quantize_blockwise, (w, code8, 256), (3 + 8) * 2048),  # abs, max, scale; search 256 values
        (ops.int8_vectorwise_quant, (w.half(),), 4 * 2048),  # abs, max, scale, round
        (ops.int8_vectorwise_quant, (w.half(), 6.0), 5 * 2048),  # and |x| >= threshold
        (ops.int8_vectorwise_dequant, (torch.ones(32, 64, dtype=torch.int8), torch.ones(32)), 2 * 2048),
        (ops.int8_mm_dequant, (torch.ones(2, 32, dtype=torch.int32), torch.ones(2), torch.ones(32)), 2 * 64),
    ]
    for op, args, flops in cases:
        cost = only(count(op, *args), f"bitsandbytes.{op.__name__}")
        assert (cost.macs, cost.flops) == (0, flops), op
    bias = torch.ones(32, dtype=torch.float16)
    cost = only(count(ops.int8_mm_dequant, *cases[-1][1], bias=bias), "bitsandbytes.int8_mm_dequant")
    assert cost.flops == 3 * 64  # row scale, column scale, bias


def test_bitsandbytes_int8_double_quant():
    # a CUDA kernel only (training with int8 weights): the formula on the call as it would be recorded
    pytest.importorskip("bitsandbytes")
    op = torch.ops.bitsandbytes.int8_double_quant.default
    a = torch.randn(2, 64).half()
    outs = (torch.empty(2, 64).char(), torch.empty(2, 64).char(), torch.empty(2), torch.empty(64), None)
    cost = find_formula(op)(OpCall(op, (a,), {}, outs))
    assert (cost.macs, cost.flops) == (0, 2 * 4 * 128)  # int8_vectorwise_quant by rows, then by columns
    assert (cost.bytes_read, cost.bytes_written) == (256, 128 + 128 + 8 + 256)


def test_bitsandbytes_int8_products():
    pytest.importorskip("bitsandbytes")
    ops = torch.ops.bitsandbytes
    a, b = torch.randint(-127, 127, (2, 64), dtype=torch.int8), torch.randint(-127, 127, (32, 64), dtype=torch.int8)
    row, col, bias = torch.rand(2), torch.rand(32), torch.rand(32)
    cost = only(count(ops.int8_linear_matmul, a, b), "bitsandbytes.int8_linear_matmul")
    assert cost.macs == 2 * 64 * 32 and cost.flops == 2 * 4096
    cost = only(count(ops.int8_scaled_mm, a, b, row, col, dtype=torch.float32), "bitsandbytes.int8_scaled_mm")
    assert cost.macs == 4096 and cost.flops == 2 * 4096 + 2 * 64  # + row and column scales
    cost = only(count(ops.int8_scaled_mm, a, b, row, col, bias, torch.float32), "bitsandbytes.int8_scaled_mm")
    assert cost.flops == 2 * 4096 + 3 * 64  # + the bias
    # LLM.int8() with 2 outlier columns of x in floating point: (2, 64) x (64, 32) in int8 and (2, 2) x (2, 32)
    x, outliers = torch.randn(2, 64), torch.tensor([3, 5])
    records = count(ops.int8_mixed_scaled_mm, x, a, b, row, col, outliers, bias)
    cost = only(records, "bitsandbytes.int8_mixed_scaled_mm")
    assert cost.macs == 4096 + 2 * 2 * 32  # 4,224
    # 2 per MAC; scales and bias of the int8 product 3 x 64; dequantizing the 32 x 2 outlier weights 2 x 64;
    # adding the outlier product 64
    assert cost.flops == 2 * 4224 + 3 * 64 + 2 * 64 + 64


@pytest.mark.parametrize("threshold", [0.0, 6.0], ids=["int8_scaled_mm", "int8_mixed_scaled_mm"])
def test_bitsandbytes_int8_weights(threshold):
    bnb = pytest.importorskip("bitsandbytes")
    layer = bnb.nn.Linear8bitLt(64, 32, has_fp16_weights=False, threshold=threshold)
    layer.load_state_dict(nn.Linear(64, 32).state_dict())
    layer = layer.to("cpu")  # quantizes: int8 weights and one scale per row
    x = torch.randn(2, 64)
    x[:, 3] = 10.0  # one outlier column, above the threshold
    p = torchcost.profile(layer, x, device="cpu")
    kernel = "bitsandbytes.int8_mixed_scaled_mm" if threshold else "bitsandbytes.int8_scaled_mm"
    assert [r.op for r in p.records if r.cost.macs] == [kernel] and not p.uncounted
    assert p.params.total == 64 * 32 + 32
    assert p.macs == 2 * 64 * 32 + (2 * 1 * 32 if threshold else 0)  # + the outlier column in floating point


def test_every_bitsandbytes_kernel_has_a_formula():
    pytest.importorskip("bitsandbytes")
    names = [name for name in torch._C._dispatch_get_all_op_names() if name.startswith("bitsandbytes::")]
    # optimizer steps are not part of a model's forward or backward
    missing = [name for name in names if "optimizer" not in name and find_formula(_op(name)) is None]
    assert names and not missing


def _op(name: str):
    packet, _, overload = name.removeprefix("bitsandbytes::").partition(".")
    return getattr(getattr(torch.ops.bitsandbytes, packet), overload or "default")
