"""How many placeholder tokens stand for the images or audio in the text of a vision- or audio-language model: as
many as the rows of features the model's own ``get_image_features`` / ``get_audio_features`` returns for them
(run on meta with their values known), else as ``hf_audio`` or the config says.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from torchcost.emulate.meta_values import BUILT, MetaValues
from torchcost.emulate.on_meta import FollowValues, MetaFunctions
from torchcost.sources import hf_audio
from torchcost.sources.hf_inputs_config import find_value
from torchcost.sources.hf_inputs_text import TextInputs
from torchcost.tensors import tensors_in


class PlaceholderTokens(TextInputs):
    """Counts the placeholder tokens of one transformers model (the text beside the features of a Q-Former, as
    InstructBLIP's, is made to count them)."""

    def _image_tokens(self, made: dict[str, Any], batch: int, notes: list[str]) -> int:
        if not any(hasattr(o, "get_image_features") for o in self.owners) or "pixel_values" not in made:
            return int(find_value(self.config, "image_seq_length", "mm_tokens_per_image") or 0)
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
        rows = sum(t.numel() // t.shape[-1] for t in tensors_in(getattr(out, "pooler_output", out)) if t.dim())
        notes.append(f"{rows // batch} {kind} tokens per sequence (the rows of the model's {kind} features)")
        return rows // batch


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


def _call_with_values(function: Any, model: nn.Module, kwargs: dict[str, Any]) -> Any:
    """``function(**kwargs)`` with the tensors on the model's device; on meta, with their values known (the model's
    code may look at them, as profiling allows)."""
    device = next(model.parameters(), torch.empty(0)).device
    moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    if device.type != "meta":
        with torch.no_grad():
            return function(**moved)
    values = MetaValues(fallback=BUILT)
    for name, tensor in moved.items():
        if isinstance(tensor, torch.Tensor):
            values.seed(tensor, kwargs[name])
    with MetaFunctions(values), FollowValues(values), torch.no_grad():
        return function(**moved)
