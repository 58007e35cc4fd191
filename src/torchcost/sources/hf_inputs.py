"""Default example inputs of a transformers model, made as its own processors would make them.

The model says what it takes: its ``main_input_name`` and the arguments of its ``forward``. The values come
from the model's own preprocessing where transformers has it, run on synthetic data (nothing is downloaded):

- images: the model type's image processor (its default size, patching and extra outputs such as Qwen2-VL's
  ``image_grid_thw`` or DETR's ``pixel_mask``) on random ``IMAGE_SIDE`` x ``IMAGE_SIDE`` images, else the
  config's ``image_size`` and ``num_channels``;
- audio: the model type's feature extractor on ``AUDIO_SECONDS`` of noise at its sampling rate (raw
  ``input_values`` or mel ``input_features``, in the layout the model takes, with its mask of the real frames
  for a model that takes one);
- text: token ids below the vocabulary size, avoiding the config's special token ids, and an all-ones mask;
- vision- and audio-language models: the image or audio, plus ``input_ids`` holding as many image or audio
  tokens as the model's own ``get_image_features`` / ``get_audio_features`` returns for it, before the text;
- video models: clips of the config's ``num_frames`` random frames; keypoint matchers: pairs of images (both
  through the processor, which takes a clip or a pair as a list of images);
- time series (``past_values``): see ``hf_series``; token boxes and detected regions: see ``hf_layout``;
- a required input that only the forward's docstring describes (a codec decoder's ``latents``): see
  ``hf_documented``.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Iterator
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from torchcost.sources import hf_audio
from torchcost.sources.base import ModelSourceError
from torchcost.sources.hf_documented import documented_inputs
from torchcost.sources.hf_layout import region_features, token_boxes
from torchcost.sources.hf_series import series_inputs

IMAGE_SIDE = 448  # synthetic images for processors that keep the resolution they are given (Qwen2-VL, Pixtral)
AUDIO_SECONDS = 1.0
DEFAULT_SEQ_LEN = 128
FRAMES = 8  # video clips, when the config does not say
TEXT_IDS = ("input_ids", "decoder_input_ids", "qformer_input_ids")
MASKS = ("attention_mask", "qformer_attention_mask")  # all ones, for the ids of the same name
AUDIO_INPUTS = ("input_values", "input_features")
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
RECURRENT_LAYERS = {"linear_attention", "mamba", "conv"}  # layer types that keep states, not keys and values
SUFFIXES = ("_vision_model", "_vision_encoder", "_vision", "_text_model", "_text", "_encoder", "_model", "_thinker")


class KeywordInputs:
    """Makes the keyword inputs of one transformers model; ``note`` says what the last call made."""

    def __init__(self, model: nn.Module, config: Any, checkpoint: Path | None = None) -> None:
        self.model, self.config = model, config
        self.checkpoint = checkpoint  # a folder with the checkpoint's processor configs, when it has them
        inner = getattr(model, "model", None)  # a head's base model (DeepSeek-VL's head has no get_image_features)
        self.owners = (model, inner) if isinstance(inner, nn.Module) else (model,)
        forward = inspect.signature(type(model).forward).parameters
        self.accepts = {n for n, p in forward.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"}
        self.required = {n for n in self.accepts if forward[n].default is inspect.Parameter.empty}
        if any(p.kind is p.VAR_KEYWORD for p in forward.values()):
            self.accepts.add("use_cache")  # passed on to the model, as the LM heads of transformers do
        main = getattr(model, "main_input_name", None)
        self.main = main if isinstance(main, str) else (main[0] if main else None)
        encoder_main = getattr(getattr(model, "encoder", None), "main_input_name", None)
        if self.main == "inputs" and isinstance(encoder_main, str):
            self.main = encoder_main  # SpeechEncoderDecoderModel: its encoder's input_values
        self.note = ""
        self.unavailable: list[str] = []  # processors that could not be built here, and why
        self.towers = _towers(config)

    def wants(self, name: str, modality: str = "") -> bool:
        """The model needs ``name``: its main or a required input, or an input of a modality it has a tower for
        (see ``_towers``)."""
        return name in self.required or name == self.main or (modality in self.towers and name in self.accepts)

    def __call__(self, batch: int, seq_len: int | None, generator: torch.Generator) -> dict[str, Any]:
        made: dict[str, Any] = {}
        notes: list[str] = []
        vision_language = (
            _token(self.config, "image") is not None and "pixel_values" in self.accepts and self._has_vision_tower()
        )
        patches = "grid_thw" in self.required or "image_grid_thw" in self.required  # a Qwen-like vision tower
        # an image size or a vision tower, and no image token (ViLT, TVP): the image goes with the text; a
        # document model (UDOP, LayoutLMv3) runs on its text and boxes alone
        sized = getattr(self.config, "image_size", None) is not None or self._has_vision_tower()
        one_config = sized and "bbox" not in self.accepts
        one_config = one_config and _token(self.config, "image") is None
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
            if _token(self.config, "audio") is not None and any(n in made for n in AUDIO_INPUTS):
                placeholders["audio"] = self._feature_rows("audio", made, batch, notes)
            made.update(self._text(batch, seq_len, placeholders, generator))
        made = self._renamed(self._with_extras(made, batch, generator, notes))
        unmade, length = sorted(needed - set(made)), seq_len or DEFAULT_SEQ_LEN
        documented, said = documented_inputs(self.model, unmade, batch, length, partial(_find, self.config), generator)
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
        queries = _find(self.config, "latent_query_num")  # Kosmos-2: image features in place of the tokens after <s>
        if "image_embeds_position_mask" in self.accepts and "pixel_values" in made and isinstance(queries, int):
            made["image_embeds_position_mask"] = torch.zeros_like(made["input_ids"])
            made["image_embeds_position_mask"][:, 1 : 1 + queries] = 1
            notes.append(f"{queries} image positions marked in image_embeds_position_mask")
        pixels, ids = made.get("pixel_values"), made.get("input_ids")
        wanted = "image_attention_mask" in self.accepts  # IDEFICS: which images each token sees (all of them)
        if wanted and isinstance(pixels, torch.Tensor) and isinstance(ids, torch.Tensor) and pixels.dim() == 5:
            made["image_attention_mask"] = torch.ones(*ids.shape, pixels.shape[1], dtype=torch.long)
        layers = _find(self.config, "layer_types")
        if "use_cache" in self.accepts and isinstance(layers, list) and layers and set(layers) <= RECURRENT_LAYERS:
            made["use_cache"] = False  # transformers' masks ask a cache without attention layers for its length
            notes.append("use_cache=False (no attention layer; the recurrent states are not kept)")
        return made

    def _unfed_towers(self, made: dict[str, Any]) -> list[str]:
        """Warnings for the vision and audio towers (see ``_towers``) that no made input feeds (Phi-4-multimodal's
        audio tower takes ``audio_input_features``): their work is left out of the counts."""
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

    # images and video

    @cached_property
    def image_processor(self) -> Any:
        """The model type's image processor, at the config's patch sizes where it cuts images into patches (see
        ``_image_processor``), or the checkpoint's own where its folder has a ``preprocessor_config.json``; built
        once for all the images one call makes."""
        return _checkpoint_image_processor(self.checkpoint) or _image_processor(self.config)

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
        frames = _find(self.config, "num_frames")
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
        frames = _find(self.config, "num_frames") if "frame" in (unpacked[1] or unpacked[2] or "") else None
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
        frames = int(_find(self.config, "num_frames") or FRAMES)
        channels, (height, width) = _channels(self.config), _image_hw(self.config)
        notes.append(f"{batch} random clip(s) of {frames} frames, {height}x{width}")
        return {"pixel_values_videos": torch.randn(batch, frames, channels, height, width, generator=generator)}

    def _image_tokens(self, made: dict[str, Any], batch: int, notes: list[str]) -> int:
        if not any(hasattr(o, "get_image_features") for o in self.owners) or "pixel_values" not in made:
            return int(_find(self.config, "image_seq_length", "mm_tokens_per_image") or 0)
        return self._feature_rows("image", made, batch, notes)

    def _feature_rows(self, kind: str, made: dict[str, Any], batch: int, notes: list[str]) -> int:
        """Placeholder tokens per sequence: the rows of features the model's ``get_{kind}_features`` returns (for
        audio, as hf_audio says where that method is missing or the config fixes the count)."""
        fixed = hf_audio.fixed_audio_tokens(self.config) if kind == "audio" else None
        if "qformer_input_ids" in self.accepts:  # InstructBLIP's Q-Former reads the text
            made = made | {k: v for k, v in self._text(batch, None, {}, torch.Generator()).items() if "qformer" in k}
        features = _features_function(self.owners, kind, made) if fixed is None else None
        lengths = hf_audio.tower_lengths(self.model, made) if kind == "audio" and features is None else None
        if fixed is not None or lengths is not None:
            rows = fixed if fixed is not None else int(lengths.max()) if lengths is not None else 0
            notes.append(f"{rows} {kind} tokens per sequence ({'the config' if fixed else 'the audio tower'}'s count)")
            return rows
        if features is None:
            return 0
        accepted = inspect.signature(features).parameters
        out = _call_with_values(features, self.model, {k: v for k, v in made.items() if k in accepted})
        rows = sum(t.numel() // t.shape[-1] for t in _tensors(getattr(out, "pooler_output", out)) if t.dim())
        notes.append(f"{rows // batch} {kind} tokens per sequence (the rows of the model's {kind} features)")
        return rows // batch

    # audio

    def _audio(self, name: str, batch: int, generator: torch.Generator, notes: list[str]) -> dict[str, Any]:
        types = hf_audio.audio_types(self.config, _model_types(self.config))
        wanted, name = name, "input_features" if name == "audio_mel" else name  # Gemma 3n's encoder: audio_mel
        names = (f"{name}_mask", "feature_attention_mask")
        wants_mask = any(n in self.accepts for n in names) or wanted != name  # the mask of the real frames
        processed, rate = None, 16000
        options = hf_audio.extractor_options(_find(self.config, "num_mel_bins"), _find(self.config, "enable_fusion"))
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

    # text

    def _text(
        self, batch: int, seq_len: int | None, placeholders: dict[str, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Random text ids, after the placeholder tokens of each modality (``{"image": 576}``)."""
        text = text_config_of(self.config)
        length = seq_len or min(DEFAULT_SEQ_LEN, _max_positions(text) or DEFAULT_SEQ_LEN)
        vocab = int(getattr(text, "vocab_size", None) or getattr(self.config, "vocab_size", None) or 2)
        ids = _token_ids(self.config, vocab, (batch, length), generator)
        for kind, count in reversed(placeholders.items()):
            token = torch.full((batch, count), _token(self.config, kind) or 0, dtype=torch.long)
            ids = torch.cat([token, ids], dim=1)
        made: dict[str, Any] = {"input_ids": ids}
        if "qformer_input_ids" in self.accepts:
            made["qformer_input_ids"] = ids[:, -length:]
        if getattr(self.config, "is_encoder_decoder", False) and "decoder_input_ids" in self.accepts:
            made["decoder_input_ids"] = self._per_codebook(ids[:, -min(length, _decoder_positions(self.config)) :])
        for name in MASKS:
            ids_name = name.replace("attention_mask", "input_ids")
            if name in self.accepts and ids_name in made and ids_name in self.accepts:
                made[name] = torch.ones_like(made[ids_name])
        if "lang_ids" in self.accepts and getattr(self.config, "languages", None):  # X-MOD: the first language
            made["lang_ids"] = torch.zeros_like(ids)
        if "mm_token_type_ids" in self.accepts:  # text 0, image 1 (multimodal rotary positions)
            made["mm_token_type_ids"] = (ids == (_token(self.config, "image") or -1)).int()
        return made

    def _per_codebook(self, ids: torch.Tensor) -> torch.Tensor:
        """Audio decoders take one id per codebook: MusicGen as rows (batch x codebooks, length), Dia as a last
        dimension (batch, length, codebooks)."""
        decoder = getattr(self.config, "decoder", None)
        rows = _find(decoder, "num_codebooks") if hasattr(decoder, "to_dict") else None
        channels = getattr(getattr(self.config, "decoder_config", None), "num_channels", None)
        if isinstance(rows, int) and rows > 1:
            return ids.repeat_interleave(rows, dim=0)
        if isinstance(channels, int) and channels > 1:
            return ids[..., None].repeat(1, 1, channels)
        return ids


