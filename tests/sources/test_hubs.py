"""torchvision (detection, segmentation, video), timm and transformers sources: random weights, no download."""

import json
import sys

import pytest
import torch

import torchcost
from tests.test_models import gpt2_analytic_macs
from torchcost.inputs import InputOptions, example_inputs
from torchcost.sources import MissingPackageError, UnknownModelError, load_model


def profile_loaded(loaded, options=None, device="meta"):
    args, kwargs = example_inputs(loaded, options or InputOptions())  # on the CPU: profile() moves them
    return torchcost.profile(loaded.model, *args, device=device, **kwargs)


def test_torchvision_detection_takes_a_list_of_images_at_its_transform_size():
    pytest.importorskip("torchvision")
    loaded = load_model("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", "cpu")
    assert loaded.input_kind == "images" and loaded.input_sizes == [(3, 320, 320)]
    (images,), _ = example_inputs(loaded, InputOptions(batch=2))
    assert [tuple(i.shape) for i in images] == [(3, 320, 320)] * 2
    p = profile_loaded(loaded, device="cpu")  # detection post-processing needs real values
    assert p.inputs[0].shape == (3, 320, 320) and p.macs > 0 and not p.uncounted


def test_torchvision_detection_counts_are_repeatable():
    # random weights decide how many boxes survive; every stage is set to keep its maximum instead
    pytest.importorskip("torchvision")
    counts = set()
    for seed in (0, 1):
        torch.manual_seed(seed)
        p = torchcost.profile_spec("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn")
        counts.add((p.macs, p.flops, p.memory_access.total))
    assert len(counts) == 1
    assert p.notes == [
        "detection post-processing keeps 150 proposals and 100 detections per image; a real image's count "
        "depends on how many boxes it yields"
    ]


@pytest.mark.parametrize(
    ("name", "size"),
    [("deeplabv3_mobilenet_v3_large", (1, 3, 520, 520)), ("r3d_18", (1, 3, 16, 112, 112))],
)
def test_torchvision_segmentation_and_video_defaults(name, size):
    pytest.importorskip("torchvision")
    loaded = load_model(f"torchvision:{name}", "meta")  # would download a backbone if weights_backbone were left
    assert loaded.input_sizes == [size]


def test_timm_model_at_its_pretrained_config_size():
    timm = pytest.importorskip("timm")
    loaded = load_model("timm:resnet18.a1_in1k", "meta")
    assert loaded.input_sizes == [(1, *timm.create_model("resnet18").pretrained_cfg["input_size"])]
    assert torchcost.count_params(loaded.model).total == 11_689_512  # the same architecture as torchvision's


def test_timm_unknown_name_lists_closest():
    pytest.importorskip("timm")
    with pytest.raises(UnknownModelError, match=r"closest names: .*resnet50"):
        load_model("timm:resnet5O")


@pytest.mark.parametrize(("spec", "package"), [("timm:resnet18", "timm"), ("hf:gpt2", "transformers")])
def test_missing_package_is_a_one_line_install_hint(monkeypatch, spec, package):
    monkeypatch.setitem(sys.modules, package, None)  # importing it now raises ImportError
    with pytest.raises(MissingPackageError) as info:
        load_model(spec)
    assert str(info.value) == (
        f"this model source needs {package}, which is not installed: pip install 'torchcost[{package}]'"
    )


def test_hf_gpt2_from_its_default_config_with_128_tokens():
    pytest.importorskip("transformers")
    loaded = load_model("hf:gpt2", "meta")
    assert type(loaded.model).__name__ == "GPT2LMHeadModel" and loaded.keyword_inputs.main == "input_ids"
    p = profile_loaded(loaded)
    assert [(s.name, s.shape, s.dtype) for s in p.inputs] == [
        ("input_ids", (1, 128), "int64"),
        ("attention_mask", (1, 128), "int64"),
    ]
    assert p.params.total == 124_439_808
    assert p.macs == gpt2_analytic_macs(12, 768, 50257, 128)


def write_config(tmp_path, **values):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    return path


SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def test_hf_config_file_encoder_gets_masked_lm_head_and_token_inputs(tmp_path):
    pytest.importorskip("transformers")
    path = write_config(tmp_path, model_type="bert", vocab_size=100, **SMALL)
    loaded = load_model(f"hf:{path}", "cpu")
    assert type(loaded.model).__name__ == "BertForMaskedLM" and loaded.model.config.num_hidden_layers == 2
    _, kwargs = example_inputs(loaded, InputOptions(batch=2, seq_len=16))
    assert set(kwargs) == {"input_ids", "attention_mask"}
    assert kwargs["input_ids"].shape == (2, 16) and int(kwargs["input_ids"].max()) < 100
    assert torch.equal(kwargs["attention_mask"], torch.ones(2, 16, dtype=torch.long))
    assert profile_loaded(loaded, InputOptions(seq_len=16), device="cpu").uncounted == []


def test_hf_config_file_names_its_architecture(tmp_path):
    pytest.importorskip("transformers")
    path = write_config(tmp_path, model_type="bert", architectures=["BertForSequenceClassification"], **SMALL)
    assert type(load_model(f"hf:{path}", "meta").model).__name__ == "BertForSequenceClassification"


def test_hf_encoder_decoder_gets_decoder_inputs(tmp_path):
    pytest.importorskip("transformers")
    config = {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_heads": 2, "d_kv": 16, "vocab_size": 50}
    loaded = load_model(f"hf:{write_config(tmp_path, model_type='t5', **config)}", "meta")
    p = profile_loaded(loaded, InputOptions(seq_len=8))
    assert {spec.name: spec.shape for spec in p.inputs} == {
        "input_ids": (1, 8),
        "attention_mask": (1, 8),
        "decoder_input_ids": (1, 8),
    }


def test_hf_vision_config_gets_pixel_values(tmp_path):
    pytest.importorskip("transformers")
    path = write_config(tmp_path, model_type="vit", image_size=32, patch_size=8, num_channels=3, **SMALL)
    loaded = load_model(f"hf:{path}", "meta")
    _, kwargs = example_inputs(loaded, InputOptions())
    assert kwargs["pixel_values"].shape == (1, 3, 32, 32)  # the config's size (ViT's processor would make 224)
    assert profile_loaded(loaded).macs > 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hf:gpt3", "unknown transformers model type or preset 'gpt3'; closest: .*gpt2"),
        ("hf:missing/config.json", "no config file at missing/config.json"),
    ],
)
def test_hf_errors(spec, message):
    pytest.importorskip("transformers")
    with pytest.raises((UnknownModelError, ValueError), match=message):
        load_model(spec)


def test_hf_config_without_model_type(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ValueError, match='has no "model_type" key'):
        load_model(f"hf:{write_config(tmp_path, hidden_size=8)}")


def test_unreadable_spec_lists_the_forms():
    with pytest.raises(UnknownModelError, match=r"write torchvision:NAME, timm:NAME, hf:MODEL_TYPE"):
        load_model("resnet50")
