"""Which image processor makes a transformers model's images: the checkpoint's own where its folder describes
one, else the model type's (no files are read), at the config's patch sizes where it cuts images into patches,
else Qwen2-VL's for a Qwen-like vision tower of a model type that maps none.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from torchcost.sources.hf_inputs_config import model_types, vision_config


def of_checkpoint(folder: Path | None) -> Any:
    """The image processor a checkpoint's ``preprocessor_config.json`` describes (its image size, crop and
    patching), read from its folder alone; None where it has none or transformers cannot build it."""
    if folder is None or not (folder / "preprocessor_config.json").is_file():
        return None
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)  # type: ignore[no-untyped-call]
    except Exception:
        return None


def of_config(config: Any) -> Any:
    """The model type's image processor (no files are read): with its defaults, or at the config's patch sizes
    where it cuts images into patches (a grid's ``merge_size``, or a ``patch_size`` the config sets otherwise)."""
    processor = _default_image_processor(config)
    sizes = _patch_sizes(config)
    if hasattr(processor, "merge_size") or _differs(getattr(processor, "patch_size", None), sizes.get("patch_size")):
        processor = _default_image_processor(config, **sizes)
    return processor


def _default_image_processor(config: Any, **options: Any) -> Any:
    """The model type's image processor with its defaults, with ``options`` where it takes them (audio: see
    hf_audio)."""
    from transformers.models.auto import image_processing_auto

    names = image_processing_auto.IMAGE_PROCESSOR_MAPPING_NAMES  # type: ignore[attr-defined]
    for model_type in model_types(config):
        entry = names.get(model_type)
        candidates = list(entry.values()) if isinstance(entry, dict) else [entry] if isinstance(entry, str) else []
        for class_name in candidates:
            with contextlib.suppress(Exception):
                made = image_processing_auto.get_image_processor_class_from_name(class_name)
                try:
                    return made(**options)
                except TypeError:
                    return made()
    return _qwen_like_processor(config)


def _qwen_like_processor(config: Any) -> Any:
    """Qwen2-VL's image processor at the vision config's patch, temporal patch and merge sizes, for a Qwen-like
    vision tower (one with ``spatial_merge_size``) of a model type that maps no processor of its own."""
    if not isinstance(getattr(vision_config(config), "spatial_merge_size", None), int):
        return None
    from transformers import Qwen2VLImageProcessor

    made: Any = Qwen2VLImageProcessor
    return made(**_patch_sizes(config))


def _patch_sizes(config: Any) -> dict[str, int]:
    """The patch, merge and temporal patch sizes that the vision config sets, for an image processor that cuts
    images into patches and gives their grid: a processor's defaults are those of one checkpoint (Qwen2-VL's
    14-pixel patches where Qwen3-VL's are 16)."""
    vision = vision_config(config)
    options = (("patch_size", "patch_size"), ("merge_size", "spatial_merge_size"), ("temporal_patch_size",) * 2)
    sizes = {option: getattr(vision, name, None) for option, name in options}
    return {option: size for option, size in sizes.items() if isinstance(size, int) and not isinstance(size, bool)}


def _differs(value: Any, wanted: int | None) -> bool:
    """A processor's int size that the config sets otherwise (MiniCPM-o's 14-pixel patches where the config's
    are 16); sizes given as dicts (Pixtral's) are left to the processor."""
    return isinstance(value, int) and wanted is not None and value != wanted
