"""Important transformers architectures in small configs, through ``hf:config.json`` with default inputs: mixture of
experts and latent attention count the same on meta as on the CPU and match the analytic count; vision-language,
speech and encoder-decoder models get the inputs their processors would make."""

import json

import pytest

from tests.test_llm import DEEPSEEK_V3, HD, KV, MIXTRAL, E, F, H, L, V
from torchcost import profile_spec
from torchcost.inputs import InputOptions

pytest.importorskip("transformers")

T = 8  # tokens
CAUSAL_PAIRS = T * (T + 1) // 2  # 36 (query, key) pairs


def write(tmp_path, **values):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    return f"hf:{path}"


def counts(spec, device):
    p = profile_spec(spec, InputOptions(seq_len=T), device=device)
    assert p.uncounted == []
    return p.macs, p.flops, p.memory_access.total


# per token and layer: q, o E x E; k, v E x (KV x HD); router E x 4; 2 experts of gate, up, down E x F; LM head
MIXTRAL_PER_TOKEN = L * (2 * E * E + 2 * E * KV * HD + E * 4 + 2 * 3 * E * F) + E * V
ATTENTION = L * H * CAUSAL_PAIRS * 2 * HD  # scores and weighted sum, HD MACs per pair each
IN_BF16 = {"dtype": "bfloat16"}


def test_mixture_of_experts_counts_in_the_configs_dtype_and_matches_the_analytic_count(tmp_path):
    spec = write(tmp_path, model_type="mixtral", **MIXTRAL, **IN_BF16)
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    # counted in the config's bf16 (transformers 5 runs the experts through _grouped_mm, which takes bf16/fp16 only)
    assert p.size_bytes == 2 * p.params.total + 4 * p.params.buffers  # the rotary frequencies stay fp32
    assert p.macs == T * MIXTRAL_PER_TOKEN + ATTENTION


@pytest.mark.parametrize(("model_type", "config"), [("mixtral", MIXTRAL), ("deepseek_v3", DEEPSEEK_V3)])
def test_experts_and_latent_attention_count_the_same_on_meta_as_on_cpu(tmp_path, model_type, config):
    spec = write(tmp_path, model_type=model_type, **config, **IN_BF16)
    assert counts(spec, "meta") == counts(spec, "cpu")


def test_vision_language_model_gets_images_and_their_tokens(tmp_path):
    vision = dict(model_type="clip_vision_model", hidden_size=E, intermediate_size=F, num_hidden_layers=1,
                  num_attention_heads=H, image_size=32, patch_size=8)  # fmt: skip
    text = dict(model_type="llama", hidden_size=E, intermediate_size=F, num_hidden_layers=1, num_attention_heads=H,
                num_key_value_heads=KV, vocab_size=V)  # fmt: skip
    spec = write(tmp_path, model_type="llava", vision_config=vision, text_config=text, image_token_index=V - 1)
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    # (32 / 8)^2 = 16 patches; LLaVA drops the class token and keeps one image token per patch before the text
    assert shapes["pixel_values"] == (1, 3, 32, 32) and shapes["input_ids"] == (1, 16 + T)
    assert any("16 image tokens per sequence" in note for note in p.notes)


def test_speech_encoder_decoder_gets_mel_features_and_decoder_ids(tmp_path):
    spec = write(tmp_path, model_type="whisper", d_model=E, encoder_layers=1, decoder_layers=1,
                 encoder_attention_heads=H, decoder_attention_heads=H, encoder_ffn_dim=F, decoder_ffn_dim=F,
                 vocab_size=V, num_mel_bins=16, max_source_positions=1500, pad_token_id=0, bos_token_id=1,
                 eos_token_id=2, decoder_start_token_id=1)  # fmt: skip
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    assert shapes["input_features"] == (1, 16, 3000)  # 30 s windows of 10 ms frames, at the config's mel bins
    assert shapes["decoder_input_ids"] == (1, T)


def test_raw_audio_model_gets_input_values(tmp_path):
    spec = write(tmp_path, model_type="wav2vec2", hidden_size=E, intermediate_size=F, num_hidden_layers=1,
                 num_attention_heads=H, vocab_size=V)  # fmt: skip
    p = profile_spec(spec, device="meta")
    assert {s.name: s.shape for s in p.inputs}["input_values"] == (1, 16000)  # one second at 16 kHz
    assert p.macs > 0


