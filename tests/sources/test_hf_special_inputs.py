"""transformers models whose inputs are not text, images or audio, in small configs through ``hf:config.json``:
time series (lagged forecasters, patch models, TimesFM), video clips, image pairs, document boxes, detected regions
and language adapters get inputs of the sizes their configs and docs give, and count the same on meta as on CPU."""

import pytest

from tests.sources.test_hf_architectures import write
from torchcost import profile_spec
from torchcost.inputs import InputOptions

pytest.importorskip("transformers")

T = 8  # tokens
SMALL_BERT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64)


def inputs(spec, device="meta", **options):
    p = profile_spec(spec, InputOptions(**options), device=device)
    return p, {s.name: s.shape for s in p.inputs}


def test_lagged_forecaster_gets_past_and_future_windows_and_its_declared_features(tmp_path):
    spec = write(tmp_path, model_type="time_series_transformer", prediction_length=4, context_length=6,
                 lags_sequence=[1, 2, 3], num_time_features=2, num_dynamic_real_features=1,
                 num_static_categorical_features=1, cardinality=[5], num_static_real_features=3, d_model=16,
                 encoder_layers=1, decoder_layers=1, encoder_ffn_dim=16, decoder_ffn_dim=16)  # fmt: skip
    p, shapes = inputs(spec)
    # the past is context 6 + largest lag 3 = 9 steps; 2 time + 1 dynamic real features per step
    assert shapes["past_values"] == (1, 9) and shapes["past_observed_mask"] == (1, 9)
    assert shapes["past_time_features"] == (1, 9, 3)
    assert shapes["future_values"] == (1, 4) and shapes["future_time_features"] == (1, 4, 3)
    assert shapes["static_categorical_features"] == (1, 1) and shapes["static_real_features"] == (1, 3)
    assert p.macs == profile_spec(spec, device="cpu").macs


def test_default_config_without_a_horizon_takes_the_documented_one_and_says_so():
    p, shapes = inputs("hf:informer")
    assert shapes["past_values"] == (1, 12 + 7)  # context = prediction length 12, lags up to 7
    assert shapes["future_values"] == (1, 12)
    assert any("prediction_length = 12" in note for note in p.notes)


def test_multivariate_lagged_forecaster_has_a_variate_axis(tmp_path):
    spec = write(tmp_path, model_type="informer", prediction_length=3, context_length=5, lags_sequence=[1, 2],
                 input_size=2, d_model=16, encoder_layers=1, decoder_layers=1)  # fmt: skip
    _, shapes = inputs(spec)
    assert shapes["past_values"] == (1, 7, 2) and shapes["future_values"] == (1, 3, 2)


def test_patch_model_gets_its_context_and_channels(tmp_path):
    spec = write(tmp_path, model_type="patchtst", num_input_channels=3, context_length=16, patch_length=4,
                 patch_stride=4, d_model=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=16)  # fmt: skip
    p, shapes = inputs(spec, batch=2)
    assert shapes["past_values"] == (2, 16, 3)
    assert p.macs == profile_spec(spec, InputOptions(batch=2), device="cpu").macs


def test_timesfm_gets_an_unpadded_series_and_a_frequency(tmp_path):
    spec = write(tmp_path, model_type="timesfm", patch_length=8, context_length=32, horizon_length=8,
                 hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                 head_dim=8)  # fmt: skip
    p, shapes = inputs(spec)
    assert shapes == {"past_values": (1, 32), "past_values_padding": (1, 32), "freq": (1, 1)}
    assert p.macs == profile_spec(spec, device="cpu").macs


def test_video_model_gets_a_clip_of_the_configs_frames(tmp_path):
    spec = write(tmp_path, model_type="videomae", image_size=32, patch_size=8, num_frames=4, tubelet_size=2,
                 hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2)  # fmt: skip
    p, shapes = inputs(spec)
    assert shapes["pixel_values"] == (1, 4, 3, 32, 32)
    # tubelets: (4 / 2) x (32 / 8)^2 = 32, each a 3 x 2 x 8 x 8 = 384-wide patch embedded into 16
    assert next(m for m in p.modules if m.type == "Conv3d").macs == 32 * 384 * 16
    assert any("clip(s) of 4 frames" in note for note in p.notes)


def test_frames_model_without_a_video_processor_gets_its_images_as_clips(tmp_path):
    # X-CLIP's code unpacks (batch, num_frames, channels, height, width) from pixel_values; its processor makes images
    vision = dict(image_size=32, patch_size=8, num_frames=3, hidden_size=16, intermediate_size=16,
                  num_hidden_layers=1, num_attention_heads=2, mit_hidden_size=16, mit_intermediate_size=16,
                  mit_num_hidden_layers=1, mit_num_attention_heads=2)  # fmt: skip
    text = dict(hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, vocab_size=64)
    spec = write(tmp_path, model_type="xclip", vision_config=vision, text_config=text, projection_dim=16,
                 prompt_layers=1, prompt_attention_heads=2, prompt_hidden_act="quick_gelu")  # fmt: skip
    p, shapes = inputs(spec)
    assert shapes["pixel_values"] == (1, 3, 3, 32, 32)  # 3 frames of 3 x 32 x 32
    assert any("clip of 3 frames" in note for note in p.notes)


def test_keypoint_matcher_gets_image_pairs():
    p, shapes = inputs("hf:efficientloftr")
    assert shapes["pixel_values"][:2] == (1, 2)  # (batch, pair, channels, height, width)
    assert any("image pair(s)" in note for note in p.notes)


@pytest.mark.parametrize(
    ("model_type", "config", "dtype"),
    [("bros", {"num_hidden_layers": 1}, "float32"), ("layoutlm", SMALL_BERT, "int64")],  # BROS' box widths are fixed
)
def test_document_model_gets_a_box_per_token(tmp_path, model_type, config, dtype):
    spec = write(tmp_path, model_type=model_type, **config)
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    box = next(s for s in p.inputs if s.name == "bbox")
    assert box.shape == (1, T, 4) and str(box.dtype).endswith(dtype)
    assert p.macs == profile_spec(spec, InputOptions(seq_len=T), device="cpu").macs


def test_region_model_gets_36_detected_objects(tmp_path):
    spec = write(tmp_path, model_type="lxmert", **SMALL_BERT, l_layers=1, x_layers=1, r_layers=1,
                 visual_feat_dim=24)  # fmt: skip
    _, shapes = inputs(spec, seq_len=T)
    assert shapes["visual_feats"] == (1, 36, 24) and shapes["visual_pos"] == (1, 36, 4)


def test_language_adapter_model_gets_its_first_language(tmp_path):
    spec = write(tmp_path, model_type="xmod", **SMALL_BERT, languages=["en_XX", "de_DE"])
    p, shapes = inputs(spec, seq_len=T)
    assert shapes["lang_ids"] == (1, T)
    assert p.macs == profile_spec(spec, InputOptions(seq_len=T), device="cpu").macs
