"""Counting what CUDA's ``torch.autocast`` runs, on whatever device the model is counted.

``torch.autocast`` acts only on tensors of its own device. Meta is no autocast device
(``torch.amp.is_autocast_available("meta")`` is False), and the CPU's autocast has lists of its own: it keeps layer
norm, softmax and ``exp`` in the lower precision, where CUDA's runs them in fp32. Models are counted on meta or on
the CPU, while mixed precision is meant for the GPU they are deployed to. So on any device but CUDA, torchcost
applies the policy of CUDA's autocast itself:

- ``AutocastFunctions`` (a torch-function mode) applies it to the functions the model calls (``F.linear``,
  ``torch.matmul``, ``F.layer_norm``, ``softmax``...), above autograd and before PyTorch splits them into ATen
  kernels, as ``torch.autocast`` does: its casts are in the autograd graph, so backward runs as under autocast;
- ``AutocastKernels`` (a dispatch mode, above the counting mode) applies it to the kernels that PyTorch's own
  functions call inside (the matmuls of ``F.multi_head_attention_forward``, the log-softmax of ``cross_entropy``),
  which no torch-function mode sees. Its casts are below autograd; in backward, where an op mixes dtypes, a
  tensor it cast is replaced by that cast, which autograd would have saved under autocast.

Every cast is a ``_to_copy`` op, counted: it is real memory traffic. A weight is cast once per forward, as
autocast's cache does. On CUDA tensors the real ``torch.autocast("cuda")`` runs instead (``CountedAutocast``).

Source of the policy: PyTorch's aten/src/ATen/autocast_mode.cpp, which registers CUDA's autocast kernels
(``KERNEL_CUDA(..., lower_precision_fp | fp32 | fp32_set_opt_dtype | fp32_append_dtype | promote)``) over the op
lists of aten/src/ATen/autocast_mode.h (``AT_FORALL_LOWER_PRECISION_FP``, ``AT_FORALL_FP32``,
``AT_FORALL_FP32_SET_OPT_DTYPE``, ``AT_FORALL_DIFFERENT_REDISPATCH_SIGNATURE``, ``AT_FORALL_PROMOTE``) and
``cached_cast``; the lists below are those of the installed PyTorch's header (2.14).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch._ops import OpOverload
from torch.multiprocessing.reductions import StorageWeakRef
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_map

from torchcost.step import autocast_to
from torchcost.tensors import tensors_in

aten = torch.ops.aten


class Cast(enum.Enum):
    """What autocast does to a listed op's floating-point inputs (``CastPolicy`` in autocast_mode.h)."""

    LOWER = "lower_precision_fp"  # all to fp16 or bf16
    FP32 = "fp32"  # all to fp32
    FP32_DTYPE = "fp32_set_opt_dtype"  # run with dtype=float32 unless a dtype is given (and norm's fp32_append_dtype)
    PROMOTE = "promote"  # all to the widest of them


