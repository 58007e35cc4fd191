"""Checkpoint presets: real Hub configs shipped as data, built offline, counted against the parameter totals
their model cards publish (the independent reference)."""

import json

import pytest

from torchcost.cli import main
from torchcost.params import count_params
from torchcost.sources import load_model
from torchcost.sources.presets import all_presets, names, of_model_type, preset

pytest.importorskip("transformers")

PUBLISHED = [p for p in all_presets().values() if p.published_parameters is not None]


def test_about_forty_checkpoints_of_the_families_users_name():
    shipped = all_presets()
    assert len(shipped) >= 40
    hub_ids = [p.hub_id for p in shipped.values()]
    assert len(set(hub_ids)) == len(hub_ids)
    assert len(set(names())) == len(names())  # no alias shadows a name
    families = (
        "llama-3.1",
        "qwen2.5",
        "qwen3",
        "deepseek-v3",
        "mixtral",
        "gemma-2",
        "gemma-3",
        "phi-3",
        "phi-4",
        "mistral",
        "gpt-oss",
        "whisper",
        "llava",
        "qwen2.5-vl",
        "siglip",
        "clip",
        "sam",
        "bert",
        "t5",
    )
    assert all(any(name.startswith(f) for name in shipped) for f in families)


@pytest.mark.parametrize("shipped", PUBLISHED, ids=lambda p: p.name)
def test_a_preset_counts_the_total_its_model_card_publishes(shipped):
    model = load_model(shipped.name, "meta").model
    total = count_params(model).total
    assert abs(total - shipped.published_parameters) <= 0.005 * shipped.published_parameters, (
        f"{shipped.name}: {total:,} counted, {shipped.published_parameters:,} published ({shipped.published_where})"
    )


@pytest.mark.parametrize("shipped", [p for p in all_presets().values() if p not in PUBLISHED], ids=lambda p: p.name)
def test_every_other_preset_builds_from_its_config(shipped):
    assert count_params(load_model(shipped.name, "meta").model).total > 0


def test_names_aliases_and_hub_ids_find_the_same_preset():
    assert preset("llama-3-405b") is preset("llama-3.1-405b") is preset("META-LLAMA/Llama-3.1-405B")
    assert preset("gpt-neox-1b").hub_id == "EleutherAI/pythia-1b"
    assert preset("llama-9") is None
    assert set(of_model_type("gemma3")) == {"gemma-3-4b", "gemma-3-27b"}


def test_a_default_config_that_cannot_run_points_to_the_real_checkpoints(capsys):
    """gemma3's default config pools its image features with a stride of 0."""
    assert main(["profile", "hf:gemma3", "--brief"]) != 0
    error = capsys.readouterr().err
    assert "try a real checkpoint, gemma-3-27b, gemma-3-4b" in error


def test_list_shows_every_preset(capsys):
    assert main(["list", "--json", "-"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in listed] == list(all_presets())
    llama = next(row for row in listed if row["name"] == "llama-3.1-8b")
    assert llama["hub_id"] == "meta-llama/Llama-3.1-8B"


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["profile", "{spec}", "--brief"], "params 124.44 M"),
        (["memory", "{spec}", "--seq-len", "16"], "497,759,232"),  # 124,439,808 float32 parameters
        (["compare", "{spec}", "torchvision:alexnet"], "124.44 M"),
        (["sweep", "{spec}", "--quiet"], "124.44 M"),
        (["llm", "{spec}", "--prompt-len", "16", "--gen-len", "2", "--no-sweep"], "prefill (16 tokens)"),
    ],
    ids=lambda c: c[0] if isinstance(c, list) else "",
)
@pytest.mark.parametrize("spec", ["gpt2", "hf:openai-community/gpt2"])
def test_every_command_takes_a_preset_and_its_hub_id_offline(command, shown, spec, monkeypatch, capsys):
    monkeypatch.setattr(pytest.importorskip("huggingface_hub.constants"), "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("COLUMNS", "200")
    assert main([part.format(spec=spec) for part in command]) == 0
    assert shown in capsys.readouterr().out
