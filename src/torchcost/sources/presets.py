"""Checkpoint presets: the ``config.json`` of widely used Hub checkpoints, shipped in ``checkpoints/`` so that
``torchcost profile llama-3.1-8b`` (or ``hf:meta-llama/Llama-3.1-8B``) counts the real dimensions offline.

Each file holds a checkpoint's architecture fields as its Hub ``config.json`` has them (no weights, no licence
text), its Hub id, and the parameter total its model card publishes, where the card gives one to three figures or
more (``published_parameters``; ``published_where`` says where and quotes it).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKPOINTS = Path(__file__).parent / "checkpoints"


@dataclass(frozen=True)
class Preset:
    name: str  # what a user types: llama-3.1-8b
    hub_id: str  # ORG/NAME on the Hub
    config: dict[str, Any]  # the checkpoint's config.json (architecture fields)
    published_parameters: int | None  # the total the model card publishes, when it gives one
    published_where: str
    aliases: tuple[str, ...] = field(default=())  # earlier names (torchcost llm's first presets)

    @property
    def model_type(self) -> str:
        return str(self.config["model_type"])

    def to_dict(self) -> dict[str, Any]:
        """What ``torchcost list --json`` shows: everything but the config."""
        return {
            "name": self.name,
            "hub_id": self.hub_id,
            "model_type": self.model_type,
            "aliases": list(self.aliases),
            "published_parameters": self.published_parameters,
            "published_where": self.published_where,
        }


@functools.cache
def all_presets() -> dict[str, Preset]:
    """Every shipped preset by name, in name order."""
    found = {}
    for path in sorted(CHECKPOINTS.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        preset = Preset(
            record["name"],
            record["hub_id"],
            record["config"],
            record["published_parameters"],
            record["published_where"],
            tuple(record.get("aliases", ())),
        )
        found[preset.name] = preset
    return found


def preset(name: str) -> Preset | None:
    """The preset a name, an alias or a Hub id (any case) names; None when none does."""
    wanted = name.lower()
    for candidate in all_presets().values():
        if wanted in (candidate.name, candidate.hub_id.lower(), *candidate.aliases):
            return candidate
    return None


def names() -> list[str]:
    """Every name a preset answers to (aliases included), sorted."""
    return sorted(n for p in all_presets().values() for n in (p.name, *p.aliases))


def of_model_type(model_type: str) -> list[str]:
    """The presets of one transformers model type (``gemma3`` -> gemma-3-4b, gemma-3-27b)."""
    return [p.name for p in all_presets().values() if p.model_type == model_type]
