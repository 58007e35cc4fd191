"""Model specs: ``torchvision:NAME`` builds a torchvision model with random weights (nothing is downloaded)."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

SOURCES = ("torchvision",)
VIDEO_FRAMES = 16  # clip length for torchvision video models, as in their training recipes


class UnknownModelError(LookupError):
    """The spec names no model this source knows; the message lists the closest names."""


@dataclass
class LoadedModel:
    spec: str
    model: nn.Module
    input_sizes: list[tuple[int, ...]] | None  # the source's default example input, if it has one


def load_model(spec: str, device: torch.device | str = "cpu") -> LoadedModel:
    """Build the model a spec names, on ``device`` (``"meta"`` allocates no weights)."""
    source, sep, name = spec.partition(":")
    if not sep:
        raise UnknownModelError(f"model spec {spec!r} has no source; write it as torchvision:NAME")
    if source == "torchvision":
        return _torchvision(spec, name, torch.device(device))
    raise UnknownModelError(f"unknown model source {source!r} in {spec!r}; known sources: {', '.join(SOURCES)}")


def closest(name: str, known: list[str], count: int = 5) -> list[str]:
    return difflib.get_close_matches(name, known, n=count, cutoff=0.5) or sorted(known)[:count]


def _torchvision(spec: str, name: str, device: torch.device) -> LoadedModel:
    try:
        import torchvision
    except ImportError as exc:
        raise UnknownModelError("torchvision is not installed: pip install torchvision") from exc
    known = torchvision.models.list_models()
    if name not in known:
        raise UnknownModelError(f"unknown torchvision model {name!r}; closest names: {', '.join(closest(name, known))}")
    input_sizes = _torchvision_input(name)
    options = _torchvision_options(name, input_sizes)
    model = build_on(device, lambda: torchvision.models.get_model(name, weights=None, **options))
    return LoadedModel(spec, model, input_sizes)


def _torchvision_options(name: str, input_sizes: list[tuple[int, ...]] | None) -> dict[str, Any]:
    """Builder arguments that give the architecture the default weights describe (without loading them)."""
    options: dict[str, Any] = {}
    if name in ("googlenet", "inception_v3"):
        options["init_weights"] = False  # skip the slow legacy initialisation; the weights are random anyway
    if name == "googlenet":
        options["aux_logits"] = False  # its published weights drop the training-only auxiliary heads
    if name.startswith("vit_") and input_sizes and input_sizes[0][-1] != 224:
        options["image_size"] = input_sizes[0][-1]  # e.g. vit_h_14's default SWAG weights run at 518x518
    return options


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


def _torchvision_input(name: str) -> list[tuple[int, ...]] | None:
    """(1, 3, crop, crop) from the weights' preprocessing; video clips get a time axis."""
    import torchvision

    weights: Any = torchvision.models.get_model_weights(name).DEFAULT
    keywords = getattr(weights.transforms, "keywords", {})
    size = keywords.get("crop_size") or keywords.get("resize_size")
    if size is None or name in torchvision.models.list_models(module=torchvision.models.detection):
        return None  # detection and optical flow take lists or pairs of images: pass --input-size
    height, width = (size, size) if isinstance(size, int) else (size[0], size[-1])
    if name in torchvision.models.list_models(module=torchvision.models.video):
        return [(1, 3, VIDEO_FRAMES, height, width)]
    return [(1, 3, height, width)]
