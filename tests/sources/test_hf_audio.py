"""Speech and audio-language models in small configs, through ``hf:config.json`` with default inputs: the
feature extractor of a related type, the processor's padding to whole encoder frames, audio tokens counted as
the model counts them, a default config whose audio and text widths disagree, and features whose extractor needs a
library that is missing."""

import importlib.util

import pytest
import torch
from torch import nn

import torchcost
from tests.sources.test_hf_architectures import T, counts, write
from tests.test_llm import KV, E, F, H, V
from torchcost import profile_spec
from torchcost.inputs import InputOptions
from torchcost.sources.base import ModelSourceError

pytest.importorskip("transformers")

TEXT = dict(hidden_size=E, intermediate_size=F, num_hidden_layers=1, num_attention_heads=H, num_key_value_heads=KV,
            vocab_size=V)  # fmt: skip


def test_audio_tokens_from_the_towers_lengths_where_the_model_has_no_get_audio_features(tmp_path):
    audio = dict(model_type="qwen2_audio_encoder", d_model=E, encoder_layers=1, encoder_attention_heads=H,
                 encoder_ffn_dim=F, num_mel_bins=16)  # fmt: skip
    spec = write(tmp_path, model_type="qwen2_audio", audio_config=audio, text_config=dict(model_type="qwen2", **TEXT),
                 audio_token_index=V - 1)  # fmt: skip
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    # 1 s = 100 real frames of Whisper's 30 s window; Qwen2-Audio's lengths: (100 - 1) // 2 + 1 = 50, (50 - 2) // 2 + 1
    assert shapes["input_features"] == (1, 16, 3000) and shapes["feature_attention_mask"] == (1, 3000)
    assert shapes["input_ids"] == (1, 25 + T)
    assert any("25 audio tokens per sequence" in note for note in p.notes)
    assert p.macs == counts(spec, "cpu")[0]


def test_audio_tower_gets_its_packages_extractor_and_whole_encoder_frames(tmp_path):
    # nemotron3_diarization_audio maps no extractor; nemotron3_diarization (same package) maps Nemotron's
    spec = write(tmp_path, model_type="nemotron3_diarization_audio", hidden_size=E, intermediate_size=F,
                 num_hidden_layers=1, num_attention_heads=H, num_key_value_heads=H, num_mel_bins=16)  # fmt: skip
    p = profile_spec(spec, device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    # 16000 samples, hop 160, centred: 16000 // 160 + 1 = 101 frames, padded to 13 x 8 = 104 (subsampling factor 8)
    assert shapes["input_features"] == (1, 104, 16) and shapes["attention_mask"] == (1, 104)
    assert any("3 frames of padding" in note for note in p.notes)
    assert (p.macs, p.flops) == counts(spec, "cpu")[:2]


def test_audio_width_unlike_the_text_width_is_fitted_and_said(tmp_path):
    audio = dict(model_type="qwen3_asr_encoder", d_model=E, encoder_layers=1, encoder_attention_heads=H,
                 encoder_ffn_dim=F, num_mel_bins=16, output_dim=2 * E, downsample_hidden_size=8)  # fmt: skip
    spec = write(tmp_path, model_type="qwen3_asr", audio_config=audio, text_config=dict(model_type="qwen3", **TEXT),
                 audio_token_id=V - 1)  # fmt: skip
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    fitted = f"audio_config.output_dim differs from its text model's width: taken as text_config.hidden_size = {E}"
    fitted += f" (was {2 * E})"
    assert any(fitted in note for note in p.notes)
    assert p.macs == counts(spec, "cpu")[0]


class MaskedFill(nn.Module):
    def forward(self, x):
        return x.masked_fill(x > 0, torch.tensor(-1.0))  # a CPU scalar tensor as the value, as SEW-D passes it


def test_cpu_scalar_value_counts_on_meta_as_on_cpu():
    x = torch.randn(4, 8)
    on_cpu, on_meta = (torchcost.profile(MaskedFill(), x, device=d) for d in ("cpu", "meta"))
    assert on_meta.uncounted == on_cpu.uncounted == []
    assert (on_meta.flops, on_meta.memory_access.total) == (on_cpu.flops, on_cpu.memory_access.total)


def test_features_without_their_extractor_are_asked_for_naming_the_missing_library():
    if importlib.util.find_spec("torchaudio") is not None:
        pytest.skip("torchaudio is installed: the extractor runs")
    with pytest.raises(ModelSourceError, match=r"input_features \(GraniteSpeech5FeatureExtractor needs torchaudio"):
        profile_spec("hf:granite_speech5_ctc", device="meta")


def test_audio_language_model_with_an_audio_token_and_a_tower_config_gets_its_audio():
    # VibeVoice-ASR has no audio_config: its tower is acoustic_tokenizer_encoder_config, its audio token is set
    p = profile_spec("hf:vibevoice_asr", InputOptions(seq_len=T), device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    assert "input_values" in shapes and shapes["input_ids"][1] > T  # the audio tokens come before the text
