"""``hf:MODEL_TYPE`` or ``hf:path/to/config.json``: a transformers model built from its config (random weights).

Nothing is downloaded: ``hf:gpt2`` is ``AutoConfig.for_model("gpt2")`` (the library's default config for that
architecture), and a config.json is read from disk. The model class is the usual head for the architecture:
the first class a config.json names under ``architectures`` (as the Hub's config files do), else
sequence-to-sequence LM for encoder-decoders, masked LM where the architecture has one (BERT, RoBERTa),
causal LM where it has one (GPT-2, Llama), image-text-to-text for vision-language models, the bare model
otherwise, and for types with no bare model the first task head transformers has for them.
"""

from __future__ import annotations

import inspect
import json
import re
import traceback
from pathlib import Path
from typing import Any

import torch

from torchcost.sources.base import LoadedModel, ModelSourceError, UnknownModelError, build_on, closest, require
from torchcost.sources.hf_inputs import KeywordInputs
from torchcost.sources.hf_series import derive_horizon


def load(spec: str, name: str, device: torch.device) -> LoadedModel:
    """Build the model in the config's dtype (``dtype`` / ``torch_dtype``; float32 when it sets none), as
    transformers' ``from_config`` does."""
    transformers = require("transformers", "transformers")
    config = _config(transformers, name)
    derived = _derive_unset(config)
    named = [getattr(transformers, n, None) for n in getattr(config, "architectures", None) or []]
    model_class = next((c for c in named if c is not None), None) or _model_class(transformers, config)
    build = model_class.from_config if hasattr(model_class, "from_config") else model_class._from_config
    try:
        model = build_on(device, lambda: build(config))
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
        raise ModelSourceError(_config_failure(spec, config, exc)) from exc
    loaded = _with_inputs(spec, model, config)
    loaded.note = (
        f"the config leaves {', '.join(derived)} unset: taken as {'; '.join(derived.values())}" if derived else ""
    )
    return loaded


def _derive_unset(config: Any) -> dict[str, str]:
    """Fields that a config leaves unset and that every architecture derives the same way, set on it (the
    default configs of some types leave them to the checkpoint's config.json): field -> how it was derived."""
    derived = derive_horizon(config)
    for sub in _configs(config):
        heads, width = _field(sub, "num_attention_heads"), _field(sub, "hidden_size")
        if _field(sub, "head_dim", False) is None and heads and width:
            sub.head_dim = width // heads
            derived["head_dim"] = f"hidden_size // num_attention_heads = {sub.head_dim}"
        if _field(sub, "num_key_value_heads", False) is None and heads:
            sub.num_key_value_heads = heads
            derived["num_key_value_heads"] = f"num_attention_heads = {heads} (no grouped-query attention)"
    return derived


def _field(config: Any, name: str, missing: Any = None) -> Any:
    """A config field, ``missing`` where the config has none or holds it per layer (and refuses a global read)."""
    try:
        return getattr(config, name, missing)
    except Exception:  # transformers' AmbiguousGlobalPerLayerAttributeError, and other guarded reads
        return missing


CONFIG_FIELD = re.compile(r"""config\.(\w+)|getattr\(\w*config, ["'](\w+)["']""")


def _config_failure(spec: str, config: Any, exc: Exception) -> str:
    """One line: the config fields that the failing function of the model's code reads and the config leaves
    unset (those on the failing line first)."""
    frames = [(f, n) for f, n in traceback.walk_tb(exc.__traceback__) if "transformers" in f.f_code.co_filename]
    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    if not frames:
        return f"{spec}: building the model from this config failed ({reason})"
    frame, line_number = frames[-1]
    where = f" at {Path(frame.f_code.co_filename).name}:{line_number}"
    try:
        lines, first = inspect.getsourcelines(frame.f_code)
    except OSError:
        lines, first = [], line_number
    failing = lines[line_number - first] if 0 <= line_number - first < len(lines) else ""
    before = "".join(lines[: line_number - first + 1])
    fields = dict.fromkeys(a or b for a, b in CONFIG_FIELD.findall(failing + before))
    unset = [f for f in fields if _unset(config, f)]
    if unset:
        return (
            f"{spec}: the config leaves {', '.join(unset)} unset ({reason}{where}); give a config.json that sets "
            f"{'them' if len(unset) > 1 else 'it'}: torchcost profile hf:path/to/config.json"
        )
    return (
        f"{spec}: building the model from this config failed ({reason}{where}); the default config of a "
        "model type is not always complete: give a config.json of a real checkpoint (hf:path/to/config.json)"
    )


def _unset(config: Any, field: str) -> bool:
    """The field is None on the config and on every sub-config that has it (and at least one has it)."""
    found = [getattr(c, field) for c in _configs(config) if hasattr(c, field)]
    return bool(found) and all(value is None for value in found)


def _configs(config: Any) -> list[Any]:
    subs = [v for k, v in vars(config).items() if k.endswith("_config") and hasattr(v, "to_dict")]
    return [config, *(c for sub in subs for c in _configs(sub))]


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


# The head a model type gets, in this order of preference: the usual LM head of its kind, else the bare model,
# else the first task head that transformers maps the type to (depth estimation, detection, ...).
PREFERRED_AUTO_CLASSES = (
    "AutoModelForSeq2SeqLM",  # encoder-decoders only
    "AutoModelForSpeechSeq2Seq",  # encoder-decoders only
    "AutoModelForMaskedLM",
    "AutoModelForCausalLM",
    "AutoModelForImageTextToText",
    "AutoModel",
)


def _model_class(transformers: Any, config: Any) -> Any:
    encoder_decoder = getattr(config, "is_encoder_decoder", False)
    others = sorted(n for n in dir(transformers) if n.startswith("AutoModelFor") and n not in PREFERRED_AUTO_CLASSES)
    for name in (*PREFERRED_AUTO_CLASSES, *others):
        if name.endswith("Seq2SeqLM") and not encoder_decoder:
            continue
        auto_class = getattr(transformers, name)
        if type(config) in getattr(auto_class, "_model_mapping", {}):
            return auto_class
    raise ModelSourceError(f"transformers maps no model class to {config.model_type!r} configs")


def _with_inputs(spec: str, model: Any, config: Any) -> LoadedModel:
    """The model's keyword inputs, made as its own processors would make them (see hf_inputs)."""
    return LoadedModel(spec, model, None, input_kind="keywords", keyword_inputs=KeywordInputs(model, config))
