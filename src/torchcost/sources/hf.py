"""``hf:MODEL_TYPE``, ``hf:ORG/NAME[@REVISION]``, ``hf:PRESET`` or ``hf:path/to/config.json``: a transformers model
built from its config (random weights, never downloaded).

``hf:gpt2`` is ``AutoConfig.for_model("gpt2")`` (the library's default config for that architecture); a Hub id
reads the checkpoint's config.json from huggingface_hub's cache or the Hub (see ``hub``); a preset is a shipped
checkpoint config (see ``presets``); a config.json or a checkpoint folder is read from disk. The model class is
the usual head for the architecture: the first class a config.json names under ``architectures`` (as the Hub's
config files do), else
sequence-to-sequence LM for encoder-decoders, masked LM where the architecture has one (BERT, RoBERTa),
causal LM where it has one (GPT-2, Llama), image-text-to-text for vision-language models, the bare model
otherwise, and for types with no bare model the first task head (or backbone) transformers has for them; when a
class cannot be built from the config, the next. Fields a default config leaves unset, or that its class lacks,
are derived where the derivation is the same for every architecture, and the profile's notes say so.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from torchcost.sources import hub, presets
from torchcost.sources.base import LoadedModel, ModelSourceError, UnknownModelError, build_on, closest, require
from torchcost.sources.hf_inputs import KeywordInputs, text_config_of
from torchcost.sources.hf_series import derive_horizon


@dataclass
class FoundConfig:
    """A transformers config, with where it came from."""

    config: Any
    note: str = ""  # where it came from, when that is not the spec itself (a shipped preset, a Hub commit)
    folder: Path | None = None  # the checkpoint's folder, with its processor configs where it has them
    default: bool = False  # the library's default config of a model type


def load(spec: str, name: str, device: torch.device) -> LoadedModel:
    """Build the model in the config's dtype (``dtype`` / ``torch_dtype``; float32 when it sets none), as
    transformers' ``from_config`` does."""
    transformers = require("transformers", "transformers")
    found = _config(transformers, name)
    config = found.config
    derived, matched = _derive_unset(config), _match_widths(config)
    named = [getattr(transformers, n, None) for n in getattr(config, "architectures", None) or []]
    model_classes = [c for c in named if c is not None][:1] or _model_classes(transformers, config)
    shipped = presets.of_model_type(config.model_type) if found.default else []
    if_it_fails = f"the default config of a model type may not run: try a real checkpoint, {', '.join(shipped)}"
    try:
        model = _build(spec, model_classes, config, device, derived)
    except ModelSourceError as exc:
        if not shipped:
            raise
        raise ModelSourceError(f"{exc}; or {if_it_fails}") from exc
    sections = _fit_mrope_sections(model)
    inputs = KeywordInputs(model, config, found.folder)
    loaded = LoadedModel(spec, model, None, input_kind="keywords", keyword_inputs=inputs)
    if found.default:
        loaded.if_it_fails = if_it_fails if shipped else DEFAULT_CONFIG_HINT
    notes = [found.note] if found.note else []
    notes += (
        [f"the config leaves {', '.join(derived)} unset: taken as {'; '.join(derived.values())}"] if derived else []
    )
    notes += [
        f"the config's {field} differs from its text model's width: taken as {how}" for field, how in matched.items()
    ]
    notes += [
        f"the rotary sections {was} (the model's default) add up to {sum(was)} where its head dim gives "
        f"{sum(now)} rotary frequencies: taken as {now}, in the same ratio"
        for was, now in sections
    ]
    loaded.note = "; ".join(notes)
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
    vocab = _field(text_config_of(config), "vocab_size")
    for kind in ("image", "audio"):  # processors add the placeholder token at the end of the vocabulary
        name = next((n for n in (f"{kind}_token_id", f"{kind}_token_index") if n in vars(config)), None)
        if name is not None and getattr(config, name) is None and isinstance(vocab, int):
            setattr(config, name, vocab - 1)
            derived[name] = f"vocab_size - 1 = {vocab - 1} (the processor's added placeholder token)"
    return derived


DEFAULT_CONFIG_HINT = "give a real checkpoint's config (hf:ORG/NAME, or hf:path/to/config.json)"
BUILD_ERRORS = (TypeError, AttributeError, KeyError, ValueError, IndexError)
MISSING_ATTRIBUTE = re.compile(r"'(\w+)' object has no attribute '(\w+)'")


