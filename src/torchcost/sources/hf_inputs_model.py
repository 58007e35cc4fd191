"""What one transformers model takes: the arguments of its ``forward`` (all of them, and those without a default),
its main input, and the modalities its config has a tower for. ``ModelInputs`` is the base of the makers of each
modality's inputs (``hf_inputs_text``, ``hf_inputs_vision``, ``hf_inputs_audio``), which ``hf_inputs`` joins.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from torch import nn

from torchcost.sources.hf_inputs_config import placeholder_token


class ModelInputs:
    """What one transformers model takes; ``note`` says what the last call made, ``unavailable`` which processors
    could not be built."""

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


def _towers(config: Any) -> set[str]:
    """The modalities a config has a tower for: a ``{modality}_config`` (CLIP's vision tower, CLAP's audio
    encoder), CLVP's ``speech_config``, or an audio token beside the config of an encoder (Granite Speech's
    ``encoder_config``)."""
    towers = {m for m in ("vision", "video", "audio") if getattr(config, f"{m}_config", None) is not None}
    subs = [k for k, v in vars(config).items() if k.endswith("_config") and hasattr(v, "to_dict")]
    speech = getattr(config, "speech_config", None) is not None
    if speech or (placeholder_token(config, "audio") is not None and any("encoder" in k for k in subs)):
        towers.add("audio")
    return towers
