"""Shape-only kernels for running a model on ``meta`` as a CPU would run it.

PyTorch's meta kernels are sometimes slow Python (a layer norm's takes about 1.5 ms, an addmm's 0.3 ms), refuse
what a CPU runs (grouped GEMMs in fp32), or take another path than the CPU (attention). Each shortcut here is
checked against PyTorch's kernels in tests/counting and returns NotImplemented for the cases it does not cover,
which then run PyTorch's meta kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensor
from torch.nn.attention import SDPBackend
from torch.utils._python_dispatch import _disable_current_modes


def _batch_norm_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``native_batch_norm`` on meta, as the CPU kernel returns it: the output shaped and strided as the input,
    plus the per-channel mean and inverse std it saves for backward, empty in eval mode with running statistics,
    in the parameters' dtype (PyTorch's meta kernel is its Python decomposition, about 2 ms a call, and always
    returns them full and in fp32 for 16-bit inputs)."""
    x, running_mean, training = args[0], args[3], args[5]
    if kwargs or x.dtype not in _FLOATS or x.dim() < 2:
        return NotImplemented
    if any(t is not None and tuple(t.shape) != (x.shape[1],) for t in args[1:5]):
        return NotImplemented  # PyTorch's kernel says what does not fit
    channels = x.shape[1] if training or running_mean is None else 0
    parameter = next((t for t in args[1:5] if t is not None), x)  # 16-bit inputs keep fp32 statistics in fp32
    stats = torch.empty((channels,), dtype=parameter.dtype, device="meta")
    return _like(x), stats, torch.empty((channels,), dtype=parameter.dtype, device="meta")


def _batch_norm_with_update_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_batch_norm_with_update(input, weight, bias, running_mean, running_var, momentum, eps)``: batch norm in
    training mode, plus an empty reserve (the CPU kernel's)."""
    if kwargs or len(args) != 7:
        return NotImplemented
    out = _batch_norm_on_meta((*args[:5], True, *args[5:]), {})
    if out is NotImplemented:
        return out
    return (*out, torch.empty((0,), dtype=torch.uint8, device="meta"))


def _layer_norm_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``native_layer_norm`` on meta, as the CPU kernel returns it: the output as the input, the mean and 1/std
    with the normalised dimensions kept as 1, in the weight's dtype (the input's without one; PyTorch's meta
    kernel keeps them in fp32 for 16-bit inputs)."""
    x, normalized = args[0], args[1]
    if (
        kwargs
        or not x.is_contiguous()
        or x.dtype not in _FLOATS
        or tuple(x.shape[x.dim() - len(normalized) :]) != tuple(normalized)
        or any(t is not None and tuple(t.shape) != tuple(normalized) for t in args[2:4])
    ):
        return NotImplemented
    kept = tuple(x.shape[: x.dim() - len(normalized)]) + (1,) * len(normalized)
    stats_dtype = args[2].dtype if len(args) > 2 and args[2] is not None else x.dtype  # the weight's, as on a CPU
    mean, rstd = (torch.empty(kept, dtype=stats_dtype, device="meta") for _ in range(2))
    return torch.empty(x.shape, dtype=x.dtype, device="meta"), mean, rstd


def _addmm_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``addmm(bias, m1, m2)`` on meta: a contiguous (m, n) result."""
    bias, m1, m2 = args[:3]
    if set(kwargs) - {"beta", "alpha"} or m1.dim() != 2 or m2.dim() != 2 or not m1.dtype == m2.dtype == bias.dtype:
        return NotImplemented
    shape = (m1.shape[0], m2.shape[1])
    if m1.shape[1] != m2.shape[0] or not _broadcasts(tuple(bias.shape), shape):
        return NotImplemented  # PyTorch's kernel says what does not fit
    return torch.empty(shape, dtype=m1.dtype, device="meta")


