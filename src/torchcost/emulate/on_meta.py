"""Running code on ``meta`` with the values ``MetaValues`` keeps: ``MetaFunctions`` for what the dispatcher does
not see (a tensor made from data, a value formatted into a string, the kernel choice of fused attention),
``FollowValues`` for the ops it does, and ``values_while_building`` while a model is built."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch._ops import OpOverload
from torch.utils import backend_registration
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_leaves, tree_map

from torchcost.emulate.meta_kernels import sdpa_on_meta, sdpa_on_meta_as_cuda
from torchcost.emulate.meta_values import BUILT, MetaValues, is_meta
from torchcost.emulate.schema import updates_self


class MetaFunctions:
    """What a model does on meta tensors that the dispatcher does not see, made as on a CPU while active:

    - ``F.scaled_dot_product_attention`` runs the kernel a CPU would choose (see ``sdpa_on_meta``), or CUDA's while
      ``CudaChoices`` is active;
    - ``torch.tensor(data, device="meta")`` keeps its data as the tensor's value;
    - formatting a one-element meta tensor of known value (``f"expert_{index}"``) formats the value;
    - ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` take their fused inference kernels only on
      devices they list (the CPU, CUDA and the registered third-party backend, named ``privateuseone`` when
      none is): meta stands in as that backend, so that they choose as a CPU would.

    The functions are replaced in their modules for the duration (a torch-function mode would see none of the
    calls made inside PyTorch's own functions, and would itself turn the fused paths off).
    """

    def __init__(self, values: MetaValues) -> None:
        self.values = values
        self._saved: list[tuple[Any, str, Any]] = []  # (owner, name, the value before)

    def __enter__(self) -> MetaFunctions:
        _cache_function_sets()  # before replacing: PyTorch caches sets of its functions on first use
        sdpa, tensor, as_tensor = F.scaled_dot_product_attention, torch.tensor, torch.as_tensor
        format_ = torch.Tensor.__format__
        replaced: list[tuple[Any, str, Any]] = [
            (F, "scaled_dot_product_attention", lambda *a, **k: _first(_sdpa_choice(a, k), sdpa, a, k)),
            (torch, "tensor", lambda *a, **k: _first(self._tensor(tensor, a, k), tensor, a, k)),
            (torch, "as_tensor", lambda *a, **k: _first(self._tensor(as_tensor, a, k), as_tensor, a, k)),
            (torch.Tensor, "__format__", lambda t, spec: _first(self._format(t, spec), format_, (t, spec), {})),
        ]
        if backend_registration._privateuse1_backend_name == "privateuseone":  # no third-party backend
            replaced.append((backend_registration, "_privateuse1_backend_name", "meta"))
        for owner, name, value in replaced:
            self._saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, value)
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, value in reversed(self._saved):
            setattr(owner, name, value)
        self._saved.clear()

    def _format(self, tensor: torch.Tensor, spec: str) -> Any:
        """``f"expert_{index}"`` with a one-element meta tensor of known value formats the value, as on a CPU."""
        value = self.values.get(tensor) if is_meta(tensor) and tensor.dim() == 0 else None
        return NotImplemented if value is None else format(value.item(), spec)

    def _tensor(self, make: Callable[..., torch.Tensor], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``torch.tensor(data, device="meta")`` keeps its data as the value (no op of the dispatcher sees it)."""
        device = kwargs.get("device") or make([]).device  # the default device (torch.device("meta") as a context)
        if torch.device(device).type != "meta" or not args or isinstance(args[0], torch.Tensor):
            return NotImplemented
        data = tree_map(lambda leaf: self.values.get(leaf) if is_meta(leaf) else leaf, args[0])  # a list of scalars
        if any(leaf is None for leaf in tree_leaves(data)):
            return NotImplemented
        with _disable_current_modes():
            value = make(data, dtype=kwargs.get("dtype"), device="cpu")
            meta = torch.empty_like(value, device="meta").requires_grad_(bool(kwargs.get("requires_grad")))
        self.values.seed(meta, value)
        return meta


class CudaChoices:
    """The kernels CUDA would choose, while active, where a meta or CPU tensor takes the CPU's:

    - dropout in training, with ``0 < p < 1``: one fused ``native_dropout`` kernel keeping a 1-byte mask (ATen
      ``Dropout.cpp``: ``is_fused_kernel_acceptable`` holds only on CUDA), where a CPU makes a Bernoulli mask in
      the input's dtype and multiplies;
    - ``F.scaled_dot_product_attention``: a fused kernel keeping the output and the log-sum-exp for backward (see
      ``sdpa_on_meta_as_cuda``), where a CPU computes the whole score matrix when dropout or a mask rules its own
      fused kernel out.
    """

    active = 0  # how many are entered: MetaFunctions then asks CUDA's choice of attention kernel too

    def __enter__(self) -> CudaChoices:
        _cache_function_sets()
        CudaChoices.active += 1
        self._dropout, self._sdpa = F.dropout, F.scaled_dot_product_attention
        sdpa = self._sdpa
        F.dropout = self._fused_dropout
        F.scaled_dot_product_attention = lambda *a, **k: _first(sdpa_on_meta_as_cuda(a, k), sdpa, a, k)
        return self

    def __exit__(self, *exc: object) -> None:
        F.dropout, F.scaled_dot_product_attention = self._dropout, self._sdpa
        CudaChoices.active -= 1

    def _fused_dropout(
        self, input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
    ) -> torch.Tensor:
        if not training or inplace or not 0 < p < 1 or input.device.type == "cuda":
            return self._dropout(input, p, training, inplace)
        return torch.native_dropout(input, p, True)[0]


def _sdpa_choice(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The attention kernel a meta run takes: CUDA's choice while ``CudaChoices`` is active, else a CPU's."""
    return (sdpa_on_meta_as_cuda if CudaChoices.active else sdpa_on_meta)(args, kwargs)


def _cache_function_sets() -> None:
    """Compute the sets of PyTorch functions that PyTorch builds once and caches (the constructors that
    ``torch.device("meta")`` gives a device, the functions torch.overrides knows), so that none is built while
    ``torch.tensor`` and the rest are replaced and holds a replacement forever."""
    from torch import overrides
    from torch.utils import _device

    for cached in ("get_ignored_functions", "get_overridable_functions", "get_testing_overrides"):
        getattr(overrides, cached, lambda: None)()
    getattr(_device, "_device_constructors", lambda: None)()


def _first(out: Any, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``out``, unless it is NotImplemented: then ``function(*args, **kwargs)``."""
    return function(*args, **kwargs) if out is NotImplemented else out


# The values of small tensors made while models are built on meta (their buffers: positions, rotary
# frequencies, merge sizes), kept for as long as those tensors live; every store falls back to it.


class FollowValues(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Runs every op as usual and keeps ``values`` up to date: the values of meta tensors that derive from known
    ones; an op meta cannot run (``item``, ``nonzero``) runs on those values. The counting mode does the same
    beside its counting; this is for code that runs on meta without being counted (an input maker's call).

    ``building``: a model is being built, so the in-place initialisation of tensors whose values are not kept
    (the weights: ``normal_``, ``uniform_`` change only data, which meta tensors do not have) is skipped: PyTorch's
    meta kernels for them are Python, about 40% of building timm's models on meta."""

    def __init__(self, values: MetaValues = BUILT, building: bool = False) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.values = values
        self.building = building

    def __torch_dispatch__(
        self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if not self.building:
            args, kwargs = self.values.on_meta((args, kwargs))
        elif args and is_meta(args[0]) and updates_self(func) and self.values.get(args[0]) is None:
            return args[0]
        try:
            out = func(*args, **kwargs)
        except (RuntimeError, NotImplementedError):
            out = self.values.run(func, args, kwargs)
            if out is NotImplemented:
                raise
            return out
        self.values.follow(func, args, kwargs, out)
        return out


@contextlib.contextmanager
def values_while_building() -> Iterator[None]:
    """Build a model on meta with the values of its small tensors kept (see ``BUILT``): its buffers can then
    be looked at while it runs, and a constructor that looks at a value (``linspace(...).tolist()``) runs."""
    with MetaFunctions(BUILT), FollowValues(BUILT, building=True):
        yield
