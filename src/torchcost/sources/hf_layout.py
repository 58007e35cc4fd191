"""Default inputs that place things on a page or in an image: each token's box in a document (BROS, UDOP,
LayoutLM) and the region features of an object detector (LXMERT).

Boxes are ``(x0, y0, x1, y1)`` with ``x0 <= x1`` and ``y0 <= y1``: integers in ``[0, 1000]`` (as LayoutLM's
processors normalise them) for a model that looks them up in a table of 2-D positions, that is one whose forward
types them as a ``LongTensor`` (LayoutLM) or as a tensor with ``max_2d_position_embeddings`` in its config (LiLT);
else floats in ``[0, 1]`` (BROS, which has no such table; UDOP, whose forward clips them to ``[0, 1]`` and takes
their mean).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

LAYOUT_SCALE = 1000  # LayoutLM's processors normalise boxes to 0-1000
# LXMERT keeps 36 detected objects per image (Tan & Bansal 2019, "LXMERT", section 3.2)
REGIONS = 36


def token_boxes(model: nn.Module, config: Any, ids: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random box per token of ``ids`` (batch, tokens), in the model's coordinates."""
    typed = str(inspect.signature(type(model).forward).parameters["bbox"].annotation)
    table = getattr(config, "max_2d_position_embeddings", None) is not None
    return _boxes((*ids.shape, 4), generator, integer="LongTensor" in typed or ("Tensor" in typed and table))


def region_features(config: Any, batch: int, generator: torch.Generator) -> tuple[dict[str, torch.Tensor], str]:
    """``visual_feats`` (``REGIONS`` detector features of ``visual_feat_dim``) and their normalised boxes
    ``visual_pos`` (``visual_pos_dim`` coordinates in ``[0, 1]``) for a model that takes detected objects."""
    width, coordinates = int(config.visual_feat_dim), int(config.visual_pos_dim)
    made = {
        "visual_feats": torch.randn(batch, REGIONS, width, generator=generator),
        "visual_pos": (
            _boxes((batch, REGIONS, 4), generator, integer=False)
            if coordinates == 4
            else torch.rand(batch, REGIONS, coordinates, generator=generator)
        ),
    }
    return made, f"{REGIONS} random detected regions per image ({width} features each)"


def _boxes(shape: tuple[int, ...], generator: torch.Generator, integer: bool) -> torch.Tensor:
    """Random boxes of ``shape`` (..., 4): top-left corners in the first half, sizes up to half the page."""
    corner = torch.rand(*shape[:-1], 2, generator=generator) / 2
    size = torch.rand(*shape[:-1], 2, generator=generator) / 2
    boxes = torch.cat([corner, corner + size], dim=-1)
    return (boxes * LAYOUT_SCALE).long() if integer else boxes