def _build(spec: str, model_classes: list[Any], config: Any, device: torch.device, derived: dict[str, str]) -> Any:
    """The first of ``model_classes`` that builds from ``config``. A field the model reads and the config class
    does not define at all is derived where every architecture derives it the same way (``_derive_missing``)."""
    failure: Exception | None = None
    for model_class in model_classes:
        build = model_class.from_config if hasattr(model_class, "from_config") else model_class._from_config
        while True:
            try:
                return build_on(device, functools.partial(build, config))
            except BUILD_ERRORS as exc:
                if not (isinstance(exc, AttributeError) and _derive_missing(config, str(exc), derived)):
                    failure = failure or exc
                    break
    assert failure is not None
    raise ModelSourceError(_config_failure(spec, config, failure)) from failure


def _derive_missing(config: Any, message: str, derived: dict[str, str]) -> bool:
    """Set a field that a (sub-)config of the class named in ``message`` lacks, if it is one that can be derived:
    dropout rates (no effect on counts), ``num_key_value_heads``, ``rope_theta`` (from ``rope_parameters``)."""
    match = MISSING_ATTRIBUTE.search(message)
    if match is None or match[2] in derived:
        return False
    class_name, field = match[1], match[2]
    subs = [c for c in _configs(config) if type(c).__name__ == class_name and field not in vars(c)]
    for sub in subs:
        rope = _field(sub, "rope_parameters") or _field(config, "rope_parameters")
        if "dropout" in field:
            value, how = 0.0, "0.0 (dropout does not change the counts)"
        elif field == "num_key_value_heads" and isinstance(_field(sub, "num_attention_heads"), int):
            value = sub.num_attention_heads
            how = f"num_attention_heads = {value} (no grouped-query attention)"
        elif field == "rope_theta" and isinstance(rope, dict):
            value = rope.get("rope_theta", 10_000.0)
            how = f"rope_parameters['rope_theta'] = {value:g}"
        else:
            return False
        setattr(sub, field, value)
        derived[field] = how
    return bool(subs)


def _match_widths(config: Any) -> dict[str, str]:
    """The widths of a vision- or audio-language config that must equal its text model's ``hidden_size``, set to it
    where the default config disagrees (its text and vision defaults come from different checkpoints): the vision
    tower's output width (``out_hidden_size``; Qwen2-VL's ``hidden_size`` beside the tower's ``embed_dim``) and the
    audio encoder's ``output_dim`` (Qwen3-ASR's), whose features replace token embeddings, and the config's own
    ``hidden_size`` (Ovis2's embedding table and head). Field -> how it was set."""
    text, vision = getattr(config, "text_config", None), getattr(config, "vision_config", None)
    width = _field(text, "hidden_size") if hasattr(text, "to_dict") else None
    if not isinstance(width, int):
        return {}
    fields = [(config, "config.hidden_size", "hidden_size")]
    audio = getattr(config, "audio_config", None)
    if hasattr(audio, "to_dict") and isinstance(_field(audio, "output_dim"), int):
        fields.append((audio, "audio_config.output_dim", "output_dim"))  # Qwen3-ASR's audio features
    if hasattr(vision, "to_dict"):
        output = "out_hidden_size" if _field(vision, "out_hidden_size") is not None else "hidden_size"
        if output == "out_hidden_size" or isinstance(_field(vision, "embed_dim"), int):
            fields.append((vision, f"vision_config.{output}", output))
    matched: dict[str, str] = {}
    for owner, label, name in fields:
        value = _field(owner, name)
        if isinstance(value, int) and value != width:
            setattr(owner, name, width)
            matched[label] = f"text_config.hidden_size = {width} (was {value})"
    return matched


def _fit_mrope_sections(model: Any) -> list[tuple[list[int], list[int]]]:
    """Multimodal rotary embeddings split their frequencies into (time, height, width) sections, which the model's
    code defaults (GLM-4V's ``[8, 12, 12]``) where the config has none; a default config whose head dim gives
    another number of frequencies cannot run. The sections are scaled to that number in the same ratio (largest
    remainders). The (default, scaled) pairs."""
    fitted: list[tuple[list[int], list[int]]] = []
    for module in model.modules():
        sections, frequencies = getattr(module, "mrope_section", None), getattr(module, "inv_freq", None)
        if not isinstance(sections, list) or not all(isinstance(n, int) for n in sections) or not sections:
            continue
        if not isinstance(frequencies, torch.Tensor) or frequencies.dim() != 1 or sum(sections) == len(frequencies):
            continue
        exact = [n * len(frequencies) / sum(sections) for n in sections]
        scaled = [int(x) for x in exact]
        for i in sorted(range(len(exact)), key=lambda i: scaled[i] - exact[i])[: len(frequencies) - sum(scaled)]:
            scaled[i] += 1
        module.mrope_section = scaled
        if (sections, scaled) not in fitted:
            fitted.append((sections, scaled))
    return fitted


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
        f"model type is not always complete: {DEFAULT_CONFIG_HINT}"
    )


