"""Sweeps through the local pool and through a local Ray: the same rows, failures as rows, workers replaced."""

import dataclasses

import pytest

from torchcost.sweep import sweep
from torchcost.sweep.output import read_rows
from torchcost.sweep.rows import TIMING_COLUMNS, Row

from .conftest import SPACE_PY, TROUBLE_PY

torchvision = pytest.importorskip("torchvision")

SMALL = ["squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5", "mnasnet0_5", "resnet18", "regnet_x_400mf"]


def specs(space_file):
    return [f"torchvision:{name}" for name in SMALL] + [f"{space_file}:widths"]


def without_timing(row: Row) -> dict:
    return {k: v for k, v in dataclasses.asdict(row).items() if k not in TIMING_COLUMNS}


@pytest.fixture(scope="module")
def space(tmp_path_factory):

    path = tmp_path_factory.mktemp("space") / "space.py"
    path.write_text(SPACE_PY)
    return path


@pytest.fixture(scope="module")
def pool_result(space, tmp_path_factory):
    out = tmp_path_factory.mktemp("pool") / "rows.csv"
    return sweep(specs(space), out, workers=2, hardware=["h100"]), out


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_pool_sweep_counts_every_model_and_names_the_failure(pool_result, space):
    result, out = pool_result
    assert (result.done, result.failed, result.skipped) == (10, 1, 0)
    by_spec = {row.spec: row for row in result.rows}
    for name in SMALL:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        row = by_spec[f"torchvision:{name}"]
        assert row.params == weights.meta["num_params"]
        assert round(row.macs / 1e9, 3) == weights.meta["_ops"]  # torchvision's GFLOPS are GMACs
        assert row.predicted_s["h100"] > 0 and row.error == ""
    assert by_spec[f"{space}:widths/w16"].macs == 30 * 30 * 16 * 3 * 9
    assert "to have 4 channels" in by_spec[f"{space}:widths/wrong_channels"].error
    assert sorted(read_rows(out)[0], key=lambda r: r.spec) == sorted(result.rows, key=lambda r: r.spec)
    assert len({row.worker for row in result.rows}) == 2


def test_ray_gives_the_same_rows_as_the_pool_and_replaces_dead_workers(pool_result, space, local_ray, tmp_path):
    trouble = tmp_path / "trouble.py"
    trouble.write_text(TROUBLE_PY)
    result = sweep(
        [*specs(space), f"{trouble}:trouble"],
        tmp_path / "rows.jsonl",
        ray=True,
        hardware=["h100"],
        timeout=8,
        max_memory=512 * 2**20,
    )
    assert local_ray.is_initialized()  # a Ray the caller started is left running
    assert (result.done, result.failed) == (14, 4)
    rows = {row.spec.rsplit("/", 1)[1]: row for row in result.rows if row.spec.startswith(str(trouble))}
    assert rows["segfaults"].error == (
        "the Ray worker died while running this model (ActorDiedError: The actor died unexpectedly before "
        "finishing this task); it was replaced"
    )
    assert rows["hangs"].error == "timed out after 8 s (--timeout); its Ray worker was killed"
    assert rows["allocates_1gib"].error.startswith("over the memory limit of 0.5 GiB per model")
    assert rows["fine"].params == 4 * 2 + 2
    same = [without_timing(row) for row in result.rows if not row.spec.startswith(str(trouble))]
    pool_rows = sorted(map(without_timing, pool_result[0].rows), key=lambda r: r["spec"])
    assert sorted(same, key=lambda r: r["spec"]) == pool_rows


def test_crashes_and_hangs_cost_only_their_own_rows(trouble_file):
    result = sweep([f"{trouble_file}:trouble"], workers=2, timeout=5, max_memory=512 * 2**20)
    rows = {row.spec.rsplit("/", 1)[1]: row for row in result.rows}
    assert rows["segfaults"].error == (
        "the worker process died (signal SIGSEGV) while running this model; it was replaced"
    )
    assert rows["hangs"].error == "timed out after 5 s (--timeout); its worker was killed"
    assert rows["hangs"].seconds >= 5
    assert rows["allocates_1gib"].error.startswith("over the memory limit of 0.5 GiB per model")
    assert rows["fine"].error == "" and rows["fine"].params == 4 * 2 + 2  # Linear(4, 2): weights and bias
    assert (result.done, result.failed) == (4, 3)
