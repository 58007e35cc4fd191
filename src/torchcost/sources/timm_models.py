"""``timm:NAME``: a timm model with random weights (``pretrained=False``) at its pretrained config's input size."""

from __future__ import annotations

import torch

from torchcost.sources.base import LoadedModel, UnknownModelError, build_on, closest, require


def load(spec: str, name: str, device: torch.device) -> LoadedModel:
    timm = require("timm", "timm")
    if not timm.is_model(name):  # a name, optionally with a pretrained tag: resnet50.a1_in1k
        known: list[str] = timm.list_models()
        raise UnknownModelError(f"unknown timm model {name!r}; closest names: {', '.join(closest(name, known))}")
    model = build_on(device, lambda: timm.create_model(name, pretrained=False))
    config = getattr(model, "pretrained_cfg", None) or {}
    size = config.get("input_size")  # (C, H, W)
    return LoadedModel(spec, model, [(1, *size)] if size else None)
