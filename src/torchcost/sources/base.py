"""What every model source shares: the loaded model with its default inputs, the errors, meta construction."""

from __future__ import annotations

import contextlib
import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, Protocol

import torch
from torch import nn

from torchcost.emulate.on_meta import values_while_building
from torchcost.errors import ProfilingError

Shape = tuple[int, ...]
InputKind = Literal["tensors", "images", "keywords"]


class KeywordMaker(Protocol):
    """Makes a model's keyword inputs for a batch size and a text length (None: the source's default)."""

    note: str  # what the last call made, in words (e.g. how many image tokens it inserted)
    main: str | None  # the name of the model's main input (input_ids, pixel_values, ...)

    def __call__(self, batch: int, seq_len: int | None, generator: torch.Generator) -> dict[str, Any]: ...


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
    input_kind: InputKind = "tensors"  # images: a list of (C, H, W); keywords: made by keyword_inputs
    input_dtypes: list[torch.dtype] | None = None  # per input, when the source records them (an exported program)
    input_hint: str = ""  # why there is no default input, said when input_sizes is None
    keyword_inputs: KeywordMaker | None = None  # keywords: makes the model's keyword inputs
    note: str = ""  # what the source set or assumed that the counts depend on
    if_it_fails: str = ""  # what to try instead when the model cannot run (a default config's real checkpoints)


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

    On ``meta``, the values of small tensors are kept as they are computed (see ``values_while_building``), so
    a constructor may look at them (``.tolist()``, ``.item()``) and the model's buffers keep their values. A
    constructor that looks at anything else is built with only the parameters and buffers put on meta as they
    are registered, so each one exists on the CPU only for a moment.

    The random weights are drawn from a fixed seed (the global random state is left as it was), so a model
    whose counts depend on its values (a detector's number of boxes) counts the same on every run.
    """
    try:
        with device, _seeded(), values_while_building() if device.type == "meta" else contextlib.nullcontext():
            return factory()
    except (NotImplementedError, RuntimeError):
        if device.type != "meta":
            raise
    with _registered_tensors_on_meta(), _seeded(), values_while_building():
        return factory()


WEIGHTS_SEED = 0


@contextlib.contextmanager
def _seeded() -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHTS_SEED)
        yield


@contextlib.contextmanager
def _registered_tensors_on_meta() -> Iterator[None]:
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":  # a parameter already on meta is shared (tied)
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
