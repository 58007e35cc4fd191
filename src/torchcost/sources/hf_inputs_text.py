"""Text inputs of a transformers model: token ids below the vocabulary size, avoiding the config's special token
ids, after the placeholder tokens of the images or audio the text stands beside; an all-ones mask; and the
decoder's ids (one per codebook for an audio decoder) and the other inputs that go with the ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from torchcost.sources.hf_inputs_config import find_value, placeholder_token, text_config_of
from torchcost.sources.hf_inputs_model import ModelInputs

DEFAULT_SEQ_LEN = 128
TEXT_IDS = ("input_ids", "decoder_input_ids", "qformer_input_ids")
MASKS = ("attention_mask", "qformer_attention_mask")  # all ones, for the ids of the same name


class TextInputs(ModelInputs):
    """Makes the text inputs of one transformers model."""

    def _text(
        self, batch: int, seq_len: int | None, placeholders: dict[str, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Random text ids, after the placeholder tokens of each modality (``{"image": 576}``)."""
        text = text_config_of(self.config)
        length = seq_len or min(DEFAULT_SEQ_LEN, _max_positions(text) or DEFAULT_SEQ_LEN)
        vocab = int(getattr(text, "vocab_size", None) or getattr(self.config, "vocab_size", None) or 2)
        ids = _token_ids(self.config, vocab, (batch, length), generator)
        for kind, count in reversed(placeholders.items()):
            token = torch.full((batch, count), placeholder_token(self.config, kind) or 0, dtype=torch.long)
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
            made["mm_token_type_ids"] = (ids == (placeholder_token(self.config, "image") or -1)).int()
        return made

    def _per_codebook(self, ids: torch.Tensor) -> torch.Tensor:
        """Audio decoders take one id per codebook: MusicGen as rows (batch x codebooks, length), Dia as a last
        dimension (batch, length, codebooks)."""
        decoder = getattr(self.config, "decoder", None)
        rows = find_value(decoder, "num_codebooks") if hasattr(decoder, "to_dict") else None
        channels = getattr(getattr(self.config, "decoder_config", None), "num_channels", None)
        if isinstance(rows, int) and rows > 1:
            return ids.repeat_interleave(rows, dim=0)
        if isinstance(channels, int) and channels > 1:
            return ids[..., None].repeat(1, 1, channels)
        return ids


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


def _max_positions(config: Any) -> int | None:
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def _decoder_positions(config: Any) -> int:
    value = getattr(config, "max_target_positions", None) or _max_positions(config)
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_SEQ_LEN
