"""``torchvision:NAME``: any torchvision model (classification, segmentation, detection, video), random weights."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from torchcost.sources.base import LoadedModel, Shape, UnknownModelError, build_on, closest, require

VIDEO_FRAMES = 16  # clip length for torchvision video models, as in their training recipes


def load(spec: str, name: str, device: torch.device) -> LoadedModel:
    torchvision = require("torchvision", "torchvision")
    known = torchvision.models.list_models()
    if name not in known:
        raise UnknownModelError(f"unknown torchvision model {name!r}; closest names: {', '.join(closest(name, known))}")
    input_sizes = _input_sizes(name)
    builder = torchvision.models.get_model_builder(name)
    options = _options(name, input_sizes, inspect.signature(builder).parameters)
    model = build_on(device, lambda: builder(weights=None, **options))
    if name in torchvision.models.list_models(module=torchvision.models.detection):
        return _detection(spec, model)
    hint = ""
    if name in torchvision.models.list_models(module=torchvision.models.optical_flow):
        hint = "optical flow models take two frames, e.g. two of 1,3,368,496 (H, W divisible by 8)"
    return LoadedModel(spec, model, input_sizes, input_hint=hint)


def _options(name: str, input_sizes: list[Shape] | None, parameters: Any) -> dict[str, Any]:
    """Builder arguments that give the architecture the default weights describe (without loading any)."""
    options: dict[str, Any] = {}
    if "weights_backbone" in parameters:
        options["weights_backbone"] = None  # detection/segmentation builders would download a backbone otherwise
    if name in ("googlenet", "inception_v3"):
        options["init_weights"] = False  # skip the slow legacy initialisation; the weights are random anyway
    if name == "googlenet":
        options["aux_logits"] = False  # its published weights drop the training-only auxiliary heads
    if name.startswith("vit_") and input_sizes and input_sizes[0][-1] != 224:
        options["image_size"] = input_sizes[0][-1]  # e.g. vit_h_14's default SWAG weights run at 518x518
    return options


def _detection(spec: str, model: nn.Module) -> LoadedModel:
    """Detection models take a list of (3, H, W) images and resize them to their transform's ``min_size``.

    How many boxes survive post-processing depends on the weights and the image, and the later stages (RoI
    heads, masks, keypoints) run on the survivors, so with random weights the count would change from run to
    run. The model's own settings are set so that every stage keeps its maximum: no score threshold, no box
    suppressed by NMS (it still runs), no small-box filter. The count is then repeatable, that of a busy image.
    """
    side = int(model.transform.min_size[0])  # type: ignore[union-attr,index]
    kept = _keep_every_detection(model)
    note = f"detection post-processing keeps {kept}; a real image's count depends on how many boxes it yields"
    return LoadedModel(spec, model, [(3, side, side)], input_kind="images", note=note)


def _keep_every_detection(model: nn.Module) -> str:
    """Turn off the thresholds that make the number of proposals and detections depend on the values."""
    kept = []
    rpn = getattr(model, "rpn", None)
    if rpn is not None:  # two-stage models: a fixed number of proposals per image
        rpn.score_thresh, rpn.nms_thresh, rpn.min_size = 0.0, 1.0, 0.0
        kept.append(f"{rpn._post_nms_top_n['testing']} proposals")
    stage = getattr(model, "roi_heads", model)  # the detections: from the RoI heads, or the one-stage model
    stage.score_thresh, stage.nms_thresh = 0.0, 1.0
    kept.append(f"{stage.detections_per_img} detections per image")
    return " and ".join(kept)


def _input_sizes(name: str) -> list[Shape] | None:
    """(1, 3, crop, crop) from the weights' preprocessing; video clips get a time axis."""
    import torchvision

    weights: Any = torchvision.models.get_model_weights(name).DEFAULT
    keywords = getattr(weights.transforms, "keywords", {})
    size = keywords.get("crop_size") or keywords.get("resize_size")
    if size is None:
        return None
    height, width = (size, size) if isinstance(size, int) else (size[0], size[-1])
    if name in torchvision.models.list_models(module=torchvision.models.video):
        return [(1, 3, VIDEO_FRAMES, height, width)]
    return [(1, 3, height, width)]
