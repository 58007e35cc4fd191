"""Image and video inputs of a transformers model:

- images: the model's image processor (see ``hf_image_processors``: its size, patching and extra outputs such as
  Qwen2-VL's ``image_grid_thw`` or DETR's ``pixel_mask``) on random ``IMAGE_SIDE`` x ``IMAGE_SIDE`` images, else
  the config's ``image_size`` and ``num_channels``;
- video models: clips of the config's ``num_frames`` random frames; keypoint matchers: pairs of images (both
  through the processor, which takes a clip or a pair as a list of images);
- Pix2Struct's ``flattened_patches``, and images stacked as clips or one per sample for a model whose code
  unpacks five sizes from ``pixel_values``.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from functools import cached_property, partial
from typing import Any

import torch
import torch.nn.functional as F

from torchcost.sources import hf_image_processors
from torchcost.sources.hf_inputs_config import find_value, vision_config
from torchcost.sources.hf_inputs_model import ModelInputs
from torchcost.sources.hf_inputs_text import TEXT_IDS

IMAGE_SIDE = 448  # synthetic images for processors that keep the resolution they are given (Qwen2-VL, Pixtral)
FRAMES = 8  # video clips, when the config does not say
IMAGE_EXTRAS = (
    "pixel_mask",
    "image_grid_thw",
    "image_sizes",
    "pixel_attention_mask",
    "aspect_ratio_ids",
    "aspect_ratio_mask",
    "image_position_ids",
    "pixel_position_ids",
    "grid_thw",
    "prompt_pixel_values",
    "prompt_masks",
)
# "batch_size, num_frames, num_channels, height, width = pixel_values.shape" or "batch_size, num_images =
# pixel_values.shape[:2]": the second size's name
STACK_UNPACK = re.compile(  # the last form: IDEFICS from transformers 5.25 on
    r"\w+,\s*(\w+)(?:,\s*\w+){3}\s*=\s*pixel_values\.shape\b|\w+,\s*(\w+)\s*=\s*pixel_values\.shape\[:2\]"
    r"|pixel_values\.flatten\(0,\s*1\)"
)


class VisionInputs(ModelInputs):
    """Makes the image and video inputs of one transformers model."""

    @cached_property
    def image_processor(self) -> Any:
        """The model type's image processor, at the config's patch sizes where it cuts images into patches (see
        ``hf_image_processors``), or the checkpoint's own where its folder has a ``preprocessor_config.json``;
        built once for all the images one call makes."""
        return hf_image_processors.of_checkpoint(self.checkpoint) or hf_image_processors.of_config(self.config)

    def _processed(self, **data: Any) -> dict[str, Any] | None:
        """``data`` through the image processor, as tensors; None where it has none or refuses the data."""
        if self.image_processor is None:
            return None
        try:
            return dict(self.image_processor(**data, return_tensors="pt"))
        except Exception:
            return None

    def _images(self, batch: int, generator: torch.Generator, notes: list[str]) -> dict[str, Any]:
        side = _image_side(self.config)
        random_images = partial(_random_images, side=side, generator=generator)
        what, prompts = "image(s)", {}
        if "prompt_pixel_values" in self.accepts:  # SegGPT: each image comes with an example image and its mask
            masks = [torch.randint(0, 2, (side, side), dtype=torch.uint8, generator=generator) for _ in range(batch)]
            prompts = {"prompt_images": random_images(batch), "prompt_masks": masks}
        processed = self._processed(images=random_images(batch), **prompts)
        frames = find_value(self.config, "num_frames")
        if processed is None:  # a processor of image pairs (keypoint matchers) takes a list of pairs
            processed = self._processed(images=[random_images(2) for _ in range(batch)])
            what = "image pair(s)"
        elif getattr(processed.get("pixel_values"), "ndim", 0) == 5 and isinstance(frames, int):
            # a video processor takes each clip as a list of frames (one image is a clip of one frame)
            processed = self._processed(images=[random_images(frames) for _ in range(batch)])
            what = f"clip(s) of {frames} frames"
        if processed is not None and isinstance(processed.get("pixel_values"), torch.Tensor):
            # patches and their grid, or images stacked with their prompts: the processor's sizes are the model's
            patches = any(n in processed for n in ("image_grid_thw", "target_sizes", "prompt_pixel_values"))
            pixels = processed["pixel_values"] if patches else _at_config_size(processed["pixel_values"], self.config)
            tiles = pixels.dim() == 5 and what == "image(s)"  # each image's tiles (Idefics3's), not clips or pairs
            if tiles and not any(n in self.accepts for n in TEXT_IDS):  # a vision tower takes them as images
                pixels = processed["pixel_values"] = pixels.flatten(0, 1)
            size = "x".join(str(d) for d in pixels.shape[-2:]) if pixels.dim() >= 4 else f"{len(pixels)} patches"
            notes.append(f"{batch} random {what} through the model's image processor ({size})")
            wanted = (set(IMAGE_EXTRAS) | self.accepts | self._image_arguments()) - {"pixel_values"}
            as_processed = pixels is processed["pixel_values"]  # not resized: the processor's sizes hold
            extras = {k: v for k, v in processed.items() if k in wanted and (as_processed or "pixel_values" in k)}
            return {"pixel_values": pixels, **self._image_sizes(pixels, batch), **extras}
        channels, (height, width) = _channels(self.config), _image_hw(self.config)
        notes.append(f"{batch} random {height}x{width} image(s) of {channels} channels (the config's size)")
        pixels = torch.randn(batch, channels, height, width, generator=generator)
        return {"pixel_values": pixels, **self._image_sizes(pixels, batch)}

    def _image_arguments(self) -> set[str]:
        """Inputs that the model's ``get_image_features`` (or its forward, for a vision tower) needs: a processor's
        outputs of those names (SigLIP 2's ``spatial_shapes``, DeepSeek-VL-Hybrid's ``high_res_pixel_values``)
        are the model's inputs whatever their name."""
        name = "get_image_features"
        functions = [getattr(m, name, None) for m in self.owners]
        parameters = [p for f in functions if f is not None for p in inspect.signature(f).parameters.values()]
        needed = {
            p.name for p in parameters if p.default is p.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }
        return needed | self.required | {f"image_{n}" for n in self.required}

    def _image_sizes(self, pixels: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        """``image_sizes`` (each image's height and width, as LLaVA-NeXT's and Pixtral's processors give them)
        for a model that needs them (its forward or its ``get_image_features`` has no default for them)."""
        features = getattr(self.model, "get_image_features", None)
        parameter = inspect.signature(features).parameters.get("image_sizes") if features else None
        needed = "image_sizes" in self.required or (parameter is not None and parameter.default is parameter.empty)
        if "image_sizes" not in self.accepts or not needed or pixels.dim() < 4:
            return {}
        return {"image_sizes": torch.tensor([list(pixels.shape[-2:])] * batch)}

    def _as_stacks(self, pixels: torch.Tensor, notes: list[str]) -> torch.Tensor:
        """Images as (batch, n, channels, height, width) for a model whose code unpacks ``pixel_values.shape`` into
        five sizes: clips of the config's ``num_frames`` (X-CLIP, InstructBLIP-Video), or one image per sample
        (IDEFICS, ModernVBERT)."""
        names = ("forward", "get_image_features", "get_video_features")
        functions = [f for f in (getattr(o, n, None) for o in self.owners for n in names) if f is not None]
        unpacked = next((m for m in map(STACK_UNPACK.search, map(_source, functions)) if m), None)
        if unpacked is None:
            return pixels
        frames = find_value(self.config, "num_frames") if "frame" in (unpacked[1] or unpacked[2] or "") else None
        count = frames if isinstance(frames, int) and frames > 0 else 1
        if count > 1:
            notes.append(f"each image repeated as a clip of {count} frames (the config's num_frames)")
        return pixels.unsqueeze(1).expand(-1, count, -1, -1, -1).contiguous()

    def _flattened_patches(self, batch: int, generator: torch.Generator, notes: list[str]) -> dict[str, Any]:
        """Pix2Struct's input: the processor's patches of each image and their mask."""
        images = _random_images(1, _image_side(self.config), generator) * batch
        processed = self._processed(images=images) or {}
        made = {k: v for k, v in processed.items() if k in ("flattened_patches", "attention_mask")}
        if "flattened_patches" in made:
            patches = made["flattened_patches"].shape[1]
            notes.append(f"{batch} random image(s) through the model's image processor ({patches} patches)")
        return made

    def _videos(self, batch: int, generator: torch.Generator, notes: list[str]) -> dict[str, Any]:
        frames = int(find_value(self.config, "num_frames") or FRAMES)
        channels, (height, width) = _channels(self.config), _image_hw(self.config)
        notes.append(f"{batch} random clip(s) of {frames} frames, {height}x{width}")
        return {"pixel_values_videos": torch.randn(batch, frames, channels, height, width, generator=generator)}


def _source(function: Any) -> str:
    try:
        return inspect.getsource(function)
    except (TypeError, OSError):  # built in, or no source file
        return ""


def _image_size(config: Any, any_sub_config: bool = True) -> Any:
    """The vision config's ``image_size``, else the config's (or, with ``any_sub_config``, any sub-config's); for a
    timm backbone (``TimmWrapperConfig``), its architecture's input size."""
    vision = vision_config(config)
    size = getattr(vision, "image_size", None) or getattr(config, "image_size", None)
    size = size or (find_value(config, "image_size") if any_sub_config else None)
    architecture = getattr(vision, "architecture", None)
    if size is None and isinstance(architecture, str) and getattr(vision, "model_type", "") == "timm_wrapper":
        with contextlib.suppress(Exception):
            import timm

            pretrained = timm.models.get_pretrained_cfg(architecture)
            size = list(pretrained.input_size[-2:]) if pretrained is not None else None
    return size


def _image_hw(config: Any) -> tuple[int, int]:
    """The config's image size, rounded up to whole windows of patches for a windowed ViT (RF-DETR's DINOv2 cuts
    its 37 x 37 patches of 518 pixels into ``num_windows`` x ``num_windows`` windows: 560 pixels)."""
    size = _image_size(config)
    pair = isinstance(size, list | tuple) and len(size) == 2
    height, width = (size, size) if isinstance(size, int) else size if pair else (224, 224)
    vision = vision_config(config)
    windows, patch = getattr(vision, "num_windows", None), getattr(vision, "patch_size", None)
    if isinstance(windows, int) and windows > 1 and isinstance(patch, int):
        step = windows * patch
        height, width = -(-int(height) // step) * step, -(-int(width) // step) * step
    return int(height), int(width)


def _image_side(config: Any) -> int:
    size = _image_size(config)
    return size if isinstance(size, int) else max(size) if isinstance(size, list | tuple) and size else IMAGE_SIDE


def _at_config_size(pixels: torch.Tensor, config: Any) -> torch.Tensor:
    """Images resized to the config's ``image_size`` where it has one and the processor's default differs
    (a processor's defaults are those of one checkpoint; the config is the model's own). Not to the size of a
    sub-model that takes crops of the image (Depth Pro's patch encoder)."""
    size = _image_size(config, any_sub_config=False)
    if pixels.dim() < 4 or not isinstance(size, int | list | tuple) or isinstance(size, bool):
        return pixels
    height, width = _image_hw(config)
    if tuple(pixels.shape[-2:]) == (height, width):
        return pixels
    flat = pixels.reshape(-1, *pixels.shape[-3:])
    resized = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False)
    return resized.reshape(*pixels.shape[:-2], height, width)


def _channels(config: Any) -> int:
    return int(getattr(vision_config(config), "num_channels", None) or find_value(config, "num_channels") or 3)


def _random_images(count: int, side: int, generator: torch.Generator) -> list[torch.Tensor]:
    return [torch.randint(0, 256, (3, side, side), dtype=torch.uint8, generator=generator) for _ in range(count)]