# CUDA autocast's op lists in PyTorch 2.14: aten/src/ATen/autocast_mode.h (AT_FORALL_LOWER_PRECISION_FP,
# AT_FORALL_FP32, AT_FORALL_FP32_SET_OPT_DTYPE, AT_FORALL_DIFFERENT_REDISPATCH_SIGNATURE, AT_FORALL_PROMOTE), and
# cudnn_convolution and cudnn_convolution_transpose from aten/src/ATen/autocast_mode.cpp. "op.overload" is that
# overload alone; a bare name is the default overload (to the functions a model calls: the name).
CUDA_LISTS: dict[Cast, str] = {
    Cast.LOWER: """
        _convolution.deprecated _convolution conv1d conv2d conv3d conv_tbc conv_transpose1d conv_transpose2d.input
        conv_transpose3d.input convolution prelu addmm addmv addr matmul einsum mm mv linalg_vecdot linear addbmm
        baddbmm bmm chain_matmul linalg_multi_dot _thnn_fused_lstm_cell _thnn_fused_gru_cell lstm_cell gru_cell
        rnn_tanh_cell rnn_relu_cell _scaled_dot_product_flash_attention scaled_dot_product_attention
        cudnn_convolution cudnn_convolution_transpose""",
    Cast.FP32: """
        acos asin cosh erfinv exp expm1 log log10 log2 log1p reciprocal rsqrt sinh tan pow.Tensor_Scalar
        pow.Tensor_Tensor pow.Scalar softplus layer_norm native_layer_norm rms_norm group_norm frobenius_norm.dim
        nuclear_norm nuclear_norm.dim cosine_similarity poisson_nll_loss cosine_embedding_loss nll_loss nll_loss2d
        hinge_embedding_loss kl_div l1_loss smooth_l1_loss huber_loss mse_loss margin_ranking_loss
        multilabel_margin_loss soft_margin_loss triplet_margin_loss multi_margin_loss binary_cross_entropy_with_logits
        dist pdist cdist renorm logsumexp upsample_nearest1d _upsample_nearest_exact1d upsample_nearest2d
        _upsample_nearest_exact2d upsample_nearest3d _upsample_nearest_exact3d upsample_linear1d upsample_bilinear2d
        _upsample_bilinear2d_aa upsample_trilinear3d upsample_bicubic2d _upsample_bicubic2d_aa""",
    Cast.FP32_DTYPE: """
        prod prod.dim_int softmax.int log_softmax.int cumprod cumsum linalg_vector_norm linalg_matrix_norm
        linalg_matrix_norm.str_ord sum sum.dim_IntList norm.Scalar norm.ScalarOpt_dim""",
    Cast.PROMOTE: "addcdiv addcmul atan2 bilinear cross dot vdot grid_sampler index_put tensordot scatter_add",
}

# The kernels that listed ops which PyTorch composes of others (CompositeImplicitAutograd) become before they reach a
# dispatch mode, with the policy of the op they come from. The lists name both where PyTorch's CUDA kernels differ.
CUDA_KERNELS: dict[Cast, str] = {
    Cast.LOWER: """
        _prelu_kernel _scaled_dot_product_flash_attention_for_cpu _scaled_dot_product_efficient_attention
        _scaled_dot_product_cudnn_attention _scaled_dot_product_fused_attention_overrideable
        _efficient_attention_forward _flash_attention_forward""",
    Cast.FP32: "native_group_norm nll_loss_forward nll_loss2d_forward _cdist_forward _euclidean_dist _pdist_forward",
    Cast.FP32_DTYPE: "_softmax _log_softmax",
    Cast.PROMOTE: "_trilinear linalg_cross grid_sampler_2d grid_sampler_3d",
}

# Python's spellings of ATen ops (``2 ** x`` reaches a torch-function mode as ``Tensor.__rpow__``)
_SPELLINGS = {"__pow__": "pow", "__rpow__": "pow", "__matmul__": "matmul", "__rmatmul__": "matmul"}
_SOFTMAX = {  # softmax by the function's name and the kernel's: the kernel
    "softmax": aten._softmax.default,
    "_softmax": aten._softmax.default,
    "log_softmax": aten._log_softmax.default,
    "_log_softmax": aten._log_softmax.default,
}
# norm's overloads without a dtype, and the ones with, which autocast's fp32_append_dtype calls instead
_NORM_WITH_DTYPE = {aten.norm.Scalar: aten.norm.ScalarOpt_dtype, aten.norm.ScalarOpt_dim: aten.norm.ScalarOpt_dim_dtype}


@dataclass(frozen=True)
class Policy:
    """An autocast policy: which ops are cast how, by the name a model calls them by and by ATen kernel."""

    functions: dict[str, Cast]
    kernels: dict[OpOverload, Cast]
    fused_half_softmax: bool  # fp16 softmax to fp32 in one kernel (``_softmax(x, dim, half_to_float=True)``)

    @classmethod
    def from_lists(cls, lists: dict[Cast, str], kernels: dict[Cast, str], fused_half_softmax: bool) -> Policy:
        functions = {name.split(".")[0]: cast for cast, names in lists.items() for name in names.split()}
        by_kernel: dict[OpOverload, Cast] = {}
        for cast, names in [*lists.items(), *kernels.items()]:
            for name in names.split():
                op = _overload(name)
                if op is not None:
                    by_kernel[op] = cast
        functions.update({name: cast for cast, names in kernels.items() for name in names.split()})
        return cls(functions, by_kernel, fused_half_softmax)


