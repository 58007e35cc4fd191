"""Vision-language default inputs and default-config repairs, in small configs: a Qwen-like tower gets patches at
its own patch size and as many image tokens as its merged patches; a vision output width unlike the text model's and
multimodal rotary sections unlike the head dim's frequencies are set consistently and said in the notes. Default
configs on meta: MiniCPM-o's patch strips, RF-DETR's windows, IDEFICS's image stacks and TVP's clips."""

import json

import pytest

from torchcost import profile_spec
from torchcost.inputs import InputOptions

pytest.importorskip("transformers")

T, V = 8, 512  # text tokens, vocabulary
SIDE = 448  # the synthetic image side (hf_inputs.IMAGE_SIDE), which Qwen2-VL's processor keeps
VISION = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2,
              temporal_patch_size=2, num_position_embeddings=64, deepstack_visual_indexes=[0])  # fmt: skip
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
            head_dim=16, vocab_size=V)  # fmt: skip
TOKENS = dict(image_token_id=V - 1, video_token_id=V - 2, vision_start_token_id=V - 3, vision_end_token_id=V - 4)


def spec(tmp_path, **vision):
    path = tmp_path / "config.json"
    config = dict(model_type="qwen3_vl", vision_config=VISION | vision, text_config=TEXT, **TOKENS)
    path.write_text(json.dumps(config))
    return f"hf:{path}"


def test_qwen3_vl_gets_patches_at_its_patch_size_and_one_token_per_merged_patch(tmp_path):
    p = profile_spec(spec(tmp_path, out_hidden_size=32), InputOptions(seq_len=T), device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    patches = (SIDE // 16) ** 2  # 28 x 28 = 784 patches of 16 pixels (Qwen2-VL's processor default is 14)
    assert shapes["pixel_values"] == (patches, 3 * 2 * 16 * 16)  # channels x temporal patch x patch x patch
    assert shapes["image_grid_thw"] == (1, 3)
    assert shapes["input_ids"] == (1, patches // 2**2 + T)  # 196 merged patches (2 x 2) before the text


def test_inconsistent_default_widths_and_rotary_sections_are_repaired_and_said(tmp_path):
    # vision output 48 wide for a 32-wide text model; head dim 16: 8 rotary frequencies where Qwen3-VL's default
    # sections [24, 20, 20] add up to 64: scaled by 8 / 64 to [3, 2.5, 2.5], rounded by largest remainder
    path = spec(tmp_path, out_hidden_size=48)
    meta = profile_spec(path, InputOptions(seq_len=T), device="meta")
    notes = " ".join(meta.notes)
    assert "vision_config.out_hidden_size differs from its text model's width" in notes and "(was 48)" in notes
    assert "taken as [3, 3, 2]" in notes
    cpu = profile_spec(path, InputOptions(seq_len=T), device="cpu")
    assert meta.uncounted == [] and (meta.macs, meta.flops) == (cpu.macs, cpu.flops)


def test_minicpm_tower_gets_the_processors_patch_strip_at_its_own_patch_size_and_target_sizes():
    from transformers import AutoConfig

    patch = AutoConfig.for_model("minicpm_ocr_vision").patch_size  # 16, where the processor's default is 14
    p = profile_spec("hf:minicpm_ocr_vision", device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    # the processor lays the patches of an image side by side: (channels, patch, patches x patch)
    channels, height, width = shapes["pixel_values"][1:]
    assert (channels, height) == (3, patch) and width % patch == 0
    assert shapes["target_sizes"] == (1, 2)  # each image's patch grid, which the embeddings need


def test_windowed_detector_gets_whole_windows_of_patches():
    from transformers import AutoConfig

    from torchcost.sources.hf_inputs_vision import _image_hw

    backbone = AutoConfig.for_model("rf_detr").backbone_config
    assert (backbone.image_size, backbone.patch_size, backbone.num_windows) == (518, 14, 4)
    # 518 / 14 = 37 patches a side do not split into 4 windows: rounded up to 40 patches, 560 pixels
    assert _image_hw(AutoConfig.for_model("rf_detr")) == (560, 560)


def test_image_stack_model_gets_one_image_per_sample_and_the_images_each_token_sees():
    p = profile_spec("hf:idefics", InputOptions(seq_len=T), device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    # IDEFICS unpacks (batch, num_images) from pixel_values and masks which images each token attends to
    assert shapes["pixel_values"][:2] == (1, 1) and len(shapes["pixel_values"]) == 5
    assert shapes["image_attention_mask"] == (1, T, 1)


def test_video_grounding_model_without_an_image_size_gets_its_clip_with_the_text():
    from transformers import AutoConfig

    config = AutoConfig.for_model("tvp")
    p = profile_spec("hf:tvp", InputOptions(seq_len=T), device="meta")
    shapes = {s.name: s.shape for s in p.inputs}
    assert shapes["pixel_values"] == (1, config.num_frames, 3, config.max_img_size, config.max_img_size)
    assert shapes["input_ids"] == (1, T)


def test_towers_that_no_made_input_feeds_are_said_to_be_left_out():
    # Phi-4-multimodal names its inputs image_pixel_values and audio_input_features: torchcost makes neither
    p = profile_spec("hf:phi4_multimodal", InputOptions(seq_len=T), device="meta")
    assert {s.name for s in p.inputs} == {"input_ids", "attention_mask"}
    for tower in ("vision", "audio"):
        assert any(f"no {tower} input was made: the {tower} tower is not counted" in note for note in p.notes)
