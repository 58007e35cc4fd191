"""Example inputs from a few options (``--input-size``, ``--input-dtype``, ``--batch``, ``--seq-len``,
``--kwargs-json``) and what the model's source knows (its default size, token or image inputs)."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchcost.errors import ProfilingError
from torchcost.sources import LoadedModel
from torchcost.sources.base import KeywordMaker

Shape = tuple[int, ...]
Inputs = tuple[tuple[Any, ...], dict[str, Any]]  # positional and keyword inputs of the model's forward
SEED = 0  # random inputs are the same on every run
TOKEN_IDS = ("input_ids", "decoder_input_ids")
# inputs made with the main one that no longer fit when --input-size replaces it
DERIVED_FROM_MAIN = ("pixel_mask", "image_grid_thw", "image_sizes", "pixel_attention_mask", "attention_mask")


class InputError(ProfilingError):
    """The input options do not fit the model; the message says which option to change (``cli``: which flag)."""


@dataclass(frozen=True)
class InputOptions:
    """How to build the example input; every field left ``None`` takes the source's default."""

    sizes: list[Shape] | None = None  # one shape per positional input
    dtype: str | None = None  # dtype of the random tensors, e.g. int64 for indices
    batch: int | None = None  # replaces the first dimension (the number of images for detection models)
    seq_len: int | None = None  # tokens per sequence (token models)
    kwargs: dict[str, Any] = field(default_factory=dict)  # keyword inputs; {"shape": [...], "dtype": ...} is a tensor


def example_inputs(loaded: LoadedModel, options: InputOptions, device: torch.device | str = "cpu") -> Inputs:
    """Positional and keyword inputs for ``loaded.model``, made on ``device``."""
    generator = torch.Generator().manual_seed(SEED)
    if options.seq_len is not None and loaded.input_kind != "keywords":
        why = "{} applies to token models (hf: text models); for other models give the ids' shape: {}"
        raise InputError(
            why.format("seq_len", "InputOptions(sizes=[(1, 128)], dtype='int64')"),
            cli=why.format("--seq-len", "--input-size 1,128 --input-dtype int64"),
        )
    for size in options.sizes or []:
        if not size or min(size) < 1:
            raise InputError(
                f"input size {tuple(size)} is not a shape of positive sizes such as (1, 3, 224, 224)",
                cli=f"--input-size {','.join(map(str, size))!r} is not a shape of positive sizes such as 1,3,224,224",
            )
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if loaded.keyword_inputs is not None:
        kwargs = _keywords(loaded.keyword_inputs, options, generator)
    elif loaded.input_kind == "images":
        args = (_images(loaded, options, generator),)
    else:
        args, kwargs = _tensors(loaded, options, generator)
    kwargs.update({name: _keyword_value(value, name, generator) for name, value in options.kwargs.items()})
    moved = [_to(a, device) for a in args]
    return tuple(moved), {name: _to(value, device) for name, value in kwargs.items()}


def parse_kwargs_json(text: str) -> dict[str, Any]:
    """Keyword inputs from JSON text, or from a ``.json`` file when ``text`` is its path."""
    source = Path(text).read_text(encoding="utf-8") if text.endswith(".json") and Path(text).is_file() else text
    try:
        values = json.loads(source)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"--kwargs-json is not valid JSON ({exc}); e.g. '{{\"output_hidden_states\": false}}'"
        ) from None
    if not isinstance(values, dict):
        raise InputError("--kwargs-json must be a JSON object mapping keyword names to values")
    return values


def _tensors(loaded: LoadedModel, options: InputOptions, generator: torch.Generator) -> Inputs:
    """Random tensors of the given (or the source's) sizes, positional; when a keyword input names one of the
    source's default inputs (or forward takes them only by keyword), those defaults go by name, each once."""
    sizes = options.sizes or loaded.input_sizes
    if sizes is None:
        if options.kwargs:
            return (), {}  # the keyword inputs are the whole input
        hint = f" ({loaded.input_hint})" if loaded.input_hint else ""
        missing = f"{loaded.spec} has no default input size{hint}"
        raise InputError(
            f"{missing}; give InputOptions(sizes=[(1, 3, 224, 224)]) or keyword inputs (kwargs=)",
            cli=f"{missing}; pass --input-size (e.g. 1,3,224,224) or keyword inputs with --kwargs-json",
        )
    dtypes = loaded.input_dtypes if options.sizes is None and loaded.input_dtypes else [None] * len(sizes)
    tensors = []
    for size, source_dtype in zip(sizes, dtypes, strict=True):
        shape = (options.batch, *size[1:]) if options.batch is not None and size else size
        tensors.append(_random(shape, _dtype(options.dtype) or source_dtype or torch.float32, generator))
    if not options.kwargs:
        return tuple(tensors), {}
    names, open_ended = positional_parameters(loaded.model)
    taken = [name for name in names[: len(tensors)] if name in options.kwargs]
    if not taken and (open_ended or len(tensors) <= len(names) or options.sizes is not None):
        return tuple(tensors), {}  # the keyword inputs add to the positional ones
    if options.sizes is not None:
        twice = "{!r} is given twice: by {} and by the keyword inputs; give it once"
        raise InputError(twice.format(taken[0], "sizes"), cli=twice.format(taken[0], "--input-size"))
    # the source's default inputs, by name, but those the keyword inputs give (or forward cannot take)
    by_name = dict(zip(names, tensors, strict=False))
    return (), {name: tensor for name, tensor in by_name.items() if name not in options.kwargs}


