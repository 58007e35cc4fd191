"""What every model source shares: the loaded model with its default inputs, the errors, meta construction."""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import torch
from torch import nn
from torch._ops import OpOverload
from torch.utils._python_dispatch import TorchDispatchMode

from torchcost.counting.mode import updates_self

Shape = tuple[int, ...]
InputKind = Literal["tensors", "tokens", "images"]


class UnknownModelError(LookupError):
    """The spec names no model this source knows; the message lists the closest names."""


class ModelSourceError(ValueError):
    """The spec names something that cannot be profiled as it is; the message says what would work."""


class MissingPackageError(ModelSourceError):
    """An optional package a source needs is not installed; the message is a one-line install hint."""


@dataclass
class LoadedModel:
    """A model built from a spec, with what the source knows about its example input."""

    spec: str
    model: nn.Module
    input_sizes: list[Shape] | None  # the source's default example input shapes, if it has them
    input_kind: InputKind = "tensors"  # tokens: build input_ids/attention_mask; images: a list of (C, H, W)
    input_dtypes: list[torch.dtype] | None = None  # per input, when the source records them (an exported program)
    token_inputs: tuple[str, ...] = ("input_ids", "attention_mask")  # keyword inputs of a token model
    vocab_size: int | None = None  # token ids are drawn below this
    input_hint: str = "pass --input-size, e.g. 1,3,224,224"  # said when input_sizes is None


def require(package: str, extra: str) -> ModuleType:
    """Import an optional package, or raise a one-line install hint."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingPackageError(
            f"this model source needs {package}, which is not installed: pip install 'torchcost[{extra}]'"
        ) from None


def closest(name: str, known: list[str], count: int = 5) -> list[str]:
    return difflib.get_close_matches(name, known, n=count, cutoff=0.5) or sorted(known)[:count]


def build_on(device: torch.device, factory: Callable[[], nn.Module]) -> nn.Module:
    """Build a model with its parameters on ``device``.

    On ``meta``, a constructor that computes with tensors (``.tolist()``, ``.item()``) cannot run under
    ``torch.device("meta")``; it is then built with only the parameters and buffers put on meta as they
    are registered, so each one exists on the CPU only for a moment.
    """
    skip = _InitSkippedOnMeta() if device.type == "meta" else contextlib.nullcontext()
    try:
        with device, skip:
            return factory()
    except (NotImplementedError, RuntimeError):
        if device.type != "meta":
            raise
    with _registered_tensors_on_meta(), _InitSkippedOnMeta():
        return factory()


class _InitSkippedOnMeta(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Skips in-place ops on meta tensors while a model is built: weight initialisation (``normal_``,
    ``uniform_``, ``clamp_``, ``fill_``) changes only data, which meta tensors do not have, and PyTorch's meta
    kernels for these are Python (they were about 40% of building timm's models on meta)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def __torch_dispatch__(
        self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        if args and isinstance(args[0], torch.Tensor) and args[0].device.type == "meta" and _updates_self(func):
            return args[0]
        return func(*args, **(kwargs or {}))


@functools.cache
def _updates_self(op: OpOverload) -> bool:
    return updates_self(op)


@contextlib.contextmanager
def _registered_tensors_on_meta() -> Iterator[None]:
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None:
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    def buffer_on_meta(module: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True) -> None:
        register_buffer(module, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter = parameter_on_meta  # type: ignore[method-assign,assignment]
    nn.Module.register_buffer = buffer_on_meta  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]
