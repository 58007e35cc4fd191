"""Audio inputs of a transformers model: the model type's feature extractor (see ``hf_audio``) on
``AUDIO_SECONDS`` of noise at its sampling rate, giving raw ``input_values`` or mel ``input_features`` in the
layout the model takes, with its mask of the real frames for a model that takes one; raw noise where no
extractor can be built.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from torchcost.sources import hf_audio
from torchcost.sources.hf_inputs_config import find_value, model_types
from torchcost.sources.hf_inputs_model import ModelInputs

AUDIO_SECONDS = 1.0


class AudioInputs(ModelInputs):
    """Makes the audio inputs of one transformers model."""

    def _audio(self, name: str, batch: int, generator: torch.Generator, notes: list[str]) -> dict[str, Any]:
        types = hf_audio.audio_types(self.config, model_types(self.config))
        wanted, name = name, "input_features" if name == "audio_mel" else name  # Gemma 3n's encoder: audio_mel
        names = (f"{name}_mask", "feature_attention_mask")
        wants_mask = any(n in self.accepts for n in names) or wanted != name  # the mask of the real frames
        processed, rate = None, 16000
        options = hf_audio.extractor_options(
            find_value(self.config, "num_mel_bins"), find_value(self.config, "enable_fusion")
        )
        for extractor in hf_audio.feature_extractors(types, self.unavailable, **options):
            rate = int(getattr(extractor, "sampling_rate", 16000) or 16000)
            waves = [torch.randn(int(rate * AUDIO_SECONDS), generator=generator).numpy() for _ in range(batch)]
            for masked in ({"return_attention_mask": True} if wants_mask else {}, {}):
                with contextlib.suppress(Exception):
                    processed = dict(extractor(waves, sampling_rate=rate, return_tensors="pt", **masked))
                    break
            if processed is not None and isinstance(processed.get(name), torch.Tensor):
                break
        if processed is not None and isinstance(processed.get(name), torch.Tensor):
            notes.append(f"{AUDIO_SECONDS:g} s of noise at {rate} Hz through the model's feature extractor")
            mask = processed.pop("attention_mask", None)
            if not any(n in processed for n in names) and (mask is not None or wants_mask):
                features = processed[name]  # (batch, samples) or (batch, mel bins, frames): one per frame
                mask = mask if mask is not None else torch.ones(features.shape[0], features.shape[-1], dtype=torch.long)
                processed[next((n for n in names if n in self.accepts), "attention_mask")] = mask
            mask_name = next((n for n in (*names, "attention_mask") if n in processed), None)
            if padding := hf_audio.pad_to_encoder_frames(processed, name, types, mask_name):
                notes.append(f"{padding} frames of padding to whole encoder frames, as the model's processor pads")
            return hf_audio.as_audio_mel(processed) if wanted == "audio_mel" else processed
        if name != "input_values":  # features need their extractor; else hf_documented, or the user, gives them
            return {}
        samples = int(rate * AUDIO_SECONDS)
        notes.append(f"{AUDIO_SECONDS:g} s of noise at {rate} Hz")
        made = {name: torch.randn(batch, samples, generator=generator)}
        return made | (
            {f"{name}_mask": torch.ones(batch, samples, dtype=torch.long)} if f"{name}_mask" in self.accepts else {}
        )