def positional_parameters(model: nn.Module) -> tuple[list[str], bool]:
    """The names of the positional parameters of ``model.forward``, and whether it also takes ``*args``."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # some compiled or scripted forwards have no signature
        return [], True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in parameters if p.kind in kinds]
    return names, any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters)


def _images(loaded: LoadedModel, options: InputOptions, generator: torch.Generator) -> list[torch.Tensor]:
    """Detection models take a list of (C, H, W) images: a 4-D size gives that many images."""
    images: list[Shape] = []
    for size in options.sizes or loaded.input_sizes or []:
        if len(size) not in (3, 4):
            raise InputError(
                f"detection models take (C, H, W) images; input size {size} is not (3, H, W) or (N, 3, H, W)",
                cli=f"detection models take (C, H, W) images; --input-size {size} is not 3,H,W or N,3,H,W",
            )
        images += [size] if len(size) == 3 else [size[1:]] * size[0]
    if options.batch is not None:
        images = [images[0]] * options.batch
    return [_random(shape, _dtype(options.dtype) or torch.float32, generator) for shape in images]


def _keywords(maker: KeywordMaker, options: InputOptions, generator: torch.Generator) -> dict[str, Any]:
    """The model's keyword inputs as its source makes them. ``--input-size BATCH,SEQ_LEN`` sets the text of a
    token model; for another model it replaces its main input (pixel values, say) with a random tensor."""
    if options.sizes is not None and options.seq_len is not None:
        raise InputError(
            "give seq_len (with batch) or sizes=[(BATCH, SEQ_LEN)] for a token model, not both",
            cli="give --seq-len (with --batch) or --input-size BATCH,SEQ_LEN for a token model, not both",
        )
    batch, seq_len, replaced = options.batch or 1, options.seq_len, None
    if options.sizes is not None:
        if len(options.sizes) != 1:
            raise InputError(
                f"give one size for the model's main input ({maker.main}), not {options.sizes}",
                cli=f"give one --input-size for the model's main input ({maker.main}), not {options.sizes}",
            )
        size = options.sizes[0]
        if maker.main in TOKEN_IDS:
            if len(size) != 2:
                raise InputError(
                    f"a token model takes one size (BATCH, SEQ_LEN), not {size}",
                    cli=f"a token model takes --input-size BATCH,SEQ_LEN, not {size}",
                )
            batch, seq_len = options.batch or size[0], size[1]
        else:
            replaced = (options.batch, *size[1:]) if options.batch is not None else size
            batch = replaced[0] if replaced else batch
    made = maker(batch, seq_len, generator)
    if replaced is not None and maker.main is not None:
        made = {k: v for k, v in made.items() if k not in DERIVED_FROM_MAIN}
        made[maker.main] = _random(replaced, _dtype(options.dtype) or torch.float32, generator)
    return made


def _keyword_value(value: Any, name: str, generator: torch.Generator) -> Any:
    if isinstance(value, dict) and "shape" in value:
        try:
            shape = tuple(int(d) for d in value["shape"])
        except (TypeError, ValueError):
            raise InputError(
                f"keyword input {name!r}: shape must be a list of integers",
                cli=f"--kwargs-json {name!r}: shape must be a list of integers",
            ) from None
        return _random(shape, _dtype(value.get("dtype")) or torch.float32, generator)
    return value


def _random(shape: Shape, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(shape, dtype=dtype, generator=generator)
    return torch.zeros(shape, dtype=dtype)  # zeros are a valid index into any table


def _dtype(name: str | None) -> torch.dtype | None:
    if name is None:
        return None
    resolved = getattr(torch, name, None)
    if not isinstance(resolved, torch.dtype):
        raise InputError(f"unknown dtype {name!r}; use a torch dtype name such as float32, float16, int64")
    return resolved


def _to(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    return value