def test_audio_language_model_gets_features_their_mask_and_audio_tokens(tmp_path):
    audio = dict(model_type="audioflamingo3_encoder", hidden_size=E, intermediate_size=F, num_hidden_layers=1,
                 num_attention_heads=H, num_mel_bins=16)  # fmt: skip
    text = dict(model_type="qwen2", hidden_size=E, intermediate_size=F, num_hidden_layers=1, num_attention_heads=H,
                num_key_value_heads=KV, vocab_size=V)  # fmt: skip
    spec = write(tmp_path, model_type="audioflamingo3", audio_config=audio, text_config=text, audio_token_id=V - 1)
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    assert shapes["input_features"] == (1, 16, 3000) and shapes["input_features_mask"] == (1, 3000)
    # 1 s of audio = 100 real frames of the 30 s window; the encoder's stride-2 convolution and 2x pooling leave 25
    assert shapes["input_ids"] == (1, 25 + T)
    assert any("25 audio tokens per sequence" in note for note in p.notes)


def test_unset_image_token_is_the_last_id_and_the_query_tokens_are_placed(tmp_path):
    vision = dict(hidden_size=E, intermediate_size=F, num_hidden_layers=1, num_attention_heads=H, image_size=32,
                  patch_size=8)  # fmt: skip
    qformer = dict(hidden_size=E, intermediate_size=F, num_hidden_layers=1, num_attention_heads=H,
                   encoder_hidden_size=E)  # fmt: skip
    text = dict(model_type="opt", hidden_size=E, ffn_dim=F, num_hidden_layers=1, num_attention_heads=H, vocab_size=V,
                word_embed_proj_dim=E)  # fmt: skip
    spec = write(tmp_path, model_type="blip-2", vision_config=vision, qformer_config=qformer, text_config=text,
                 num_query_tokens=4)  # fmt: skip
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    # no image_token_index in the config: the processor's added token, V - 1; one per query token (4) before the text
    assert {s.name: s.shape for s in p.inputs}["input_ids"] == (1, 4 + T)
    assert any(f"image_token_index unset: taken as vocab_size - 1 = {V - 1}" in note for note in p.notes)


def test_looped_experts_count_the_same_on_meta_as_on_cpu(tmp_path):
    # JetMoE loops over the experts its router picks (torch.where on the top-k choices): on meta the choices are
    # spread evenly, and the experts' work is the same for any choice
    config = dict(hidden_size=E, intermediate_size=F, num_hidden_layers=1, num_attention_heads=H,
                  num_key_value_heads=KV, kv_channels=HD, num_local_experts=4, num_experts_per_tok=2,
                  vocab_size=V)  # fmt: skip
    spec = write(tmp_path, model_type="jetmoe", **config)
    assert counts(spec, "meta") == counts(spec, "cpu")


def test_backbone_only_types_build_their_backbone(tmp_path):
    config = dict(embedding_size=8, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], out_features=["stage4"])
    spec = write(tmp_path, model_type="rt_detr_resnet", **config)  # no AutoModel maps it: AutoBackbone does
    assert counts(spec, "meta") == counts(spec, "cpu")


def test_audio_decoder_takes_one_row_of_ids_per_codebook(tmp_path):
    decoder = dict(hidden_size=E, ffn_dim=F, num_hidden_layers=1, num_attention_heads=H, vocab_size=V, num_codebooks=4)
    text = dict(model_type="t5", d_model=E, d_ff=F, num_layers=1, num_heads=H, d_kv=HD, vocab_size=V)
    audio = dict(model_type="encodec")
    spec = write(tmp_path, model_type="musicgen", text_encoder=text, audio_encoder=audio, decoder=decoder)
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    assert {s.name: s.shape for s in p.inputs}["decoder_input_ids"] == (4, T)  # batch 1 x 4 codebooks


def test_state_space_stack_without_attention_layers_runs_without_a_cache(tmp_path):
    # Bamba's mamba heads x head dim must equal its expand (2) x hidden: 8 x 16 = 2 x 64 = 128
    config = dict(hidden_size=E, intermediate_size=F, num_hidden_layers=2, num_attention_heads=H,
                  num_key_value_heads=KV, vocab_size=V, mamba_n_heads=8, mamba_d_head=16, mamba_d_state=8,
                  mamba_n_groups=1, attn_layer_indices=[])  # fmt: skip
    spec = write(tmp_path, model_type="bamba", **config)
    p = profile_spec(spec, InputOptions(seq_len=T), device="meta")
    assert any("use_cache=False" in note for note in p.notes)
    assert (p.macs, p.flops) == counts(spec, "cpu")[:2]
