"""Audio inputs of a transformers model: which feature extractor makes them, and how many audio tokens stand for
them in the text of an audio-language model.

- The extractor is that of the model type, else of a related type: its audio sub-config's (MusicFlamingo's
  encoder is AudioFlamingo3's), or a type of the same transformers package (the audio tower ``gemma3n_audio``
  is fed by the extractor of ``gemma3n``).
- A processor that takes a ``subsampling_factor`` pads the spectrogram to whole encoder frames (a multiple of it),
  as Nemotron's do; the same padding is made here.
- Audio tokens: the config's fixed count (Gemma 3n pads every audio to ``audio_soft_tokens_per_image``), else
  the rows the model's ``get_audio_features`` returns, else the audio tower's own output lengths
  (``_get_feat_extract_output_lengths`` of the real frames) for a model with no such method (Qwen2-Audio) or
  one that needs the text to run it (MusicFlamingo).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_MASKS = ("input_features_mask", "feature_attention_mask", "attention_mask", "padding_mask")


def audio_types(config: Any, own: list[str]) -> list[str]:
    """``own`` (the config's type and its names without a sub-model suffix), then the type of its audio sub-config
    or encoder (a speech encoder-decoder's) and that type without ``_encoder``, then the other types of the same
    transformers package."""
    from transformers.models.auto import configuration_auto

    names, module_of = configuration_auto.CONFIG_MAPPING_NAMES, configuration_auto.model_type_to_module_name  # type: ignore[attr-defined]

    found = list(own)
    for audio in (getattr(config, "audio_config", None), getattr(config, "encoder", None)):
        audio_type = getattr(audio, "model_type", None)
        if isinstance(audio_type, str):
            found += [audio_type, audio_type.removesuffix("_encoder")]
    packages = {module_of(t) for t in found if t in names}
    found += [t for t in names if module_of(t) in packages]
    return list(dict.fromkeys(found))


def extractor_options(mel_bins: Any, fusion: Any) -> dict[str, Any]:
    """Extractor settings that the model's config fixes where the extractor's defaults may differ: its mel bins,
    and one spectrogram per clip for a CLAP audio encoder without feature fusion (``enable_fusion`` False; the
    extractor's default ``fusion`` truncation stacks four)."""
    return ({"feature_size": mel_bins} if mel_bins else {}) | ({"truncation": "rand_trunc"} if fusion is False else {})


def feature_extractors(types: list[str], unavailable: list[str], **options: Any) -> Iterator[Any]:
    """The feature extractors of ``types`` that can be built here (with ``options`` where they take them); one
    that needs a missing library (torchaudio) is passed over, and said so in ``unavailable``."""
    from transformers.models.auto import feature_extraction_auto

    names = feature_extraction_auto.FEATURE_EXTRACTOR_MAPPING_NAMES  # type: ignore[attr-defined]
    for class_name in dict.fromkeys(names[t] for t in types if isinstance(names.get(t), str)):
        try:
            made = feature_extraction_auto.feature_extractor_class_from_name(class_name)
            try:
                extractor = made(**options)
            except TypeError:
                extractor = made()
        except ImportError as exc:
            library = re.search(r"requires the (\w+) library", str(exc))
            unavailable.append(f"{class_name} needs {library[1] if library else 'a library'}, which is not installed")
            continue
        except Exception:
            continue
        yield extractor


def pad_to_encoder_frames(processed: dict[str, Any], name: str, types: list[str], mask_name: str | None) -> int:
    """Pad the spectrogram ``processed[name]`` (batch, frames, bins) and its mask on the right to a multiple of the
    processor's ``subsampling_factor``, where the model type's processor takes one; returns the frames added."""
    factor = _processor_subsampling(types)
    features, mask = processed.get(name), processed.get(mask_name) if mask_name else None
    if not factor or not isinstance(features, torch.Tensor) or features.dim() != 3:
        return 0
    padding = -features.shape[1] % factor
    if padding:
        processed[name] = F.pad(features, (0, 0, 0, padding))
        if isinstance(mask, torch.Tensor) and mask.shape[-1] == features.shape[1]:
            processed[str(mask_name)] = F.pad(mask, (0, padding))
    return padding


def _processor_subsampling(types: list[str]) -> int | None:
    import transformers
    from transformers.models.auto import processing_auto

    names = processing_auto.PROCESSOR_MAPPING_NAMES  # type: ignore[attr-defined]
    for model_type in types:
        processor = getattr(transformers, str(names.get(model_type)), None)
        if processor is None:
            continue
        parameter = inspect.signature(processor.__init__).parameters.get("subsampling_factor")
        if parameter is not None and isinstance(parameter.default, int):
            return int(parameter.default)
    return None


def as_audio_mel(processed: dict[str, Any]) -> dict[str, Any]:
    """The spectrogram and mask as Gemma 3n's audio encoder takes them: ``audio_mel``, and ``audio_mel_mask``
    True at padding (Gemma3nModel passes it the inverse of the extractor's ``input_features_mask``)."""
    mask = processed.pop("input_features_mask")
    return {"audio_mel": processed.pop("input_features"), "audio_mel_mask": ~mask.bool(), **processed}


def fixed_audio_tokens(config: Any) -> int | None:
    """Audio tokens per audio that the config fixes whatever the audio's length (Gemma 3n)."""
    value = getattr(config, "audio_soft_tokens_per_image", None)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def tower_lengths(model: nn.Module, made: dict[str, Any]) -> torch.Tensor | None:
    """The audio tower's output length of each audio: its ``_get_feat_extract_output_lengths`` of the real frames
    (the sum of the features' mask)."""
    mask = next((made[n] for n in FEATURE_MASKS if isinstance(made.get(n), torch.Tensor)), None)
    towers = [m for m in model.modules() if hasattr(type(m), "_get_feat_extract_output_lengths")]
    if mask is None or not towers:
        return None
    output_lengths: Any = towers[0]._get_feat_extract_output_lengths
    lengths = output_lengths(mask.sum(-1).long())
    found = lengths[-1] if isinstance(lengths, tuple) else lengths
    return found if isinstance(found, torch.Tensor) else None
