"""What a transformers config says about a model's inputs, wherever in its sub-configs it says it: a setting's
value, a modality's placeholder token, the vision and text sub-configs, and the model types whose processors
make its inputs.
"""

from __future__ import annotations

from typing import Any

SUFFIXES = ("_vision_model", "_vision_encoder", "_vision", "_text_model", "_text", "_encoder", "_model", "_thinker")


def find_value(config: Any, *names: str) -> Any:
    """The first of ``names`` set on the config or one of its sub-configs (text, vision, audio)."""
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    for key, sub in vars(config).items():
        if key.endswith("_config") and hasattr(sub, "to_dict"):
            value = find_value(sub, *names)
            if value is not None:
                return value
    return None


def placeholder_token(config: Any, kind: str) -> int | None:
    """The placeholder token of a modality (``image``, ``audio``)."""
    token = find_value(config, f"{kind}_token_id", f"{kind}_token_index")
    return int(token) if isinstance(token, int) and not isinstance(token, bool) else None


def vision_config(config: Any) -> Any:
    """The vision sub-config (a video config's own, PE Video's), else the config itself."""
    video = getattr(config, "video_config", None)
    vision = getattr(config, "vision_config", None) or getattr(config, "backbone_config", None)
    return vision or (vision_config(video) if video is not None else config)


def text_config_of(config: Any) -> Any:
    """A composite config's ``text_config``, else the config itself (not ``get_text_config``, which refuses
    configs with two text sub-configs, as MusicGen's)."""
    text = getattr(config, "text_config", None)
    return text if text is not None and hasattr(text, "to_dict") else config


def model_types(config: Any) -> list[str]:
    """The config's model type, then the same without a sub-model suffix (``qwen2_vl_vision`` -> ``qwen2_vl``),
    then its vision sub-config's."""
    found = [config.model_type]
    for suffix in SUFFIXES:
        if config.model_type.endswith(suffix):
            found.append(config.model_type.removesuffix(suffix))
    vision = getattr(config, "vision_config", None)
    if vision is not None and getattr(vision, "model_type", None):
        found.append(vision.model_type)
    return [t for t in dict.fromkeys(found) if t]
