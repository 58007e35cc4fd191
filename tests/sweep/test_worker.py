"""One task in this process: the row's numbers, its failures, the memory guard."""

import resource

import pytest
import torch

import torchcost
from torchcost.sweep.rows import Task
from torchcost.sweep.specs import expand, tasks
from torchcost.sweep.worker import WorkerSettings, family, memory_limit, run_task


def test_hub_model_row_matches_the_published_numbers():
    pytest.importorskip("torchvision")
    row = run_task(Task("torchvision:resnet18"), WorkerSettings({"h100": torchcost.hardware("h100")}))
    assert row.error == ""
    assert row.params == 11_689_512  # torchvision's num_params
    assert round(row.macs / 1e9, 3) == 1.814  # and _ops (GMACs)
    assert (row.family, row.inputs, row.device, row.uncounted_calls) == ("resnet", "1x3x224x224 float32", "meta", 0)
    profiled = torchcost.profile_spec("torchvision:resnet18")
    assert (row.flops, row.memory_access_bytes, row.size_bytes) == (
        profiled.flops,
        profiled.memory_access.total,
        profiled.size_bytes,
    )
    assert row.predicted_s == {"h100": torchcost.predict(profiled, torchcost.hardware("h100")).latency_s}
    assert row.seconds > 0 and row.worker_peak_rss_bytes > 0


def test_space_entries_at_grid_points(space_file):
    grid = tasks(expand([f"{space_file}:widths"]), batches=[1, 2], dtypes=["float32", "float16"])
    rows = {(r.spec.rsplit("/", 1)[1], r.batch, r.dtype): r for r in (run_task(t, WorkerSettings()) for t in grid)}
    # conv 3 -> 8, 3x3, on 32x32: 30 * 30 * 8 * 3 * 9 = 194,400 MACs per image
    assert rows[("w8", 1, "float32")].macs == 194_400
    assert rows[("w8", 2, "float32")].macs == 2 * 194_400
    assert rows[("w8", 2, "float32")].inputs == "2x3x32x32 float32"
    assert rows[("w8", 2, "float16")].inputs == "2x3x32x32 float16"
    # params 8 * 3 * 9 + 8 = 224; fp16 weights take 2 bytes each
    assert rows[("w8", 1, "float16")].params == 224 and rows[("w8", 1, "float16")].size_bytes == 448
    assert rows[("w8", 1, "float32")].family == "Sequential"
    wrong = rows[("wrong_channels", 1, "float32")]
    assert wrong.params is None and "expected input[1, 3, 32, 32] to have 4 channels" in wrong.error


def test_input_size_grid_replaces_a_space_entrys_inputs(space_file):
    (task,) = tasks(expand([f"{space_file}:widths"])[:1], input_sizes=[[(1, 3, 10, 10)]])
    row = run_task(task, WorkerSettings())
    assert row.input_size == "1x3x10x10" and row.macs == 8 * 8 * 4 * 3 * 9  # 8x8 outputs, 4 channels


def test_a_failing_model_is_a_row_not_an_exception():
    row = run_task(Task("torchvision:resnet5"), WorkerSettings())
    assert row.error.startswith("UnknownModelError: unknown torchvision model 'resnet5'; closest names:")
    assert row.macs is None and row.seconds is not None


def test_families():
    pytest.importorskip("timm")
    assert family("timm:convnext_tiny") == "convnext"
    assert family("timm:resnet50.a1_in1k") == "resnet"
    assert family("torchvision:fasterrcnn_resnet50_fpn") == "faster_rcnn"
    assert family("hf:gpt2") == "gpt2"
    assert family("timm:no_such_model") == family("model.py:build") == ""


def test_memory_guard_stops_an_allocation_past_the_limit_and_is_lifted_after():
    before = resource.getrlimit(resource.RLIMIT_AS)
    with memory_limit(256 * 2**20), pytest.raises(RuntimeError, match="can't allocate memory"):
        torch.empty(2**27)  # 512 MiB of float32
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    with memory_limit(1024 * 2**20):
        assert torch.empty(2**26).numel() == 2**26  # 256 MiB fits under 1 GiB


def test_memory_guard_failure_names_the_limit(trouble_file):
    big = next(m for m in expand([f"{trouble_file}:trouble"]) if m.name == "allocates_1gib")
    (task,) = tasks([big])
    row = run_task(task, WorkerSettings(max_memory=512 * 2**20))
    assert row.error.startswith("over the memory limit of 0.5 GiB per model (--max-memory): RuntimeError:")