def _broadcasts(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    """``shape`` broadcasts to ``to`` without growing it."""
    return len(shape) <= len(to) and all(s in (1, t) for s, t in zip(shape[::-1], to[::-1], strict=False))


def _grouped_mm_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_grouped_mm`` (mixture-of-experts layers) on meta, in any dtype and layout a CPU accepts: PyTorch's
    meta kernel refuses what its CUDA kernel cannot run (fp32, unaligned strides). Output shapes as
    ``torch._meta_registrations._create_grouped_mm_output_tensor``."""
    a, b = args[0], args[1]
    offs: torch.Tensor | None = kwargs.get("offs", args[2] if len(args) > 2 else None)
    if set(kwargs) - {"offs", "out_dtype"} or len(args) > 3 or (offs is None and a.dim() + b.dim() != 6):
        return NotImplemented
    if a.dim() == 2:
        groups = offs.shape[0] if offs is not None else 0
        shape = (groups, a.shape[0], b.shape[1]) if b.dim() == 2 else (a.shape[0], b.shape[-1])
    else:
        shape = (a.shape[1], b.shape[1]) if b.dim() == 2 else (a.shape[0], a.shape[1], b.shape[-1])
    return torch.empty(shape, dtype=kwargs.get("out_dtype") or a.dtype, device="meta")


def _convolution_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``convolution`` on meta. A 4-D input: its output in ``torch.channels_last`` when the input or the weight
    is, as cuDNN and oneDNN write it (``cudnn_conv_suggest_memory_format``, ``mkldnn_conv_use_channels_last``);
    PyTorch's meta kernel always writes it contiguous, and a later ``reshape`` would then copy nothing. Dense
    inputs and weights: the output shape worked out here, contiguous (PyTorch's meta kernel is Python, about
    70 us a call); anything it does not check runs PyTorch's kernel, which says what is wrong."""
    x, weight = args[0], args[1]
    if kwargs:
        return NotImplemented
    if x.dim() == 4 and any(_is_channels_last(t) for t in (x, weight)):
        out = torch.ops.aten.convolution.default(*args)
        return torch.empty(out.shape, dtype=out.dtype, device="meta", memory_format=torch.channels_last)
    shape = _convolution_shape(*args[:9])
    return NotImplemented if shape is None else torch.empty(shape, dtype=x.dtype, device="meta")


def _convolution_shape(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    transposed: bool,
    output_padding: list[int],
    groups: int,
) -> tuple[int, ...] | None:
    """The output shape of a plain convolution of contiguous tensors of one dtype (None for any other):
    ``(size + 2 padding - dilation (kernel - 1) - 1) // stride + 1`` per spatial dimension."""
    spatial = x.dim() - 2
    plain = (
        not transposed
        and x.dim() == weight.dim() in (3, 4, 5)
        and len(stride) == len(padding) == len(dilation) == spatial
        and x.dtype == weight.dtype in _FLOATS
        and x.is_contiguous()
        and weight.is_contiguous()
        and groups > 0
        and x.shape[1] > 0
        and x.shape[1] == weight.shape[1] * groups
        and weight.shape[0] % groups == 0
        and (bias is None or (tuple(bias.shape) == (weight.shape[0],) and bias.dtype == x.dtype))
    )
    if not plain:
        return None
    sizes = [
        (size + 2 * pad - dil * (kernel - 1) - 1) // step + 1
        for size, kernel, step, pad, dil in zip(x.shape[2:], weight.shape[2:], stride, padding, dilation, strict=True)
    ]
    return None if min(sizes) <= 0 else (x.shape[0], weight.shape[0], *sizes)


def _cat_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``cat`` of contiguous tensors of one dtype and rank on meta: contiguous, the sizes along ``dim`` added
    (PyTorch's meta kernel is Python that checks every layout, about 0.2 ms a call: DenseNet runs 62)."""
    tensors, dim = args[0], args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if set(kwargs) - {"dim"} or not tensors or not isinstance(dim, int):
        return NotImplemented
    first = tensors[0]
    rank = first.dim()
    if rank == 0 or not -rank <= dim < rank:
        return NotImplemented
    dim %= rank
    same = all(t.dim() == rank and t.dtype == first.dtype and t.is_contiguous() for t in tensors)
    if not same or any(
        t.shape[:dim] != first.shape[:dim] or t.shape[dim + 1 :] != first.shape[dim + 1 :] for t in tensors
    ):
        return NotImplemented  # legacy empty inputs, type promotion, layouts, mismatches: PyTorch's kernel
    shape = (*first.shape[:dim], sum(t.shape[dim] for t in tensors), *first.shape[dim + 1 :])
    return torch.empty(shape, dtype=first.dtype, device="meta")


def _mean_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``mean.dim`` of a contiguous floating-point tensor over some dimensions (global average pooling, the
    squeeze-and-excite of MobileNet and EfficientNet): contiguous, the reduced dimensions dropped or kept as 1
    (PyTorch's meta kernel is Python, about 0.25 ms a call)."""
    x, dims = args[0], args[1] if len(args) > 1 else None
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if set(kwargs) - {"keepdim"} or len(args) > 3 or x.dtype not in _FLOATS or not x.is_contiguous() or x.dim() == 0:
        return NotImplemented
    if not isinstance(dims, list | tuple) or not dims or not all(isinstance(d, int) for d in dims):
        return NotImplemented
    if not all(-x.dim() <= d < x.dim() for d in dims):
        return NotImplemented
    reduced = {d % x.dim() for d in dims}
    shape = [1 if i in reduced else size for i, size in enumerate(x.shape) if keepdim or i not in reduced]
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _unary_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A floating-point activation of one dense tensor (``hardswish``, ``relu``, ``gelu`` with its default tanh-free
    form; meta kernels that are Python decomposing them: 0.1 to 0.7 ms a call): its output shaped and strided as
    its input."""
    x = args[0]
    if len(args) != 1 or kwargs or x.dtype not in _FLOATS or not (x.is_contiguous() or _is_channels_last(x)):
        return NotImplemented
    return _like(x)


def _binary_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``add``, ``sub``, ``mul`` or ``div`` of two contiguous floating-point tensors of one dtype (a squeeze-excite
    gate times its feature map): contiguous, of their broadcast shape (PyTorch's meta kernel is Python
    reference code, about 0.2 ms a call)."""
    if len(args) != 2 or kwargs or not all(isinstance(t, torch.Tensor) for t in args):
        return NotImplemented
    a, b = args
    if not (a.dtype == b.dtype in _FLOATS and a.is_contiguous() and b.is_contiguous()):  # so not channels-last
        return NotImplemented
    try:
        shape = torch.broadcast_shapes(a.shape, b.shape)  # type: ignore[no-untyped-call]
    except RuntimeError:
        return NotImplemented
    return torch.empty(shape, dtype=a.dtype, device="meta")


def _unary_in_place_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The in-place form (``hardswish_``): its input, which it returns."""
    x = args[0]
    return x if len(args) == 1 and not kwargs and x.dtype in _FLOATS else NotImplemented


def _like(x: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(x)`` on meta without its Python stride computation, for a contiguous or channels-last
    ``x`` (any other layout takes ``empty_like`` itself)."""
    if x.is_contiguous():
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    if _is_channels_last(x):
        return torch.empty(x.shape, dtype=x.dtype, device="meta", memory_format=torch.channels_last)
    return torch.empty_like(x)


def _is_channels_last(tensor: torch.Tensor) -> bool:
    """Strided as ``torch.channels_last`` and not also as contiguous (``suggest_memory_format``)."""
    return tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous()


_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# Shape-only implementations of ops whose meta kernels are slow Python (a layer norm's takes about 1.5 ms, an
# addmm's 0.3 ms) or refuse what a CPU runs (grouped GEMMs in fp32), checked against PyTorch's kernels in
# tests/counting. Each returns NotImplemented for the cases it does not cover, which then run PyTorch's meta kernel.
META_SHORTCUTS: dict[OpOverload, Callable[[tuple[Any, ...], dict[str, Any]], Any]] = {
    torch.ops.aten.native_batch_norm.default: _batch_norm_on_meta,
    torch.ops.aten._native_batch_norm_legit.default: _batch_norm_on_meta,  # the same arguments and outputs
    torch.ops.aten._batch_norm_with_update.default: _batch_norm_with_update_on_meta,
    torch.ops.aten.native_layer_norm.default: _layer_norm_on_meta,
    torch.ops.aten.addmm.default: _addmm_on_meta,
    torch.ops.aten.convolution.default: _convolution_on_meta,
    torch.ops.aten.cat.default: _cat_on_meta,
    torch.ops.aten.hardswish.default: _unary_on_meta,
    torch.ops.aten.hardsigmoid.default: _unary_on_meta,
    torch.ops.aten.relu.default: _unary_on_meta,
    torch.ops.aten.sigmoid.default: _unary_on_meta,
    torch.ops.aten.silu.default: _unary_on_meta,
    torch.ops.aten.gelu.default: _unary_on_meta,
    torch.ops.aten.add.Tensor: _binary_on_meta,
    torch.ops.aten.sub.Tensor: _binary_on_meta,
    torch.ops.aten.mul.Tensor: _binary_on_meta,
    torch.ops.aten.div.Tensor: _binary_on_meta,
    torch.ops.aten.mean.dim: _mean_on_meta,
    torch.ops.aten.hardswish_.default: _unary_in_place_on_meta,
    **({torch.ops.aten._grouped_mm.default: _grouped_mm_on_meta} if hasattr(torch.ops.aten, "_grouped_mm") else {}),
}


def sdpa_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``scaled_dot_product_attention`` on meta tensors as a CPU runs it.

    On meta tensors PyTorch always picks the unfused math reference (it writes the whole score matrix and
    computes masked scores). A CPU runs a fused flash kernel when its checks pass (equal head dims of queries,
    keys and values; a supported mask, dtype and layout), which skips the blocks a causal mask hides. PyTorch's
    own backend choice is asked what a CPU would run, on stand-ins of the same shapes and dtypes that allocate
    one row each; when that is the flash kernel, its shape-only implementation runs, otherwise NotImplemented
    (the math reference, as on a CPU).
    """
    if not args or args[0].device.type != "meta":
        return NotImplemented
    call = _SdpaCall(*args, **kwargs)
    return call.flash_on_meta() if call.cpu_runs_flash() else NotImplemented


def sdpa_on_meta_as_cuda(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``scaled_dot_product_attention`` on tensors standing in for CUDA ones (meta or fake) as a CUDA GPU runs it:
    a fused kernel (FlashAttention in fp16 and bf16, the memory-efficient kernel otherwise), which takes dropout
    and a mask and keeps only its output and the log-sum-exp for backward, whenever the head size suits it;
    otherwise NotImplemented."""
    if not args or not (args[0].device.type == "meta" or isinstance(args[0], FakeTensor)):
        return NotImplemented
    call = _SdpaCall(*args, **kwargs)
    return call.flash_on_meta() if call.cuda_runs_fused() else NotImplemented


class _SdpaCall:
    """The arguments of one ``scaled_dot_product_attention`` call."""

    def __init__(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> None:
        self.query, self.key, self.value, self.attn_mask = query, key, value, attn_mask
        self.dropout_p, self.is_causal, self.scale, self.enable_gqa = dropout_p, is_causal, scale, enable_gqa

    def cpu_runs_flash(self) -> bool:
        if any(t.numel() == 0 for t in (self.query, self.key, self.value)):
            return False  # PyTorch's choice divides by a zero size (a floating point exception kills the process)
        with _disable_current_modes():  # the stand-ins are ours, not the model's: not counted
            stand_ins = [_cpu_stand_in(t) for t in (self.query, self.key, self.value)]
            mask = None if self.attn_mask is None else _cpu_stand_in(self.attn_mask)
            query, key, value = stand_ins
            choice = torch._fused_sdp_choice(
                query, key, value, mask, self.dropout_p, self.is_causal, scale=self.scale, enable_gqa=self.enable_gqa
            )
        return bool(choice == SDPBackend.FLASH_ATTENTION.value)

    def cuda_runs_fused(self) -> bool:
        """PyTorch's CUDA checks (``aten/src/ATen/native/transformers/cuda/sdp_utils.cpp``) that matter here: one
        head size for queries, keys and values, a multiple of 8 in fp16 and bf16 (of 4 in fp32; no other dtype);
        fewer key-value heads than query heads (``enable_gqa``) only in fp16 and bf16, FlashAttention's."""
        query, key, value = self.query, self.key, self.value
        if any(t.numel() == 0 for t in (query, key, value)) or query.dim() != key.dim():
            return False
        grouped = self.enable_gqa and query.dim() >= 3 and query.shape[-3] != key.shape[-3]
        half = query.dtype in (torch.float16, torch.bfloat16)
        if not half and (grouped or query.dtype != torch.float32):
            return False
        size = query.shape[-1]
        aligned = size % (8 if half else 4) == 0
        return aligned and key.shape[-1] == value.shape[-1] == size

    def flash_on_meta(self) -> torch.Tensor:
        """The CPU's path: a boolean mask made additive, 3-D (unbatched) inputs given a batch of one."""
        mask = self.attn_mask
        if mask is not None and mask.dtype == torch.bool:  # as PyTorch converts it: 0 where kept, -inf where not
            blocked = torch.scalar_tensor(float("-inf"), dtype=self.query.dtype, device=mask.device)
            mask = torch.where(mask, 0.0, blocked)
        unbatched = self.query.dim() == 3
        query, key, value = (t.unsqueeze(0) if unbatched else t for t in (self.query, self.key, self.value))
        out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, key, value, self.dropout_p, self.is_causal, attn_mask=mask, scale=self.scale
        )
        return out[0].squeeze(0) if unbatched else out[0]  # type: ignore[no-any-return]


def _cpu_stand_in(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU tensor with the shape, dtype, last-dim stride and grad flag of ``tensor``, backed by one row."""
    if tensor.dim() == 0:
        return torch.empty((), dtype=tensor.dtype)
    last = tensor.stride(-1)
    row = torch.empty(max(tensor.shape[-1] - 1, 0) * last + 1, dtype=tensor.dtype)
    stand_in = row.as_strided(tensor.shape, (0,) * (tensor.dim() - 1) + (last,))
    return stand_in.requires_grad_(tensor.requires_grad) if tensor.is_floating_point() else stand_in
