"""Inputs that only a model's docstring describes: a required float tensor documented as
``name (`torch.Tensor` of shape `(batch_size, hidden_size, frames)`)``, as transformers documents a codec
decoder's ``latents`` or a Q-Former's ``query_embeds``.

Each size of the documented shape is read as: ``batch_size`` the batch; an integer; ``config.NAME`` or a name the
config sets (``hidden_size``; ``mel_bins`` as ``num_mel_bins``, ``dim`` as ``hidden_size``); ``len(config.NAME)``;
a product of those with ``*``; else, for a name of a length (frames, time steps, tokens), the default length. A
shape with any other size is not guessed: the input stays missing and the error asks for it.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

# `name (`torch.Tensor` of shape `(batch_size, hidden_size, frames)`)`; FloatTensor too, never LongTensor (ids)
DOCUMENTED = r"^\s*{name} \(`torch\.(?:Float)?Tensor`\s+of shape `[(\[]([^`]+)[)\]]`"
ALIASES = {"mel_bins": "num_mel_bins", "dim": "hidden_size", "dimension": "hidden_size"}
LENGTH_WORDS = ("length", "frames", "steps", "tokens", "seq")


def documented_inputs(
    model: nn.Module, names: list[str], batch: int, length: int, find: Callable[[str], Any], generator: torch.Generator
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Random tensors for those of ``names`` whose shape ``model.forward``'s docstring gives; ``find(name)`` is
    the config's value of a name (None where unset); also what was made, in words."""
    doc = inspect.getdoc(type(model).forward) or ""
    made, notes = {}, []
    for name in names:
        found = re.search(DOCUMENTED.format(name=re.escape(name)), doc, re.MULTILINE)
        sizes = [_size(s.strip(), batch, length, find) for s in found[1].split(",")] if found else [None]
        if all(isinstance(s, int) and s > 0 for s in sizes):
            made[name] = torch.randn(*sizes, generator=generator)
            notes.append(f"random {name} of {tuple(sizes)} (the shape the model's docstring gives)")
    return made, notes


def _size(text: str, batch: int, length: int, find: Callable[[str], Any]) -> int | None:
    factors = [_factor(f.strip(), batch, length, find) for f in text.split("*")]
    known = [f for f in factors if f is not None]
    return math.prod(known) if len(known) == len(factors) else None


def _factor(text: str, batch: int, length: int, find: Callable[[str], Any]) -> int | None:
    if text.isdigit():
        return int(text)
    if text in ("batch_size", "batch"):
        return batch
    counted = re.fullmatch(r"len\(config\.(\w+)\)", text)
    value = find(counted[1]) if counted else find(ALIASES.get(text, text.removeprefix("config.")))
    if counted and isinstance(value, list | tuple):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not counted and re.fullmatch(r"\w+", text) and any(w in text for w in LENGTH_WORDS):
        return length
    return None
