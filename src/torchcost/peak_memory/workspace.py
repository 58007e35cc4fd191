"""Transient buffers some CPU kernels allocate inside one op call and free before it returns: invisible at the
dispatch level, yet part of the real peak. Only those measured to matter are modelled; any other kernel's
workspace is not counted (docs/conventions.md).

The convolution backend is PyTorch's own choice for these tensors and this thread count
(``torch._C._select_conv_backend``); what each backend allocates is read from PyTorch's source:

- oneDNN (``aten/src/ATen/native/mkldnn/Conv.cpp``, ``_mkldnn_convolution``), NCHW tensors: the input and the
  weight are reordered into copies in oneDNN's blocked layout, the result is computed into oneDNN's own buffer,
  then the copies are freed and the result is copied into the dense output. On top of what is alive before the
  call and the output, the call holds max(input + weight, output) bytes. (Measured with torch.profiler's
  allocation events over 3 to 64 channels, grouped and depthwise, batch 1 to 16: exact.)
- the slow 2-d path (``aten/src/ATen/native/ConvolutionMM2d.cpp``, ``compute_columns2d``): unless the kernel
  is 1x1 with stride 1 and no padding, the im2col columns, (batch, C_in x kH x kW, H_out x W_out).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch._ops import OpOverload

CONVOLUTION = torch.ops.aten.convolution.default
BACKENDS: Any = getattr(torch._C, "_ConvBackend")  # noqa: B009 (the type stubs call it ConvBackend)


def workspace_bytes(func: OpOverload, args: tuple[Any, ...], out: Any) -> int:
    """Bytes a CPU kernel holds only while ``func`` runs (0 when none is modelled)."""
    if func is not CONVOLUTION or not isinstance(out, torch.Tensor) or out.device.type != "cpu":
        return 0
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
