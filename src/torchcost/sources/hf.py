"""``hf:MODEL_TYPE`` or ``hf:path/to/config.json``: a transformers model built from its config (random weights).

Nothing is downloaded: ``hf:gpt2`` is ``AutoConfig.for_model("gpt2")`` (the library's default config for that
architecture), and a config.json is read from disk. The model class is the usual head for the architecture:
the first class a config.json names under ``architectures`` (as the Hub's config files do), else
sequence-to-sequence LM for encoder-decoders, masked LM where the architecture has one (BERT, RoBERTa),
causal LM where it has one (GPT-2, Llama), the bare model otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from torchcost.sources.base import LoadedModel, ModelSourceError, UnknownModelError, build_on, closest, require


def load(spec: str, name: str, device: torch.device) -> LoadedModel:
    transformers = require("transformers", "transformers")
    config = _config(transformers, name)
    named = [getattr(transformers, n, None) for n in getattr(config, "architectures", None) or []]
    if any(named):
        model_class = next(c for c in named if c is not None)
        model = build_on(device, lambda: model_class(config))
    else:
        auto_class = _model_class(transformers, config)
        model = build_on(device, lambda: auto_class.from_config(config))
    return _with_inputs(spec, model, config)


def _config(transformers: Any, name: str) -> Any:
    path = Path(name)
    if name.endswith(".json") or path.is_dir():
        return _config_from_file(transformers, path / "config.json" if path.is_dir() else path)
    known = sorted(transformers.CONFIG_MAPPING.keys())
    if name not in known:
        raise UnknownModelError(
            f"unknown transformers model type {name!r}; closest types: {', '.join(closest(name, known))} "
            "(or give a path to a config.json)"
        )
    return transformers.AutoConfig.for_model(name)


def _config_from_file(transformers: Any, path: Path) -> Any:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelSourceError(f"no config file at {path}") from None
    except json.JSONDecodeError as exc:
        raise ModelSourceError(f"{path} is not valid JSON: {exc}") from None
    model_type = values.pop("model_type", None) if isinstance(values, dict) else None
    if model_type is None:
        raise ModelSourceError(f'{path} has no "model_type" key; a transformers config.json names its architecture')
    return transformers.AutoConfig.for_model(model_type, **values)


def _model_class(transformers: Any, config: Any) -> Any:
    from transformers.models.auto import modeling_auto as auto

    model_type = config.model_type
    if getattr(config, "is_encoder_decoder", False) and model_type in auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        return transformers.AutoModelForSeq2SeqLM
    if model_type in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return transformers.AutoModelForMaskedLM
    if model_type in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return transformers.AutoModelForCausalLM
    return transformers.AutoModel


def _with_inputs(spec: str, model: Any, config: Any) -> LoadedModel:
    """Text models take token ids; vision models pixel values of the config's image size."""
    vocab = getattr(config, "vocab_size", None)
    if vocab:
        names: tuple[str, ...] = ("input_ids", "attention_mask")
        if getattr(config, "is_encoder_decoder", False):
            names += ("decoder_input_ids",)
        return LoadedModel(spec, model, None, input_kind="tokens", token_inputs=names, vocab_size=int(vocab))
    side, channels = getattr(config, "image_size", None), getattr(config, "num_channels", None)
    if isinstance(side, int) and isinstance(channels, int):
        return LoadedModel(spec, model, [(1, channels, side, side)])
    return LoadedModel(spec, model, None, input_hint="its config gives no image size or vocabulary")
