"""Matrix products on quantized weights: PyTorch's packed int8/int4 kernels (torchao reaches them on CPU) and
bitsandbytes' 4-bit and int8 kernels. An (m, k) x (k, n) product is m*k*n MACs whatever the storage; the
per-output scaling after an integer product is 1 FLOP per output element (2 with row and column scales).

bitsandbytes (0.50) picks its kernel by device and CPU, so every op it may dispatch has a formula here:
``Linear4bit`` runs ``gemm_4bit``, or ``gemv_4bit`` on a CPU with AVX512-BF16 (in eval mode, after repacking the
weight, which runs ``dequantize_blockwise`` on double-quantized scales); ``Linear8bitLt`` runs the int8 ops;
quantizing a ``Params4bit``/``Int8Params`` runs the quantize ops. Quantizing and dequantizing are element-wise:
no MACs, a few FLOPs per element as written at each formula. The ``.out`` overloads write their ``out`` argument.
The products are registered in the ``"matmul"`` family; the quantizing and scaling ops are not.
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost
from torchcost.tensors import tensor_bytes

aten = torch.ops.aten

DEQUANTIZE_FLOPS = 2  # a code-book lookup and the block's scale, per element
INT8_DEQUANTIZE_FLOPS = 2  # times the row's scale, times 1/127, per element
INT8_QUANTIZE_FLOPS = 4  # abs and max (the row's absmax), scale by 127/absmax, round, per element
QUANTIZE_FLOPS = 3  # abs and max (the block's absmax), scale by 1/absmax, per element; + the code search


def _rows(x: torch.Tensor) -> int:
    return math.prod(x.shape[:-1])


def _code_search(entries: int) -> int:
    """Comparisons of a binary search for the nearest of ``entries`` code values: 8 for 256, 4 for 16."""
    return (entries - 1).bit_length()


def _cost(call: OpCall, *, macs: int = 0, flops: int = 0) -> OpCost:
    """``call.cost``, except that an ``.out`` overload writes its ``out`` argument rather than reading it."""
    out = call.named("out")
    if out is None:
        return call.cost(macs=macs, flops=flops)
    written = tensor_bytes(out)
    return call.cost(macs=macs, flops=flops, bytes_read=call.bytes_read() - written, bytes_written=written)


@register(aten._weight_int8pack_mm, family="matmul")
def weight_int8pack_mm(call: OpCall) -> OpCost:
    # (m, k) x int8 (n, k)^T, then one scale per output channel: m*k*n MACs + m*n
    x, out = call.arg(0), call.output
    return call.cost(macs=_rows(x) * x.shape[-1] * out.shape[-1], flops=out.numel())


@register(
    *ops_named(
        aten, ["_weight_int4pack_mm", "_weight_int4pack_mm_for_cpu", "_weight_int4pack_mm_with_scales_and_zeros"]
    ),
    family="matmul",
)
def weight_int4pack_mm(call: OpCall) -> OpCost:
    # (m, k) x packed int4 (n, k)^T with per-group scales and zeros folded into the kernel: m*k*n MACs
    x, out = call.arg(0), call.output
    return call.cost(macs=_rows(x) * x.shape[-1] * out.shape[-1])


@register("bitsandbytes::gemm_4bit", family="matmul")
def gemm_4bit(call: OpCall) -> OpCost:
    """gemm_4bit(A (..., k), B packed, shapeB [n, k], absmax, ...): (..., k) x (k, n), plus the bias if any.

    bitsandbytes/backends/default/ops.py ``_gemm_4bit_default_impl`` (dequantize_4bit, then F.linear with the
    bias) on CPU; backends/cuda/ops.py fuses the same. The weights' scales are folded into the product.
    """
    x, (n, k) = call.arg(0), call.arg(2)[:2]
    bias = call.output.numel() if call.named("bias") is not None else 0
    return call.cost(macs=_rows(x) * k * n, flops=bias)


@register("bitsandbytes::gemv_4bit", family="matmul")
def gemv_4bit(call: OpCall) -> OpCost:
    """gemv_4bit(A (..., k), B packed, shapeB [n, k], absmax, code, blocksize): (..., k) x (k, n), no bias.

    bitsandbytes/backends/cpu/ops.py (AVX512-BF16 only: ``gemv_4bit_inference_cpu_*_bf16``, any number of rows,
    on weights repacked by ``_convert_weight_packed_for_cpu``; the bias is added afterwards by
    autograd/_functions.py ``matmul_4bit``), else backends/default/ops.py (dequantize_4bit, then F.linear).
    B holds two weights per byte; shapeB keeps the logical [n, k].
    """
    x, n = call.arg(0), call.arg(2)[0]
    return _cost(call, macs=_rows(x) * x.shape[-1] * n)


@register("bitsandbytes::int8_linear_matmul", family="matmul")
def int8_linear_matmul(call: OpCall) -> OpCost:
    """int8 A (..., k) x int8 B (n, k)^T -> int32 (..., n).

    bitsandbytes/backends/cpu/ops.py (``torch._int_mm``, with AVX512 and torch >= 2.6), else
    backends/default/ops.py ``_int8_linear_matmul_impl`` (an fp32 matmul); cuBLASLt on CUDA.
    """
    x, n = call.arg(0), call.arg(1).shape[0]
    return _cost(call, macs=_rows(x) * x.shape[-1] * n)


@register("bitsandbytes::int8_mm_dequant")
def int8_mm_dequant(call: OpCall) -> OpCost:
    """int32 (m, n) times its row and column scales (+ bias): 2 (or 3) FLOPs per element.

    bitsandbytes/backends/default/ops.py: ``A * (row_stats * col_stats) * 6.200124e-05``, ``+= bias``.
    """
    bias = 1 if call.named("bias") is not None else 0
    return call.cost(flops=(2 + bias) * call.output.numel())


@register("bitsandbytes::int8_scaled_mm", family="matmul")
def int8_scaled_mm(call: OpCall) -> OpCost:
    """int8 A (..., k) x int8 B (n, k)^T, then row and column scales (+ bias): 2 (or 3) FLOPs per output.

    bitsandbytes/backends/default/ops.py: int8_linear_matmul, then int8_mm_dequant.
    """
    x, out = call.arg(0), call.output
    bias = 1 if call.named("bias") is not None else 0
    return call.cost(macs=_rows(x) * x.shape[-1] * out.shape[-1], flops=(2 + bias) * out.numel())


@register("bitsandbytes::int8_mixed_scaled_mm", family="matmul")
def int8_mixed_scaled_mm(call: OpCall) -> OpCost:
    """LLM.int8() with outliers: int8_scaled_mm(CA (m, k), CB (n, k), ...), and the c outlier columns of A
    (m, c) in floating point times the dequantized columns of CB (n, c).

    bitsandbytes/backends/default/ops.py: m*k*n MACs + (2 + bias) FLOPs per output; for the outliers
    int8_vectorwise_dequant (2 per weight element, n*c) and ``output.addmm(subA, subB)`` (m*c*n MACs + m*n).
    """
    ca, n, out = call.arg(1), call.arg(2).shape[0], call.output
    cols = call.named("outlier_cols")
    c = cols.numel() if cols is not None else 0
    bias = 1 if call.named("bias") is not None else 0
    macs = _rows(ca) * ca.shape[-1] * n + _rows(ca) * c * n
    outliers = INT8_DEQUANTIZE_FLOPS * n * c + out.numel() if c else 0
    return call.cost(macs=macs, flops=(2 + bias) * out.numel() + outliers)


@register("bitsandbytes::dequantize_4bit")
def dequantize_4bit(call: OpCall) -> OpCost:
    """Packed 4-bit A (two per byte) -> ``shape``: a code-book lookup and a scale per element.

    bitsandbytes/backends/cpu/ops.py ``cdequantize_blockwise_cpu_{nf4,fp4}_*``, backends/default/ops.py
    ``_dequantize_4bit_compute`` (``code[nibble] * absmax[block]``).
    """
    return _cost(call, flops=DEQUANTIZE_FLOPS * math.prod(call.arg(4)))


@register("bitsandbytes::dequantize_blockwise")
def dequantize_blockwise(call: OpCall) -> OpCost:
    """uint8 A -> floats of A's shape: a lookup in the 256-entry code and a scale per element.

    bitsandbytes/backends/cpu/ops.py ``cdequantize_blockwise_cpu_*``, backends/default/ops.py
    ``_dequantize_blockwise_compute`` (``code[A] * absmax[block]``).
    """
    return _cost(call, flops=DEQUANTIZE_FLOPS * call.arg(0).numel())


@register("bitsandbytes::quantize_4bit")
def quantize_4bit(call: OpCall) -> OpCost:
    """A -> packed 4-bit codes and one absmax per block: 3 + 4 = 7 FLOPs per element (the absmax, the scale,
    and a binary search among the 16 NF4/FP4 values).

    bitsandbytes/backends/default/ops.py (``abs().max``, ``* (1 / absmax)``, ``bucketize``); the packing
    ``(q[::2] << 4) | q[1::2]`` is integer work.
    """
    return call.cost(flops=(QUANTIZE_FLOPS + _code_search(16)) * call.arg(0).numel())


@register("bitsandbytes::quantize_blockwise")
def quantize_blockwise(call: OpCall) -> OpCost:
    """A -> uint8 codes and one absmax per block: 3 + log2(code entries) FLOPs per element (11 for the
    256-entry dynamic code).

    bitsandbytes/backends/cpu/ops.py ``cquantize_blockwise_cpu_*``, backends/default/ops.py (``abs().max``,
    ``* (1 / absmax)``, ``bucketize``).
    """
    return call.cost(flops=(QUANTIZE_FLOPS + _code_search(call.arg(1).numel())) * call.arg(0).numel())


@register("bitsandbytes::int8_vectorwise_quant")
def int8_vectorwise_quant(call: OpCall) -> OpCost:
    """A (rows, k) -> int8 and one absmax per row: 4 FLOPs per element, 5 with an outlier threshold
    (``|A| >= threshold``).

    bitsandbytes/backends/default/ops.py: ``max(A.abs(), dim=1)``, ``round(A * (127 / row_stats))``;
    backends/cuda/ops.py ``cint8_vector_quant``.
    """
    outliers = 1 if call.arg(1, 0.0) > 0.0 else 0
    return call.cost(flops=(INT8_QUANTIZE_FLOPS + outliers) * call.arg(0).numel())


@register("bitsandbytes::int8_double_quant")
def int8_double_quant(call: OpCall) -> OpCost:
    """int8_vectorwise_quant by rows and again by columns: 2 x 4 = 8 FLOPs per element (10 with a threshold).

    bitsandbytes/backends/cuda/ops.py (the op has a CUDA kernel only).
    """
    outliers = 1 if call.arg(1, 0.0) > 0.0 else 0
    return call.cost(flops=2 * (INT8_QUANTIZE_FLOPS + outliers) * call.arg(0).numel())


@register("bitsandbytes::int8_vectorwise_dequant")
def int8_vectorwise_dequant(call: OpCall) -> OpCost:
    """int8 A times its row's scale / 127: 2 FLOPs per element (bitsandbytes/_ops.py, the default kernel)."""
    return call.cost(flops=INT8_DEQUANTIZE_FLOPS * call.arg(0).numel())