def _unset(config: Any, field: str) -> bool:
    """The field is None on the config and on every sub-config that has it (and at least one has it)."""
    found = [getattr(c, field) for c in _configs(config) if hasattr(c, field)]
    return bool(found) and all(value is None for value in found)


def _configs(config: Any) -> list[Any]:
    subs = [v for k, v in vars(config).items() if k.endswith("_config") and hasattr(v, "to_dict")]
    return [config, *(c for sub in subs for c in _configs(sub))]


def _config(transformers: Any, name: str) -> FoundConfig:
    """The config ``name`` stands for, in this order: a config file or a checkpoint folder here, a Hub id, a
    model type's default config, a shipped checkpoint preset."""
    path = Path(name)
    if name.endswith(".json") or path.is_dir():
        file = path / "config.json" if path.is_dir() else path
        return FoundConfig(_config_from_file(transformers, file), folder=file.parent)
    repo = hub.hub_id(name)
    if repo is not None:
        return _from_hub(transformers, repo)
    known = sorted(transformers.CONFIG_MAPPING.keys())
    if name in known:
        return FoundConfig(transformers.AutoConfig.for_model(name), default=True)
    shipped = presets.preset(name)
    if shipped is not None:
        note = f"config: {shipped.hub_id}'s config.json, as shipped with torchcost"
        return FoundConfig(config_from_values(transformers, dict(shipped.config), shipped.name), note)
    raise UnknownModelError(
        f"unknown transformers model type or preset {name!r}; closest: "
        f"{', '.join(closest(name, sorted({*known, *presets.names()})))} (or give a Hub id, hf:ORG/NAME, or a "
        "path to a config.json; torchcost list shows the presets)"
    )


def _from_hub(transformers: Any, repo: hub.HubId) -> FoundConfig:
    """A Hub checkpoint's config: from the cache where it is there; else, for a shipped preset named without a
    revision, the shipped copy (no network needed); else fetched from the Hub."""
    shipped = presets.preset(repo.repo) if repo.revision is None else None
    folder = hub.cached(repo) if shipped is not None else None  # hub.fetch reads the cache itself
    if folder is None and shipped is not None:
        note = (
            f"config: {repo}'s config.json as shipped with torchcost (not in the Hub cache); name a revision "
            f"(hf:{repo}@main) to read the Hub's"
        )
        return FoundConfig(config_from_values(transformers, dict(shipped.config), shipped.name), note)
    folder = folder or hub.fetch(repo)
    note = f"config: {repo}'s config.json at commit {folder.name[:12]}"
    return FoundConfig(_config_from_file(transformers, folder / hub.CONFIG), note, folder)


def _config_from_file(transformers: Any, path: Path) -> Any:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelSourceError(f"no config file at {path}") from None
    except json.JSONDecodeError as exc:
        raise ModelSourceError(f"{path} is not valid JSON: {exc}") from None
    return config_from_values(transformers, values, str(path))


def config_from_values(transformers: Any, values: Any, origin: str) -> Any:
    """A config from a config.json's values (``origin`` names it in errors)."""
    model_type = values.pop("model_type", None) if isinstance(values, dict) else None
    if model_type is None:
        raise ModelSourceError(f'{origin} has no "model_type" key; a transformers config.json names its architecture')
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


def _model_classes(transformers: Any, config: Any) -> list[Any]:
    """The auto classes that map ``config``'s type to a model, in order of preference, then the model classes they
    map it to (an auto class may refuse a config it maps, as Evolla's). The next is tried when one cannot be built
    from this config: transformers maps some composite configs to a sub-model's class."""
    encoder_decoder = getattr(config, "is_encoder_decoder", False)
    others = sorted(n for n in dir(transformers) if n.startswith("AutoModelFor") and n not in PREFERRED_AUTO_CLASSES)
    auto_classes, model_classes = [], []
    for name in (*PREFERRED_AUTO_CLASSES, *others, "AutoBackbone"):
        if name.endswith("Seq2SeqLM") and not encoder_decoder:
            continue
        auto_class = getattr(transformers, name)
        with contextlib.suppress(KeyError, AttributeError, ValueError):  # `in` misses some (Evolla's)
            model_classes.append(auto_class._model_mapping[type(config)])
            auto_classes.append(auto_class)
    if not auto_classes:
        raise ModelSourceError(f"transformers maps no model class to {config.model_type!r} configs")
    return [*auto_classes, *dict.fromkeys(model_classes)]
