"""Example inputs from the input options: sizes, dtype, batch, sequence length, keyword inputs."""

import pytest
import torch
from torch import nn

import torchcost
from torchcost.inputs import InputError, InputOptions, example_inputs, parse_kwargs_json
from torchcost.sources import LoadedModel


def tensors_model(sizes=((1, 3, 32, 32),), dtypes=None):
    return LoadedModel("test:tensors", nn.Identity(), list(sizes), input_dtypes=dtypes)


class Keywords:
    """A source's keyword-input maker that records what it was asked for."""

    note = ""

    def __init__(self, main="input_ids"):
        self.main, self.asked = main, []

    def __call__(self, batch, seq_len, generator):
        self.asked.append((batch, seq_len))
        shape = (batch, seq_len or 128)
        made = {"input_ids": torch.zeros(shape, dtype=torch.long), "attention_mask": torch.ones(shape)}
        return made if self.main == "input_ids" else {"pixel_values": torch.zeros(batch, 3, 8, 8), **made}


def token_model(main="input_ids"):
    return LoadedModel("test:tokens", nn.Identity(), None, input_kind="keywords", keyword_inputs=Keywords(main))


def image_model():
    return LoadedModel("test:detector", nn.Identity(), [(3, 40, 30)], input_kind="images")


def shapes(tensors):
    return [tuple(t.shape) for t in tensors]


def test_source_default_size_and_float32():
    args, kwargs = example_inputs(tensors_model(), InputOptions())
    assert shapes(args) == [(1, 3, 32, 32)] and args[0].dtype == torch.float32 and kwargs == {}


def test_input_sizes_replace_the_default_and_batch_replaces_the_first_dimension():
    args, _ = example_inputs(tensors_model(), InputOptions(sizes=[(2, 3, 8, 8), (2, 5)], batch=4))
    assert shapes(args) == [(4, 3, 8, 8), (4, 5)]


def test_input_dtype_makes_valid_indices():
    args, _ = example_inputs(tensors_model([(2, 6)]), InputOptions(dtype="int64"))
    assert args[0].dtype == torch.int64 and int(args[0].max()) == 0


def test_source_dtypes_are_kept_unless_sizes_are_given():
    loaded = tensors_model([(2, 6)], dtypes=[torch.int32])
    assert example_inputs(loaded, InputOptions())[0][0].dtype == torch.int32
    assert example_inputs(loaded, InputOptions(sizes=[(1, 6)]))[0][0].dtype == torch.float32


def test_missing_size_gives_the_source_hint_in_python_and_in_flags():
    loaded = LoadedModel("x.ts", nn.Identity(), None, input_hint="TorchScript files keep no example input")
    with pytest.raises(InputError, match=r"x\.ts has no default input size \(TorchScript files keep no example") as e:
        example_inputs(loaded, InputOptions())
    assert "InputOptions(sizes=[(1, 3, 224, 224)])" in str(e.value) and "--" not in str(e.value)
    assert "--input-size (e.g. 1,3,224,224)" in e.value.cli


def test_input_errors_are_profiling_errors():
    with pytest.raises(torchcost.ProfilingError, match=r"input size \(1, -3\) is not a shape of positive sizes"):
        example_inputs(tensors_model(), InputOptions(sizes=[(1, -3)]))


def test_unknown_dtype():
    with pytest.raises(InputError, match="unknown dtype 'int65'"):
        example_inputs(tensors_model(), InputOptions(dtype="int65"))


@pytest.mark.parametrize(
    ("options", "asked"),
    [
        (InputOptions(), (1, None)),  # the source's defaults
        (InputOptions(seq_len=16, batch=3), (3, 16)),
        (InputOptions(sizes=[(2, 9)]), (2, 9)),  # BATCH,SEQ_LEN
        (InputOptions(sizes=[(2, 9)], batch=5), (5, 9)),
    ],
)
def test_token_options_go_to_the_source(options, asked):
    loaded = token_model()
    example_inputs(loaded, options)
    assert loaded.keyword_inputs.asked == [asked]


def test_input_size_replaces_the_main_input_of_other_models():
    loaded = token_model(main="pixel_values")
    _, kwargs = example_inputs(loaded, InputOptions(sizes=[(2, 3, 16, 16)]))
    assert kwargs["pixel_values"].shape == (2, 3, 16, 16) and "attention_mask" not in kwargs
    assert loaded.keyword_inputs.asked == [(2, None)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (InputOptions(sizes=[(2, 9)], seq_len=4), "not both"),
        (InputOptions(sizes=[(1, 2, 3)]), r"one size \(BATCH, SEQ_LEN\)"),
        (InputOptions(sizes=[(1, 2), (1, 2)]), "give one size"),
    ],
)
def test_token_option_conflicts(options, message):
    with pytest.raises(InputError, match=message):
        example_inputs(token_model(), options)


