"""The causal LM an LLM spec names (a checkpoint preset, a Hub id, a config or model file), built on meta, and
the checks it must pass before ``torchcost.llm`` counts it."""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from torchcost.errors import ProfilingError
from torchcost.sources import MODEL_FILE_SUFFIXES, load_model, presets
from torchcost.sources.base import require
from torchcost.sources.hf import config_from_values
from torchcost.sources.hf_cache import cache_keyword

# Where configs keep the longest context the model takes (GPT-2: n_positions, most others: max_position_embeddings)
MAX_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def preset_config(name: str) -> Any:
    """The transformers config of a shipped checkpoint preset (``torchcost list``)."""
    transformers = require("transformers", "transformers")
    shipped = presets.preset(name)
    if shipped is None:
        raise ProfilingError(_unknown_preset(name))
    return config_from_values(transformers, dict(shipped.config), shipped.name)


def build_llm(spec: str) -> nn.Module:
    """A checkpoint preset (``llama-3.1-8b``), a Hub id (``hf:Qwen/Qwen3-8B``) or any model spec
    torchcost.sources knows, built on meta."""
    if ":" not in spec and not spec.endswith(MODEL_FILE_SUFFIXES) and presets.preset(spec) is None:
        raise ProfilingError(_unknown_preset(spec))
    return load_model(spec, "meta").model


def _unknown_preset(name: str) -> str:
    close = difflib.get_close_matches(name, presets.names(), n=3, cutoff=0.4)
    maybe = f"did you mean {', '.join(close)}? " if close else ""
    return (
        f"unknown LLM preset {name!r}; {maybe}torchcost list shows the presets; or give a model spec such as "
        "hf:Qwen/Qwen3-8B, hf:llama or hf:path/to/config.json"
    )


def check_causal_lm(spec: str, model: nn.Module) -> None:
    """Refuse, in one line, a model that is not a decoder taking a KV cache (``cache`` or ``past_key_values``)."""
    if cache_keyword(model) is None or getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        raise ProfilingError(
            f"{spec} is not a causal LM ({type(model).__name__} is not a decoder that takes a KV cache); "
            "give one such as hf:gpt2, hf:llama or a preset"
        )


def max_positions(model: nn.Module) -> int | None:
    """The longest context the model's config allows, when it says."""
    config = getattr(model, "config", None)
    found = (getattr(config, key, None) for key in MAX_POSITION_KEYS)
    return next((value for value in found if isinstance(value, int) and value > 0), None)


def check_context(spec: str, model: nn.Module, prompt_len: int, gen_len: int) -> None:
    """Refuse a context longer than the model takes: past it, a learned position table (GPT-2) has no entry,
    and a rotary model runs outside what it was trained for, so the counts would describe no real run."""
    longest = max_positions(model)
    if longest is None or prompt_len + gen_len <= longest:
        return
    gen = min(gen_len, longest // 2)
    said = f"{{}} + {{}} = {prompt_len + gen_len:,} tokens, but {spec} takes at most {longest:,} positions (its config)"
    fix = f"; e.g. {{}}{longest - gen} {{}}{gen}"
    raise ProfilingError(
        said.format("prompt_len", "gen_len") + fix.format("prompt_len=", "gen_len="),
        cli=said.format("--prompt-len", "--gen-len") + fix.format("--prompt-len ", "--gen-len "),
    )
