"""The Python API raises ProfilingError for what it cannot profile as given, in Python's words (the command
line says the same in flags)."""

import importlib

import pytest
import torch
from torch import nn

import torchcost
from torchcost import ProfilingError
from torchcost.errors import InputMismatchError


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m: torchcost.profile(m, torch.randn(1, 4), input_size=(1, 4)),
            "example inputs or input_size=, not both",
        ),
        (lambda m: torchcost.profile(m), r"forward takes, e.g. profile\(model, torch.randn\(1, 3, 224, 224\)\)"),
        (lambda m: torchcost.profile(m, input_size=(1, -4)), r"input_size \(1, -4\) is not a shape of positive sizes"),
        (lambda m: torchcost.profile(m, torch.randn(1, 4), device="tpu"), "unknown device 'tpu'"),
        (lambda m: torchcost.profile(m, torch.randn(1, 4), dtype="float13"), "unknown dtype 'float13'"),
        (lambda m: torchcost.profile_spec("nothing_like_a_spec"), "cannot read model spec"),
        (lambda m: torchcost.profile_spec("missing/model.pt2"), "no such file: missing/model.pt2"),
        (lambda m: torchcost.measure(m, torch.randn(1, 4), device="meta"), "cannot be measured on the meta device"),
    ],
)
def test_bad_arguments_raise_profiling_error(call, message):
    with pytest.raises(ProfilingError, match=message) as e:
        call(nn.Linear(4, 2))
    assert "--" not in str(e.value)  # Python's words, not flags
    assert isinstance(e.value, ValueError) and isinstance(e.value, RuntimeError)  # what callers caught before


def test_a_failing_forward_hints_in_python_and_in_flags():
    with pytest.raises(ProfilingError, match=r"; check the input shapes \(the example inputs or input_size=\)") as e:
        torchcost.profile(nn.Linear(4, 2), torch.randn(1, 5))
    assert "(--input-size)" in e.value.cli
    assert "\n" not in str(e.value)  # an input that does not fit is one line
    assert isinstance(e.value, InputMismatchError)


@pytest.mark.parametrize(
    ("module", "new"),
    [
        ("torchcost.peak_memory.estimate", "MemorySettings"),
        ("torchcost.sweep.worker", "WorkerSettings"),
        ("torchcost.guidelines", "GuidelineSettings"),
    ],
)
def test_renamed_settings_still_answer_with_a_warning(module, new):
    imported = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{module}.Settings is now {module}.{new}"):
        assert imported.Settings is getattr(imported, new)
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        imported.Nothing  # noqa: B018


def test_a_helper_that_moved_out_of_its_module_names_its_new_home():
    import torchcost.llm
    from torchcost.tensors import reachable_tensors

    with pytest.warns(
        DeprecationWarning, match="torchcost.llm.cache_tensors is now torchcost.tensors.reachable_tensors"
    ):
        assert torchcost.llm.cache_tensors is reachable_tensors


@pytest.mark.parametrize(
    ("module", "old", "home"),
    [
        ("torchcost.llm", "DTYPES", "torchcost.prepare.FLOATING_DTYPES"),
        ("torchcost.predict.calibrate", "DTYPES", "torchcost.prepare.FLOATING_DTYPES"),
        ("torchcost.predict.kernels", "DTYPE_NAMES", "torchcost.units.SHORT_DTYPE_NAMES"),
        ("torchcost.step", "AUTOCAST_DTYPES", "torchcost.prepare.FLOATING_DTYPES"),
    ],
)
def test_the_dtype_tables_that_moved_still_answer_with_a_warning(module, old, home):
    imported = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{module}.{old} is now {home}"):
        table = getattr(imported, old)
    assert table.get("fp16") == torch.float16 or table.get("float16") == "fp16"  # by short name, or to it


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("torchcost.counting.meta_values", "torchcost.emulate.meta_values"),
        ("torchcost.counting.meta_kernels", "torchcost.emulate.meta_kernels"),
        ("torchcost.counting.autocast", "torchcost.emulate.autocast"),
        ("torchcost.counting.schema", "torchcost.emulate.schema"),
        ("torchcost.latency", "torchcost.measure.latency"),
        ("torchcost.op_timing", "torchcost.measure.op_timing"),
        ("torchcost.timing", "torchcost.measure.timing"),
        ("torchcost.peak_memory.profile", "torchcost.peak_memory.memory_profile"),
        ("torchcost.report.fitted", "torchcost.report.table_width"),
    ],
)
def test_moved_modules_answer_from_their_old_path_with_a_warning(old, new, monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"{old} is now {new}; the old module goes in the next release"):
        moved = importlib.import_module(old)
    assert moved is importlib.import_module(new)


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("torchcost.emulate.meta_values", "MetaFunctions", "torchcost.emulate.on_meta"),
        ("torchcost.emulate.meta_values", "values_while_building", "torchcost.emulate.on_meta"),
        ("torchcost.predict.taxonomy", "MATMUL_OPS", None),
        ("torchcost.sources.hf_inputs", "IMAGE_SIDE", "torchcost.sources.hf_inputs_vision"),
        ("torchcost.llm", "preset_config", "torchcost.llm_models"),
    ],
)
def test_moved_names_answer_from_their_old_module_with_a_warning(old, name, new):
    with pytest.warns(DeprecationWarning, match=f"{old}.{name} is now"):
        value = getattr(importlib.import_module(old), name)
    if new is not None:
        assert value is getattr(importlib.import_module(new), name)
