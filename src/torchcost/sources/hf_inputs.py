"""Default example inputs of a transformers model, made as its own processors would make them.

The model says what it takes: its ``main_input_name`` and the arguments of its ``forward``. The values come
from the model's own preprocessing where transformers has it, run on synthetic data (nothing is downloaded).
``KeywordInputs`` decides which inputs a model needs and joins what the maker of each modality makes:

- images and video: see ``hf_inputs_vision`` (and ``hf_image_processors`` for the processor that makes them);
- audio: see ``hf_inputs_audio``;
- text: see ``hf_inputs_text``;
- vision- and audio-language models: the image or audio, plus ``input_ids`` holding as many image or audio
  tokens as the model's own ``get_image_features`` / ``get_audio_features`` returns for it, before the text
  (see ``hf_inputs_placeholders``);
- time series (``past_values``): see ``hf_series``; token boxes and detected regions: see ``hf_layout``;
- a required input that only the forward's docstring describes (a codec decoder's ``latents``): see
  ``hf_documented``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn

from torchcost.errors import renamed
from torchcost.sources import hf_inputs_audio, hf_inputs_config, hf_inputs_text, hf_inputs_vision
from torchcost.sources.base import ModelSourceError
from torchcost.sources.hf_documented import documented_inputs
from torchcost.sources.hf_inputs_audio import AudioInputs
from torchcost.sources.hf_inputs_config import find_value, placeholder_token
from torchcost.sources.hf_inputs_config import text_config_of as text_config_of  # hf.py reads it from here
from torchcost.sources.hf_inputs_placeholders import PlaceholderTokens
from torchcost.sources.hf_inputs_text import DEFAULT_SEQ_LEN, TEXT_IDS
from torchcost.sources.hf_inputs_vision import VisionInputs
from torchcost.sources.hf_layout import region_features, token_boxes
from torchcost.sources.hf_series import series_inputs

AUDIO_INPUTS = ("input_values", "input_features")
RECURRENT_LAYERS = {"linear_attention", "mamba", "conv"}  # layer types that keep states, not keys and values


class KeywordInputs(VisionInputs, AudioInputs, PlaceholderTokens):
    """Makes the keyword inputs of one transformers model; ``note`` says what the last call made."""

    def __call__(self, batch: int, seq_len: int | None, generator: torch.Generator) -> dict[str, Any]:
        made: dict[str, Any] = {}
        notes: list[str] = []
        image_token = placeholder_token(self.config, "image")
        vision_language = image_token is not None and "pixel_values" in self.accepts and self._has_vision_tower()
        patches = "grid_thw" in self.required or "image_grid_thw" in self.required  # a Qwen-like vision tower
        # an image size or a vision tower, and no image token (ViLT, TVP): the image goes with the text; a
        # document model (UDOP, LayoutLMv3) runs on its text and boxes alone
        sized = getattr(self.config, "image_size", None) is not None or self._has_vision_tower()
        one_config = sized and "bbox" not in self.accepts
        one_config = one_config and image_token is None
        one_config = one_config and "input_ids" in self.accepts and "pixel_values" in self.accepts
        if self.wants("pixel_values", "vision") or vision_language or patches or one_config:
            made.update(self._images(batch, generator, notes))
        if self.wants("flattened_patches"):
            made.update(self._flattened_patches(batch, generator, notes))
        if isinstance(made.get("pixel_values"), torch.Tensor) and made["pixel_values"].dim() == 4:
            made["pixel_values"] = self._as_stacks(made["pixel_values"], notes)
        if self.wants("pixel_values_videos", "video"):
            made.update(self._videos(batch, generator, notes))
        audio = [n for n in ("input_values", "input_features", "audio_mel") if self.wants(n, "audio")]
        for name in audio:
            if not any(n in made for n in AUDIO_INPUTS):
                made.update(self._audio(name, batch, generator, notes))
        # audio that could not be made is asked for, not left out: the audio tower would go uncounted
        needed = self.required | ({audio[0]} if audio and not any(n in made for n in AUDIO_INPUTS) else set())
        if self.wants("past_values"):  # a time series
            series, note = series_inputs(self.config, self.accepts, batch, generator)
            made.update(series)
            notes.append(note)
        decoder = getattr(self.config, "is_encoder_decoder", False) and "decoder_input_ids" in self.accepts
        if any(n in self.accepts for n in TEXT_IDS) or decoder:
            placeholders = {"image": self._image_tokens(made, batch, notes) if vision_language else 0}
            if placeholder_token(self.config, "audio") is not None and any(n in made for n in AUDIO_INPUTS):
                placeholders["audio"] = self._feature_rows("audio", made, batch, notes)
            made.update(self._text(batch, seq_len, placeholders, generator))
        made = self._renamed(self._with_extras(made, batch, generator, notes))
        unmade, length = sorted(needed - set(made)), seq_len or DEFAULT_SEQ_LEN
        find = partial(find_value, self.config)
        documented, said = documented_inputs(self.model, unmade, batch, length, find, generator)
        made, notes = made | documented, notes + said
        missing = sorted(needed - set(made))
        if missing:
            why = f" ({'; '.join(dict.fromkeys(self.unavailable))})" if self.unavailable else ""
            raise ModelSourceError(
                f"{type(self.model).__name__} needs inputs torchcost cannot make: {', '.join(missing)}{why}; "
                "give them with --kwargs-json (profile_spec: InputOptions(kwargs=...))"
            )
        notes += self._unfed_towers(made)
        self.note = "; ".join(notes)
        return {name: value for name, value in made.items() if name in self.accepts}

    def _with_extras(
        self, made: dict[str, Any], batch: int, generator: torch.Generator, notes: list[str]
    ) -> dict[str, Any]:
        """The inputs that go with the text and images of some models: token boxes, detected regions, Kosmos-2's
        image positions, IDEFICS's images per token, and no cache for a stack without attention layers."""
        if "bbox" in self.accepts and "input_ids" in made:  # a document model: each token's box on the page
            made["bbox"] = token_boxes(self.model, self.config, made["input_ids"], generator)
        if "visual_feats" in self.accepts:  # detected objects (LXMERT)
            regions, note = region_features(self.config, batch, generator)
            made.update(regions)
            notes.append(note)
        queries = find_value(
            self.config, "latent_query_num"
        )  # Kosmos-2: image features in place of the tokens after <s>
        if "image_embeds_position_mask" in self.accepts and "pixel_values" in made and isinstance(queries, int):
            made["image_embeds_position_mask"] = torch.zeros_like(made["input_ids"])
            made["image_embeds_position_mask"][:, 1 : 1 + queries] = 1
            notes.append(f"{queries} image positions marked in image_embeds_position_mask")
        pixels, ids = made.get("pixel_values"), made.get("input_ids")
        wanted = "image_attention_mask" in self.accepts  # IDEFICS: which images each token sees (all of them)
        if wanted and isinstance(pixels, torch.Tensor) and isinstance(ids, torch.Tensor) and pixels.dim() == 5:
            made["image_attention_mask"] = torch.ones(*ids.shape, pixels.shape[1], dtype=torch.long)
        layers = find_value(self.config, "layer_types")
        if "use_cache" in self.accepts and isinstance(layers, list) and layers and set(layers) <= RECURRENT_LAYERS:
            made["use_cache"] = False  # transformers' masks ask a cache without attention layers for its length
            notes.append("use_cache=False (no attention layer; the recurrent states are not kept)")
        return made

    def _unfed_towers(self, made: dict[str, Any]) -> list[str]:
        """Warnings for the vision and audio towers (see ``hf_inputs_model._towers``) that no made input feeds
        (Phi-4-multimodal's audio tower takes ``audio_input_features``): their work is left out of the counts."""
        words = {"vision": ("pixel", "image", "patches"), "audio": (*AUDIO_INPUTS, "audio")}
        return [
            f"no {modality} input was made: the {modality} tower is not counted (give its inputs with --kwargs-json)"
            for modality, names in words.items()
            if modality in self.towers and not any(word in name for name in made for word in names)
        ]

    def _has_vision_tower(self) -> bool:
        """A config may name an image token and leave the vision tower out (a text-only variant)."""
        has_config = any(getattr(self.config, n, None) is not None for n in ("vision_config", "visual"))
        towers = [getattr(self.model, n, None) for n in ("vision_tower", "visual", "vision_model")]
        towers += [getattr(self.owners[-1], n, None) for n in ("vision_tower", "visual")]
        return has_config or any(isinstance(t, nn.Module) for t in towers)

    def _renamed(self, made: dict[str, Any]) -> dict[str, Any]:
        """Vision towers name the processor's outputs without ``image_`` (Qwen-like towers' ``hidden_states`` and
        ``grid_thw``, VideoLLaMA3's ``merge_sizes``) or with ``pixel_`` (Gemma 4's ``pixel_position_ids``)."""
        if "hidden_states" in self.required and "pixel_values" in made:
            made["hidden_states"] = made.pop("pixel_values")
        for name in [n for n in made if n.startswith("image_") and n not in self.accepts]:
            bare = name.removeprefix("image_")
            renamed = next((n for n in (bare, f"pixel_{bare}") if n in self.accepts and n not in made), None)
            if renamed is not None:
                made[renamed] = made.pop(name)
        return made


# moved to the modules of each modality: the old names answer with a DeprecationWarning for one release
_MOVED = {
    **dict.fromkeys(("IMAGE_SIDE", "FRAMES", "IMAGE_EXTRAS", "STACK_UNPACK", "_image_hw"), hf_inputs_vision),
    "AUDIO_SECONDS": hf_inputs_audio,
    "MASKS": hf_inputs_text,
    "SUFFIXES": hf_inputs_config,
}
__getattr__ = renamed(
    __name__, {name: (getattr(home, name), f"{home.__name__}.{name}") for name, home in _MOVED.items()}
)
