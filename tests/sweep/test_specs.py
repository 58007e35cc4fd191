import pytest

from torchcost.sweep.rows import SpaceEntry
from torchcost.sweep.specs import SpecError, expand, model_spec, tasks


def test_torchvision_pattern_lists_every_matching_model():
    pytest.importorskip("torchvision")
    # torchvision's five ResNets (resnext and wide_resnet start otherwise)
    assert expand(["torchvision:resnet*"]) == [
        "torchvision:resnet101",
        "torchvision:resnet152",
        "torchvision:resnet18",
        "torchvision:resnet34",
        "torchvision:resnet50",
    ]


def test_timm_pattern_is_timms_own_listing():
    timm = pytest.importorskip("timm")
    assert expand(["timm:convnext*"]) == [f"timm:{name}" for name in timm.list_models("convnext*")]


def test_hf_pattern_matches_model_types():
    pytest.importorskip("transformers")
    found = expand(["hf:llama*"])
    assert "hf:llama" in found and all(spec.startswith("hf:llama") for spec in found)


def test_pattern_matching_nothing_names_the_closest():
    pytest.importorskip("torchvision")
    with pytest.raises(SpecError, match=r"torchvision:resnt\* matches no torchvision model; closest names: .*resnet"):
        expand(["torchvision:resnt*"])


def test_plain_specs_pass_through_and_duplicates_go():
    assert expand(["hf:gpt2", "timm:resnet18", "hf:gpt2"]) == ["hf:gpt2", "timm:resnet18"]


def test_list_file_with_comments_nesting_and_repeats(tmp_path):
    (tmp_path / "more.txt").write_text("timm:resnet18\nhf:bert  # a comment after a spec\n")
    listing = tmp_path / "models.txt"
    listing.write_text(f"# backbones\nhf:gpt2\n\n@{tmp_path / 'more.txt'}\nhf:gpt2\n")
    assert expand([f"@{listing}"]) == ["hf:gpt2", "timm:resnet18", "hf:bert"]


def test_list_file_that_includes_itself(tmp_path):
    listing = tmp_path / "loop.txt"
    listing.write_text(f"@{listing}\n")
    with pytest.raises(SpecError, match="includes itself"):
        expand([f"@{listing}"])


def test_missing_list_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read the spec list"):
        expand([f"@{tmp_path / 'none.txt'}"])


def test_search_space_lists_its_entries_without_building_them(space_file):
    found = expand([f"{space_file}:widths"])
    assert [model_spec(m) for m in found] == [
        f"{space_file}:widths/w4",
        f"{space_file}:widths/w8",
        f"{space_file}:widths/w16",
        f"{space_file}:widths/wrong_channels",
    ]
    assert found[2] == SpaceEntry(f"{space_file}:widths", space_file.resolve(), "widths", 2, "w16")


def test_a_function_that_is_not_a_generator_is_a_model_spec(space_file):
    assert expand([f"{space_file}:not_a_space"]) == [f"{space_file}:not_a_space"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    yield 'a', None, None\n    yield 'a', None, None\n", "yields the name 'a' twice"),
        ("    yield nn.Linear(2, 2)\n", r"item 0 is not \(name, model or builder, example inputs\)"),
        ("    raise KeyError('oops')\n    yield\n", "listing the search space .* failed: KeyError"),
    ],
)
def test_broken_search_spaces(tmp_path, body, message):
    path = tmp_path / "bad.py"
    path.write_text(f"from torch import nn\n\ndef space():\n{body}")
    with pytest.raises(SpecError, match=message):
        expand([f"{path}:space"])


def test_grid_is_the_product_of_its_axes():
    grid = tasks(["a:x", "b:y"], [[(1, 3, 32, 32)], [(1, 3, 64, 64), (1, 10)]], [1, 8], ["float32", "bfloat16"])
    assert len(grid) == 2 * 2 * 2 * 2
    assert len({t.key for t in grid}) == 16
    assert grid[0].key == ("a:x", "1x3x32x32", "1", "float32")
    assert grid[4].input_size == "1x3x64x64 1x10" and grid[4].shapes == [(1, 3, 64, 64), (1, 10)]


def test_grid_defaults_are_the_models_own():
    (only,) = tasks(["a:x"])
    assert only.key == ("a:x", "", "", "") and only.shapes is None and only.batch is None