def _overload(name: str) -> OpOverload | None:
    """``aten.<op>.<overload>`` (``.default`` for a bare name); None for an op this PyTorch build lacks."""
    op, _, overload = name.partition(".")
    packet = getattr(aten, op, None)
    return getattr(packet, overload or "default", None) if packet is not None else None


CUDA_POLICY = Policy.from_lists(CUDA_LISTS, CUDA_KERNELS, fused_half_softmax=True)


def _eligible(value: Any) -> bool:
    """A tensor autocast may cast: floating point, not fp64 (``is_eligible`` in autocast_mode.h)."""
    return isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float64


def _is_weight(tensor: torch.Tensor) -> bool:
    """A leaf that requires grad (a parameter), or a view of one: autocast caches their casts."""
    base = tensor._base if tensor._base is not None else tensor
    return base.is_leaf and base.requires_grad


def _key(tensor: torch.Tensor) -> tuple[Any, ...] | None:
    """Which data a tensor holds, whatever the order of its dimensions: a weight and its transpose share one key.
    None for tensors without storage."""
    try:
        storage = StorageWeakRef(tensor.untyped_storage())  # type: ignore[no-untyped-call]
        layout = sorted((size, stride) for size, stride in zip(tensor.shape, tensor.stride(), strict=True) if size != 1)
    except (RuntimeError, NotImplementedError):
        return None
    return (storage, tensor.storage_offset(), tuple(layout), tensor._version)


class CastCache:
    """The casts made while counting, by the data they were made from."""

    def __init__(self) -> None:
        self._weights: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}  # key -> (source, cast)
        self._saved: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}  # casts autograd did not see

    def cast(self, tensor: Any, dtype: torch.dtype, lower: torch.dtype, saved: bool) -> Any:
        """``tensor`` in ``dtype`` by a counted ``_to_copy``; a weight's lower-precision cast is made once.
        ``saved``: remember the cast for backward (made below autograd, with grad enabled)."""
        if not _eligible(tensor) or tensor.dtype == dtype:
            return tensor
        key = _key(tensor)
        weight = dtype == lower and tensor.dtype == torch.float32 and _is_weight(tensor)
        if weight and key is not None and key in self._weights:
            return _same_data(self._weights[key][1], tensor)
        out = aten._to_copy.default(tensor, dtype=dtype)
        if key is not None and out.stride() == tensor.stride():  # a dense copy: any permutation of it is a view
            if weight:
                self._weights[key] = (tensor, out)
            if saved:
                self._saved[key] = (tensor, out)
        return out

    def saved_casts(self, tree: Any) -> Any:
        """``tree`` with each tensor cast below autograd in forward replaced by its cast."""

        def replace(leaf: Any) -> Any:
            key = _key(leaf) if _eligible(leaf) else None
            found = self._saved.get(key) if key is not None else None
            return leaf if found is None else _same_data(found[1], leaf)

        return tree_map(replace, tree)

    def forget_weights(self) -> None:
        """As autocast clears its cache when the outermost autocast region is left."""
        self._weights.clear()


