"""One sweep through the local pool and the same through a local Ray: the same rows, every failure a row,
dead and hung workers replaced."""

import dataclasses

import pytest

from torchcost.sweep import sweep
from torchcost.sweep.output import read_rows
from torchcost.sweep.rows import TIMING_COLUMNS, Row

from .conftest import SPACE_PY, TROUBLE_PY

torchvision = pytest.importorskip("torchvision")

SMALL = ["squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5", "mnasnet0_5", "resnet18", "regnet_x_400mf"]
TIMEOUT_S = 10
OPTIONS = {"hardware": ["h100"], "timeout": TIMEOUT_S, "max_memory": 512 * 2**20}


@pytest.fixture(scope="module")
def spaces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spaces")
    (folder / "space.py").write_text(SPACE_PY)
    (folder / "trouble.py").write_text(TROUBLE_PY)
    return folder


@pytest.fixture(scope="module")
def specs(spaces):
    return [f"torchvision:{name}" for name in SMALL] + [
        f"{spaces / 'space.py'}:widths",
        f"{spaces / 'trouble.py'}:trouble",
    ]


@pytest.fixture(scope="module")
def pool_result(specs, tmp_path_factory):
    out = tmp_path_factory.mktemp("pool") / "rows.csv"
    return sweep(specs, out, workers=2, **OPTIONS), out


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def by_entry(rows: list[Row], space: str) -> dict[str, Row]:
    return {row.spec.rsplit("/", 1)[1]: row for row in rows if f"{space}:" in row.spec}


def test_pool_sweep_counts_every_model_and_names_the_failure(pool_result, spaces):
    result, out = pool_result
    assert (result.done, result.failed, result.skipped) == (14, 4, 0)
    by_spec = {row.spec: row for row in result.rows}
    for name in SMALL:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        row = by_spec[f"torchvision:{name}"]
        assert row.params == weights.meta["num_params"]
        assert round(row.macs / 1e9, 3) == weights.meta["_ops"]  # torchvision's GFLOPS are GMACs
        assert row.predicted_s["h100"] > 0 and row.error == ""
    widths = by_entry(result.rows, "space.py")
    assert widths["w16"].macs == 30 * 30 * 16 * 3 * 9
    assert "to have 4 channels" in widths["wrong_channels"].error
    assert sorted(read_rows(out)[0], key=lambda r: r.spec) == sorted(result.rows, key=lambda r: r.spec)


def test_crashes_and_hangs_cost_only_their_own_rows(pool_result):
    rows = by_entry(pool_result[0].rows, "trouble.py")
    assert (
        rows["segfaults"].error == "the worker process died (signal SIGSEGV) while running this model; it was replaced"
    )
    assert rows["hangs"].error == f"timed out after {TIMEOUT_S} s (--timeout); its worker was killed"
    assert rows["hangs"].seconds >= TIMEOUT_S
    assert rows["allocates_1gib"].error.startswith("over the memory limit of 0.5 GiB per model (--max-memory)")
    assert rows["fine"].error == "" and rows["fine"].params == 4 * 2 + 2  # Linear(4, 2): weights and bias
    # the worker that died and the one killed are named, and the last model ran on a third: they were replaced
    assert len({rows["segfaults"].worker, rows["hangs"].worker, rows["fine"].worker}) == 3


def test_ray_gives_the_same_rows_as_the_pool(pool_result, specs, local_ray, tmp_path):
    result = sweep(specs, tmp_path / "rows.jsonl", ray=True, **OPTIONS)
    assert local_ray.is_initialized()  # a Ray the caller started is left running
    assert (result.done, result.failed) == (14, 4)
    rows = by_entry(result.rows, "trouble.py")
    assert rows["segfaults"].error == (
        "the Ray worker died while running this model (ActorDiedError: The actor died unexpectedly before "
        "finishing this task); it was replaced"
    )
    assert rows["hangs"].error == f"timed out after {TIMEOUT_S} s (--timeout); its Ray worker was killed"

    def same(rows: list[Row]) -> list[dict]:
        kept = [r for r in rows if r.spec.rsplit("/", 1)[-1] not in ("segfaults", "hangs")]
        return sorted(
            ({k: v for k, v in dataclasses.asdict(r).items() if k not in TIMING_COLUMNS} for r in kept), key=str
        )

    assert same(result.rows) == same(pool_result[0].rows)
