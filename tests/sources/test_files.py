"""Models from files: a .py factory, a torch.export program, TorchScript, state dicts and pickles."""

import warnings

import pytest
import torch

import torchcost
from torchcost.from_spec import profile_spec
from torchcost.inputs import InputOptions, example_inputs
from torchcost.sources import ModelSourceError, load_model
from torchcost.sources.files import state_dict_in

from .conftest import TINY_MACS, TINY_PARAMS


def profile_loaded(loaded, options=None):
    args, kwargs = example_inputs(loaded, options or InputOptions())
    return torchcost.profile(loaded.model, *args, **kwargs)


@pytest.mark.parametrize("name", ["build", "Tiny"])
def test_python_factory_or_class_with_its_input_size(tiny_py, name):
    loaded = load_model(f"{tiny_py}:{name}", "meta")
    assert loaded.input_sizes == [(1, 3, 8, 8)]  # the file's INPUT_SIZE
    assert next(loaded.model.parameters()).device.type == "meta"
    p = profile_loaded(loaded)
    assert (p.macs, p.params.total) == (TINY_MACS, TINY_PARAMS)
    assert {m.name for m in p.modules} == {"", "conv", "head"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing", "has no class or function 'missing'; it defines: Tiny, build, needs_width, not_a_model"),
        ("needs_width", "name a class or function that takes no arguments"),
        ("not_a_model", "returned a int, not an nn.Module"),
    ],
)
def test_python_factory_errors_say_what_works(tiny_py, name, message):
    with pytest.raises(ModelSourceError, match=message):
        load_model(f"{tiny_py}:{name}")


def test_python_file_without_a_name_asks_for_one(tiny_py):
    with pytest.raises(ModelSourceError, match=r"name the class or function .*tiny.py:build_model"):
        load_model(str(tiny_py))


def tiny(tiny_py):
    return load_model(f"{tiny_py}:build").model


def test_exported_program_keeps_its_input_and_module_tree(tiny_py, tmp_path):
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(tiny(tiny_py), (torch.randn(2, 3, 8, 8),)), path)
    loaded = load_model(str(path))
    assert loaded.input_sizes == [(2, 3, 8, 8)] and loaded.input_dtypes == [torch.float32]
    p = profile_loaded(loaded)
    assert (p.macs, p.params.total) == (2 * TINY_MACS, TINY_PARAMS)  # batch 2
    rows = {m.name: m for m in p.modules}
    assert rows["conv"].macs == 2 * 144 * 27 and rows["head"].macs == 2 * 8  # unflattened: costs per module


def test_exported_program_keeps_integer_inputs(tmp_path):
    embedding = torch.nn.Embedding(10, 4)
    path = tmp_path / "emb.pt2"
    torch.export.save(torch.export.export(embedding, (torch.zeros(3, 5, dtype=torch.long),)), path)
    args, _ = example_inputs(load_model(str(path)), InputOptions())
    assert args[0].dtype == torch.long and args[0].shape == (3, 5)


def test_torchscript_needs_an_input_size_and_counts_the_same(tiny_py, tmp_path):
    path = tmp_path / "tiny.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(tiny(tiny_py)), str(path))
    loaded = load_model(str(path))
    assert loaded.input_sizes is None and "TorchScript files keep no example input" in loaded.input_hint
    p = profile_loaded(loaded, InputOptions(sizes=[(1, 3, 8, 8)]))
    assert (p.macs, p.params.total) == (TINY_MACS, TINY_PARAMS)


def test_state_dict_alone_says_what_is_needed(tiny_py, tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(tiny(tiny_py).state_dict(), path)
    with pytest.raises(ModelSourceError, match=r"state dict \(4 tensors\) and holds no architecture.*weights=") as e:
        load_model(str(path))
    assert f"--weights {path}" in e.value.cli


def test_checkpoint_weights_load_into_a_factory_at_their_dtype(tiny_py, tmp_path):
    path = tmp_path / "checkpoint.pt"
    half = {k: v.half() for k, v in tiny(tiny_py).state_dict().items()}
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}, "state_dict": half}, path)
    loaded = load_model(f"{tiny_py}:build", "cpu", weights=path)
    assert torch.equal(loaded.model.conv.weight, half["conv.weight"])
    assert torchcost.size_bytes(loaded.model) == 2 * TINY_PARAMS  # fp16: 2 bytes per parameter


def test_weights_that_do_not_fit_name_the_keys(tiny_py, tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ModelSourceError, match=r"do not fit .*fc\.weight"):
        load_model(f"{tiny_py}:build", weights=path)


def test_whole_pickled_model_needs_trust(tiny_py, tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(tiny(tiny_py), path)
    with pytest.raises(ModelSourceError, match="pass trust_pickle=True") as e:
        load_model(str(path))
    assert "pass --trust-pickle" in e.value.cli
    loaded = load_model(str(path), trust_pickle=True)
    assert profile_loaded(loaded, InputOptions(sizes=[(1, 3, 8, 8)])).macs == TINY_MACS


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ModelSourceError, match="not a PyTorch file"):
        load_model(str(path))


def test_state_dict_found_under_usual_checkpoint_keys():
    weights = {"w": torch.zeros(1)}
    assert state_dict_in({"model": weights, "step": 1}) == weights
    assert state_dict_in({"step": 1}) is None


def test_a_lazy_module_from_a_file_is_initialised_where_it_was_built(tmp_path):
    """A model built on meta with ``nn.LazyLinear`` learns its weight shape from a meta forward (it failed with
    'Tensor on device meta is not on the expected device cpu')."""
    path = tmp_path / "lazy.py"
    path.write_text(
        "from torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))\n"
    )
    result = profile_spec(f"{path}:build", InputOptions(sizes=[(1, 3, 32, 32)]))
    # conv: 8*3*3*3 + 8 = 224; linear: (8*30*30)*10 + 10 = 72,010
    assert result.params.total == 224 + 72_010
    # conv: 8*30*30 outputs * 27 = 194,400; linear: 7,200 * 10 = 72,000
    assert result.macs == 194_400 + 72_000
