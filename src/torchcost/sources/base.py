"""What every model source shares: the loaded model with its default inputs, the errors, meta construction."""

from __future__ import annotations

import contextlib
import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

import torch
from torch import nn

from torchcost.errors import ProfilingError

Shape = tuple[int, ...]
InputKind = Literal["tensors", "tokens", "images"]


class UnknownModelError(ProfilingError, LookupError):
    """The spec names no model this source knows; the message lists the closest names."""


class ModelSourceError(ProfilingError):
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
    input_hint: str = ""  # why there is no default input, said when input_sizes is None


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
    try:
        with device:
            return factory()
    except (NotImplementedError, RuntimeError):
        if device.type != "meta":
            raise
    with _registered_tensors_on_meta():
        return factory()


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