def _same_data(cast: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``cast`` (a dense copy of data ``like`` also views) viewed as ``like`` is: the same dims, maybe permuted."""
    if cast.shape == like.shape and cast.stride() == like.stride():
        return cast
    with _disable_current_modes():  # a view, not an op of the model's
        return torch.as_strided(cast, like.shape, like.stride(), cast.storage_offset())


def _mixes_dtypes(tree: Any) -> bool:
    return len({t.dtype for t in tensors_in(tree) if _eligible(t)}) > 1


def _in_backward() -> bool:
    return bool(torch._C._current_graph_task_id() != -1)


class EmulatedAutocast:
    """CUDA autocast's policy, applied by the two modes to a model counted on meta or on the CPU."""

    def __init__(self, dtype: torch.dtype, policy: Policy = CUDA_POLICY) -> None:
        self.dtype = dtype
        self.policy = policy
        self.casts = CastCache()
        self.enabled = False  # in forward, and not in a region the model's code turned autocast off in
        self.inside = False  # running a listed op: the kernels it calls are not cast again

    def run(
        self, cast: Cast, func: Callable[..., Any], name: str, args: Any, kwargs: dict[str, Any], below_autograd: bool
    ) -> Any:
        """``func`` as autocast runs the op: its inputs cast by ``cast``. Casts made ``below_autograd`` with grad
        enabled are kept for backward."""
        saved = below_autograd and torch.is_grad_enabled()
        self.inside = True
        try:
            if cast is Cast.FP32_DTYPE:
                return self._fp32_dtype(func, name, args, kwargs, saved)
            if cast is Cast.PROMOTE:
                floats = {t.dtype for t in tensors_in((args, kwargs)) if _eligible(t)}
                to = torch.float32 if torch.float32 in floats else self.dtype
            else:
                to = self.dtype if cast is Cast.LOWER else torch.float32
            args, kwargs = tree_map(lambda t: self.casts.cast(t, to, self.dtype, saved), (args, kwargs))
            return func(*args, **kwargs)
        finally:
            self.inside = False

    def _fp32_dtype(self, func: Callable[..., Any], name: str, args: Any, kwargs: dict[str, Any], saved: bool) -> Any:
        """An op that takes an output dtype runs with dtype=float32 when its first input is eligible and no dtype
        is given. Softmax is CUDA's composite: fp16 in, fp32 out in one kernel; otherwise a cast, then the kernel
        (``softmax(input, dim, dtype)`` in aten/src/ATen/native/SoftMax.cpp)."""
        first = args[0] if args else None
        explicit = kwargs.get("dtype") is not None or any(isinstance(a, torch.dtype) for a in args)
        if explicit or not isinstance(first, torch.Tensor) or not _eligible(first):
            return func(*args, **kwargs)
        softmax = _SOFTMAX.get(name)
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if softmax is not None and isinstance(dim, int):
            if func is softmax and args[2]:  # _softmax(x, dim, half_to_float=True) writes fp32 already
                return func(*args, **kwargs)
            if first.dtype == torch.float16 and self.policy.fused_half_softmax:
                return softmax(first, dim, True)
            return softmax(self.casts.cast(first, torch.float32, self.dtype, saved), dim, False)
        if func in _NORM_WITH_DTYPE:  # fp32_append_dtype: the overload that takes a dtype
            func, args = _NORM_WITH_DTYPE[func], args if func is aten.norm.Scalar else _pad_keepdim(args)
        return func(*args, **{**kwargs, "dtype": torch.float32})


def _pad_keepdim(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``norm.ScalarOpt_dim(self, p, dim, keepdim=False)`` with its keepdim, which the dtype overload requires."""
    return (*args[:3], args[3] if len(args) > 3 else False)


# Runs a function's own body with the modes still on (torch >= 2.14); older torch has no such entry point.
_REDISPATCH: Callable[..., Any] | None = getattr(torch.overrides, "redispatch_function", None)


class AutocastFunctions(TorchFunctionMode):
    """The policy on the functions the model calls (above autograd, before PyTorch splits them into kernels)."""

    def __init__(self, emulated: EmulatedAutocast) -> None:
        super().__init__()
        self.emulated = emulated
        self._passing: list[Callable[..., Any]] = []  # the unlisted functions being run with this mode on

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        emulated = self.emulated
        emulated.enabled = torch.is_autocast_enabled("cuda")  # a region the model's code turned autocast off in
        name = func.overloadpacket.__name__ if isinstance(func, OpOverload) else getattr(func, "__name__", "")
        name = _SPELLINGS.get(name, name)
        cast = emulated.policy.functions.get(name) if emulated.enabled and "out" not in kwargs else None
        if cast is not None:
            return emulated.run(cast, func, name, args, kwargs, below_autograd=False)
        if self._passing and self._passing[-1] is func:  # it asked the modes again (Tensor.unflatten, no_grad):
            return func(*args, **kwargs)  # run it without this mode; its kernels still meet AutocastKernels
        if _REDISPATCH is None:  # torch < 2.14: the functions it calls are not seen; its kernels still are
            return func(*args, **kwargs)
        self._passing.append(func)  # the functions it calls are seen (those of F.multi_head_attention_forward)
        try:
            with self:
                return _REDISPATCH(func, types, args, kwargs)
        finally:
            self._passing.pop()


class AutocastKernels(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """The policy on kernels no function call showed (below autograd); in backward, the casts autograd missed."""

    def __init__(self, emulated: EmulatedAutocast) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.emulated = emulated

    def __torch_dispatch__(
        self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        emulated = self.emulated
        if _in_backward():
            if _mixes_dtypes((args, kwargs)):
                args, kwargs = emulated.casts.saved_casts((args, kwargs))
            return func(*args, **kwargs)
        cast = emulated.policy.kernels.get(func) if emulated.enabled and not emulated.inside else None
        if cast is None:
            return func(*args, **kwargs)
        return emulated.run(cast, func, func.overloadpacket.__name__, args, kwargs, below_autograd=True)


class CountedAutocast:
    """Autocast to ``dtype`` (none: nothing) while a model is counted on ``device``: CUDA's own on a CUDA device,
    CUDA's policy applied by torchcost elsewhere. Enter it inside the counting mode (its dispatch mode goes on
    top); run the forward inside ``forward()``."""

    def __init__(self, dtype: torch.dtype | None, device: torch.device) -> None:
        self.dtype = dtype
        self.emulated = None if dtype is None or device.type == "cuda" else EmulatedAutocast(dtype)
        self._kernels = None if self.emulated is None else AutocastKernels(self.emulated)

    def __enter__(self) -> CountedAutocast:
        if self._kernels is not None:
            self._kernels.__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._kernels is not None:
            self._kernels.__exit__(*exc)  # type: ignore[no-untyped-call]

    @contextlib.contextmanager
    def forward(self) -> Iterator[None]:
        emulated = self.emulated
        if emulated is None:
            with autocast_to(self.dtype, "cuda"):
                yield
            return
        # torch.is_autocast_enabled() and the autocast dtype say what they say under CUDA's autocast (models and
        # PyTorch look: nn.MultiheadAttention leaves its fused path), and a region the model turns it off in is seen
        before = torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")
        torch.set_autocast_enabled("cuda", True)
        torch.set_autocast_dtype("cuda", emulated.dtype)
        emulated.enabled = True
        try:
            with AutocastFunctions(emulated):
                yield
        finally:
            emulated.enabled = False
            emulated.casts.forget_weights()
            torch.set_autocast_enabled("cuda", before[0])
            torch.set_autocast_dtype("cuda", before[1])


def _softmax_half_to_float(args: tuple[Any, ...], kwargs: dict[str, Any], log: bool) -> Any:
    x, dim, half_to_float = args
    if kwargs or not half_to_float:
        return NotImplemented
    op = aten._log_softmax.default if log else aten._softmax.default
    return op(x.float(), dim, False)


def _softmax_backward_to_half(args: tuple[Any, ...], kwargs: dict[str, Any], log: bool) -> Any:
    grad, out, dim, input_dtype = args
    if kwargs or grad.dtype == input_dtype:
        return NotImplemented
    op = aten._log_softmax_backward_data.default if log else aten._softmax_backward_data.default
    return op(grad, out, dim, grad.dtype).to(input_dtype)


# CUDA's fp16-to-fp32 softmax kernels, which CPU kernels refuse: the same result computed another way
CPU_STAND_INS: dict[OpOverload, Callable[[tuple[Any, ...], dict[str, Any]], Any]] = {
    aten._softmax.default: lambda a, k: _softmax_half_to_float(a, k, log=False),
    aten._log_softmax.default: lambda a, k: _softmax_half_to_float(a, k, log=True),
    aten._softmax_backward_data.default: lambda a, k: _softmax_backward_to_half(a, k, log=False),
    aten._log_softmax_backward_data.default: lambda a, k: _softmax_backward_to_half(a, k, log=True),
}