def test_seq_len_only_for_token_models():
    with pytest.raises(InputError, match="seq_len applies to token models") as e:
        example_inputs(tensors_model(), InputOptions(seq_len=8))
    assert "--seq-len applies to token models" in e.value.cli


@pytest.mark.parametrize(
    ("options", "images"),
    [
        (InputOptions(), [(3, 40, 30)]),
        (InputOptions(batch=3), [(3, 40, 30)] * 3),
        (InputOptions(sizes=[(2, 3, 10, 12), (3, 5, 5)]), [(3, 10, 12), (3, 10, 12), (3, 5, 5)]),
    ],
)
def test_detection_images(options, images):
    (made,), _ = example_inputs(image_model(), options)
    assert shapes(made) == images


def test_detection_rejects_flat_sizes():
    with pytest.raises(InputError, match=r"not \(3, H, W\) or \(N, 3, H, W\)"):
        example_inputs(image_model(), InputOptions(sizes=[(3, 40)]))


def test_keyword_inputs_literal_and_tensor_specs():
    kwargs = parse_kwargs_json('{"return_dict": false, "mask": {"shape": [2, 4], "dtype": "bool"}, "scale": 0.5}')
    _, made = example_inputs(tensors_model(), InputOptions(kwargs=kwargs))
    assert made["return_dict"] is False and made["scale"] == 0.5
    assert made["mask"].shape == (2, 4) and made["mask"].dtype == torch.bool


def test_keyword_inputs_from_a_file(tmp_path):
    path = tmp_path / "kwargs.json"
    path.write_text('{"use_cache": false}')
    assert parse_kwargs_json(str(path)) == {"use_cache": False}


@pytest.mark.parametrize(("text", "message"), [("{bad", "not valid JSON"), ("[1, 2]", "must be a JSON object")])
def test_keyword_input_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_kwargs_json(text)


def test_inputs_are_the_same_on_every_run():
    first, _ = example_inputs(tensors_model(), InputOptions())
    again, _ = example_inputs(tensors_model(), InputOptions())
    assert torch.equal(first[0], again[0])


class TwoInputs(nn.Module):
    def forward(self, x, y=None):
        return x if y is None else x + y


class KeywordOnly(nn.Module):
    def forward(self, *, x):
        return x * 2


def test_keyword_inputs_alone_are_enough_without_a_default_size():
    loaded = LoadedModel("m.py:build", KeywordOnly(), None)
    args, kwargs = example_inputs(loaded, InputOptions(kwargs={"x": {"shape": [2, 3]}}))
    assert args == () and set(kwargs) == {"x"} and kwargs["x"].shape == (2, 3)
    assert loaded.model(*args, **kwargs).shape == (2, 3)


def test_keyword_inputs_replace_a_default_size_forward_cannot_take():
    loaded = LoadedModel("m.py:build", KeywordOnly(), [(1, 3)])  # the file's INPUT_SIZE, but forward(*, x)
    args, kwargs = example_inputs(loaded, InputOptions(kwargs={"x": {"shape": [2, 3]}}))
    assert args == () and kwargs["x"].shape == (2, 3)


def test_a_keyword_naming_a_default_input_replaces_it():
    loaded = LoadedModel("m.py:build", TwoInputs(), [(1, 4), (1, 4)])
    args, kwargs = example_inputs(loaded, InputOptions(kwargs={"x": {"shape": [5, 4]}}))
    assert args == () and shapes([kwargs["x"], kwargs["y"]]) == [(5, 4), (1, 4)]  # y keeps its default size
    assert loaded.model(*args, **kwargs).shape == (5, 4)


def test_a_keyword_not_naming_a_positional_input_is_added():
    loaded = LoadedModel("m.py:build", TwoInputs(), [(1, 4)])
    args, kwargs = example_inputs(loaded, InputOptions(kwargs={"y": {"shape": [1, 4]}}))
    assert shapes(args) == [(1, 4)] and set(kwargs) == {"y"}


def test_an_input_given_by_size_and_by_keyword_is_refused():
    loaded = LoadedModel("m.py:build", TwoInputs(), None)
    with pytest.raises(InputError, match="'x' is given twice: by sizes and by the keyword inputs") as e:
        example_inputs(loaded, InputOptions(sizes=[(1, 4)], kwargs={"x": 1.0}))
    assert "by --input-size and" in e.value.cli
