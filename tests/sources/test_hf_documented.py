"""Inputs that only a model's docstring describes (``hf_documented``): each documented size read from the batch,
the config or the default length, and a shape with any other size left to the user."""

import pytest
import torch
from torch import nn

from torchcost.sources.hf_documented import documented_inputs

pytest.importorskip("transformers")

CONFIG = {"hidden_size": 12, "num_mel_bins": 5, "block_size": 3, "target_layer_ids": [1, 4, 7]}


class Documented(nn.Module):
    def forward(self, latents, mel, context, noise, ids, unknown):  # as MuseGlimmerAssistant documents its context
        """
        latents (`torch.Tensor` of shape `(batch_size, hidden_size, frames)`):
            Continuous latents.
        mel (`torch.FloatTensor` of shape `(batch_size, mel_bins, time_steps)`):
            A spectrogram.
        context (`torch.Tensor` of shape `[batch_size, accepted_tokens, dim * len(config.target_layer_ids)]`):
            Hidden states of three layers, concatenated.
        noise (`torch.Tensor` of shape `[batch_size, config.block_size, dim]`):
            Noise.
        ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            Token ids: not made here.
        unknown (`torch.Tensor` of shape `(batch_size, num_widgets)`):
            A size no config sets.
        """


def made(names, batch=2, length=7):
    return documented_inputs(Documented(), names, batch, length, CONFIG.get, torch.Generator().manual_seed(0))


def test_documented_sizes_come_from_the_batch_the_config_and_the_default_length():
    tensors, notes = made(["latents", "mel", "context", "noise"])
    assert tensors["latents"].shape == (2, 12, 7)  # batch, hidden_size, the default length
    assert tensors["mel"].shape == (2, 5, 7)  # mel_bins is the config's num_mel_bins
    assert tensors["context"].shape == (2, 7, 12 * 3)  # dim (hidden_size) x 3 target layers
    assert tensors["noise"].shape == (2, 3, 12)  # config.block_size
    assert "random latents of (2, 12, 7) (the shape the model's docstring gives)" in notes


def test_ids_and_sizes_no_config_sets_are_not_guessed():
    tensors, notes = made(["ids", "unknown", "not_documented"])
    assert tensors == {} and notes == []


def test_codec_decoder_gets_latents_of_its_documented_shape():
    from transformers import AutoConfig

    from torchcost import profile_spec
    from torchcost.inputs import InputOptions

    hidden = AutoConfig.for_model("pocket_tts_audio_tokenizer_decoder").hidden_size
    p = profile_spec("hf:pocket_tts_audio_tokenizer_decoder", InputOptions(seq_len=16), device="meta")
    assert [(s.name, s.shape) for s in p.inputs] == [("latents", (1, hidden, 16))]
    assert any("the shape the model's docstring gives" in note for note in p.notes)
