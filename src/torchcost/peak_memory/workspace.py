"""Transient buffers some kernels allocate inside one op call and free before it returns: invisible at the
dispatch level, yet part of the real peak. Only those measured to matter are modelled; any other kernel's
workspace is not counted (docs/conventions.md). What each kernel allocates is read from PyTorch's source:

- matrix products, CPU and CUDA (``aten/src/ATen/native/LinearAlgebra.cpp``, ``addmm_impl_cpu_``;
  ``aten/src/ATen/native/cuda/Blas.cpp``, ``prepare_matrix_for_cublas``): BLAS takes a matrix whose rows or
  columns are contiguous with a leading dimension at least their length; any other operand (an expanded
  gradient with stride 0, for one: the gradient of ``output.sum()``) is first copied to a contiguous matrix.
- CPU convolutions, with the backend PyTorch chooses for these tensors and this thread count
  (``torch._C._select_conv_backend``). oneDNN (``aten/src/ATen/native/mkldnn/Conv.cpp``,
  ``_mkldnn_convolution``), NCHW tensors: the input and the weight are reordered into copies in oneDNN's blocked
  layout, the result is computed into oneDNN's own buffer, then the copies are freed and the result is copied
  into the dense output: on top of the output, the call holds max(input + weight, output). The slow 2-d path
  (``aten/src/ATen/native/ConvolutionMM2d.cpp``, ``compute_columns2d``): unless the kernel is 1x1 with stride 1
  and no padding, the im2col columns, (batch, C_in x kH x kW, H_out x W_out).
- ``_native_multi_head_attention``, the fused attention ``nn.MultiheadAttention`` calls in inference, for
  ``need_weights=False`` and no mask; B x T x D queries, H heads. The CPU kernel (``native_multi_head_attention_cpu``
  in ``aten/src/ATen/native/transformers/attention.cpp``) holds the projection ``qkv`` (3 BTD), then the
  per-head ``q_k_v`` (3 BTD) made from it before it is freed, then the scores ``q k^T`` (B H T T, softmax in
  place) beside ``q_k_v``, then a contiguous copy of the attention result (BTD) beside ``q_k_v`` while the output
  (BTD) is made: beyond the output, max(5 BTD, 2 BTD + B H T T). The CUDA kernel
  (``native_multi_head_attention_cuda``, ``.../transformers/cuda/attention.cu``) takes a fast path when query,
  key and value are one tensor and the head dimension is divisible by 8: the projection (3 BTD) and the
  attention result (BTD) beside the output, 4 BTD.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch._ops import OpOverload

CONVOLUTION = torch.ops.aten.convolution.default
FUSED_ATTENTION = torch.ops.aten._native_multi_head_attention.default
MATRIX_OPERANDS = {torch.ops.aten.mm.default: (0, 1), torch.ops.aten.addmm.default: (1, 2)}
BACKENDS: Any = getattr(torch._C, "_ConvBackend")  # noqa: B009 (the type stubs call it ConvBackend)


def workspace_bytes(func: OpOverload, args: tuple[Any, ...], out: Any, target: str) -> int:
    """Bytes the kernel of ``func`` holds only while it runs, on a ``target`` ("cpu" or "cuda") device."""
    if func in MATRIX_OPERANDS:
        return sum(_blas_copy(args[i]) for i in MATRIX_OPERANDS[func])
    if func is CONVOLUTION and target == "cpu" and isinstance(out, torch.Tensor):
        return _cpu_convolution(args, out)
    if func is FUSED_ATTENTION:
        return _fused_attention(args, target)
    return 0


def _blas_copy(matrix: torch.Tensor) -> int:
    """Bytes of the contiguous copy BLAS needs of a 2-D operand (0 when it takes the operand as it is)."""
    rows, columns = matrix.shape
    row_stride, column_stride = matrix.stride()
    if (column_stride == 1 and row_stride >= max(1, columns)) or (row_stride == 1 and column_stride >= max(1, rows)):
        return 0
    return matrix.numel() * matrix.element_size()


def _fused_attention(args: tuple[Any, ...], target: str) -> int:
    """The fused attention's buffers beyond its output (0 with a mask or attention weights: not modelled)."""
    query, key, value = args[:3]
    num_head = int(args[4])
    mask = args[9] if len(args) > 9 else None
    need_weights = args[10] if len(args) > 10 else True
    if mask is not None or need_weights or query.dim() != 3:
        return 0
    batch, tokens, width = (int(n) for n in query.shape)
    size = int(query.element_size())
    btd = batch * tokens * width * size
    if target == "cuda" and query is key is value and (width // num_head) % 8 == 0:
        return 4 * btd
    return max(5 * btd, 2 * btd + batch * num_head * tokens * tokens * size)


def _cpu_convolution(args: tuple[Any, ...], out: torch.Tensor) -> int:
    x, weight, bias, stride, padding, dilation, transposed, output_padding, groups = args[:9]
    if x.dim() != 4 or transposed:
        return 0
    bias_sizes = None if bias is None else list(bias.shape)
    backend = torch._C._select_conv_backend(
        x, weight, bias, stride, padding, dilation, transposed, output_padding, groups, bias_sizes
    )
    if backend == BACKENDS.Mkldnn:
        return max(x.nbytes + weight.nbytes, out.nbytes) if x.is_contiguous() and weight.is_contiguous() else 0
    if backend == BACKENDS.Slow2d:
        kernel = tuple(weight.shape[2:])
        if kernel == (1, 1) and tuple(stride) == (1, 1) and not any(padding):
            return 0
        columns = x.shape[0] * x.shape[1] * math.prod(kernel) * out.shape[2] * out.shape[3]
        return int(columns * x.element_size())
    return 0