def _towers(config: Any) -> set[str]:
    """The modalities a config has a tower for: a ``{modality}_config`` (CLIP's vision tower, CLAP's audio
    encoder), CLVP's ``speech_config``, or an audio token beside the config of an encoder (Granite Speech's
    ``encoder_config``)."""
    towers = {m for m in ("vision", "video", "audio") if getattr(config, f"{m}_config", None) is not None}
    subs = [k for k, v in vars(config).items() if k.endswith("_config") and hasattr(v, "to_dict")]
    speech = getattr(config, "speech_config", None) is not None
    if speech or (_token(config, "audio") is not None and any("encoder" in k for k in subs)):
        towers.add("audio")
    return towers


def _features_function(owners: tuple[nn.Module, ...], kind: str, made: dict[str, Any]) -> Any:
    """The model's ``get_{kind}_features`` or its inner model's, whichever can run on ``made`` and names more of
    its arguments (an outer one may pass them on as ``**kwargs``); None where neither can run."""
    functions = [getattr(o, f"get_{kind}_features", None) for o in owners]
    runnable: list[tuple[int, Any]] = []
    for function in (f for f in functions if f is not None):
        parameters = inspect.signature(function).parameters.values()
        named = [p for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        passes_on = not named and len(functions) > 1  # (*args, **kwargs) to the inner one: runs where it runs
        if not passes_on and {p.name for p in named if p.default is p.empty} <= set(made):
            runnable.append((len(named), function))
    return max(runnable, key=lambda r: r[0])[1] if runnable else None


def _source(function: Any) -> str:
    try:
        return inspect.getsource(function)
    except (TypeError, OSError):  # built in, or no source file
        return ""


def _tensors(tree: Any) -> list[torch.Tensor]:
    from torchcost.tensors import tensors_in

    return tensors_in(tree)


def _call_with_values(function: Any, model: nn.Module, kwargs: dict[str, Any]) -> Any:
    """``function(**kwargs)`` with the tensors on the model's device; on meta, with their values known (the model's
    code may look at them, as profiling allows)."""
    from torchcost.counting.mode import CountingMode, ModuleStack
    from torchcost.emulate.meta_values import BUILT, MetaFunctions, MetaValues

    device = next(model.parameters(), torch.empty(0)).device
    moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    if device.type != "meta":
        with torch.no_grad():
            return function(**moved)
    values = MetaValues(fallback=BUILT)
    for name, tensor in moved.items():
        if isinstance(tensor, torch.Tensor):
            values.seed(tensor, kwargs[name])
    mode = CountingMode(ModuleStack({}), values)
    mode.recording = False
    with MetaFunctions(values), mode, torch.no_grad():
        return function(**moved)


def _token_ids(config: Any, vocab: int, shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Random ids below ``vocab`` that are none of the config's special tokens (image, audio, pad, ...)."""
    special = {int(v) for v in _all_values(config, "token") if isinstance(v, int) and not isinstance(v, bool)}
    ids = torch.randint(0, vocab, shape, generator=generator)
    ordinary = next((i for i in range(vocab) if i not in special), 0)
    for token in special:
        ids[ids == token] = ordinary
    return ids


def _all_values(config: Any, word: str) -> Iterator[Any]:
    """Values of every attribute whose name has ``word``, in the config and its sub-configs."""
    for key, value in vars(config).items():
        if (word in key and "_id" in key) or key.endswith("_index"):
            yield value
        if hasattr(value, "to_dict") and key.endswith("config"):
            yield from _all_values(value, word)


def _token(config: Any, kind: str) -> int | None:
    """The placeholder token of a modality (``image``, ``audio``)."""
    token = _find(config, f"{kind}_token_id", f"{kind}_token_index")
    return int(token) if isinstance(token, int) and not isinstance(token, bool) else None


def _find(config: Any, *names: str) -> Any:
    """The first of ``names`` set on the config or one of its sub-configs (text, vision, audio)."""
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    for key, sub in vars(config).items():
        if key.endswith("_config") and hasattr(sub, "to_dict"):
            value = _find(sub, *names)
            if value is not None:
                return value
    return None


def _vision_config(config: Any) -> Any:
    """The vision sub-config (a video config's own, PE Video's), else the config itself."""
    video = getattr(config, "video_config", None)
    vision = getattr(config, "vision_config", None) or getattr(config, "backbone_config", None)
    return vision or (_vision_config(video) if video is not None else config)


def text_config_of(config: Any) -> Any:
    """A composite config's ``text_config``, else the config itself (not ``get_text_config``, which refuses
    configs with two text sub-configs, as MusicGen's)."""
    text = getattr(config, "text_config", None)
    return text if text is not None and hasattr(text, "to_dict") else config


def _image_size(config: Any, any_sub_config: bool = True) -> Any:
    """The vision config's ``image_size``, else the config's (or, with ``any_sub_config``, any sub-config's); for a
    timm backbone (``TimmWrapperConfig``), its architecture's input size."""
    vision = _vision_config(config)
    size = getattr(vision, "image_size", None) or getattr(config, "image_size", None)
    size = size or (_find(config, "image_size") if any_sub_config else None)
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
    vision = _vision_config(config)
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
    return int(getattr(_vision_config(config), "num_channels", None) or _find(config, "num_channels") or 3)


def _max_positions(config: Any) -> int | None:
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def _decoder_positions(config: Any) -> int:
    value = getattr(config, "max_target_positions", None) or _max_positions(config)
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_SEQ_LEN


def _random_images(count: int, side: int, generator: torch.Generator) -> list[torch.Tensor]:
    return [torch.randint(0, 256, (3, side, side), dtype=torch.uint8, generator=generator) for _ in range(count)]


def _checkpoint_image_processor(folder: Path | None) -> Any:
    """The image processor a checkpoint's ``preprocessor_config.json`` describes (its image size, crop and
    patching), read from its folder alone; None where it has none or transformers cannot build it."""
    if folder is None or not (folder / "preprocessor_config.json").is_file():
        return None
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)  # type: ignore[no-untyped-call]
    except Exception:
        return None


def _image_processor(config: Any) -> Any:
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
    for model_type in _model_types(config):
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
    if not isinstance(getattr(_vision_config(config), "spatial_merge_size", None), int):
        return None
    from transformers import Qwen2VLImageProcessor

    made: Any = Qwen2VLImageProcessor
    return made(**_patch_sizes(config))


def _patch_sizes(config: Any) -> dict[str, int]:
    """The patch, merge and temporal patch sizes that the vision config sets, for an image processor that cuts
    images into patches and gives their grid: a processor's defaults are those of one checkpoint (Qwen2-VL's
    14-pixel patches where Qwen3-VL's are 16)."""
    vision = _vision_config(config)
    options = (("patch_size", "patch_size"), ("merge_size", "spatial_merge_size"), ("temporal_patch_size",) * 2)
    sizes = {option: getattr(vision, name, None) for option, name in options}
    return {option: size for option, size in sizes.items() if isinstance(size, int) and not isinstance(size, bool)}


def _differs(value: Any, wanted: int | None) -> bool:
    """A processor's int size that the config sets otherwise (MiniCPM-o's 14-pixel patches where the config's
    are 16); sizes given as dicts (Pixtral's) are left to the processor."""
    return isinstance(value, int) and wanted is not None and value != wanted


def _model_types(config: Any) -> list[str]:
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
