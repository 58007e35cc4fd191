import statistics

import pytest
import torch
from torch import nn

from torchcost.measure.latency import UNSTABLE_CV, measure, summarize


def test_summary_statistics():
    s = summarize([0.005, 0.001, 0.003, 0.002, 0.004], runs_per_block=10, batch=8)
    assert s.median_s == pytest.approx(0.003)
    assert s.mean_s == pytest.approx(0.003)
    # inclusive quartiles of 1..5 ms: 2 and 4 ms
    assert s.iqr_s == pytest.approx(0.002)
    # inclusive 90th percentile: 1 + 0.9 x 4 = 4.6 ms; 99th: 1 + 0.99 x 4 = 4.96 ms
    assert s.p90_s == pytest.approx(0.0046)
    assert s.p99_s == pytest.approx(0.00496)
    assert s.cv == pytest.approx(statistics.stdev([1, 2, 3, 4, 5]) / 3)  # 0.527
    assert s.runs == 50
    assert s.samples_per_s == pytest.approx(8 / 0.003)
    assert s.unstable


def test_single_block_has_no_spread():
    s = summarize([0.01], runs_per_block=100, batch=None)
    assert (s.median_s, s.iqr_s, s.cv, s.runs, s.samples_per_s) == (0.01, 0.0, 0.0, 100, None)
    assert not s.unstable


def small_model() -> nn.Module:
    return nn.Sequential(nn.Linear(32, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 8))


def test_measure_reports_conditions_and_each_batch():
    model = small_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    latency = measure(model, torch.randn(4, 32), batch_sizes=[1, 8], threads=1, min_time=0.05, progress=False)
    assert [b.batch for b in latency.by_batch] == [1, 8]
    assert latency.threads == 1 and latency.device == "cpu" and latency.dtype == "float32"
    assert all(b.runs > 0 and b.median_s > 0 for b in latency.by_batch)
    assert latency.median_s == latency.by_batch[0].median_s
    data = latency.to_dict()
    assert {"median_s", "p90_s", "p99_s", "iqr_s", "cv", "runs", "threads", "device", "by_batch"} <= data.keys()
    # the model is left as it was: still in training mode, BatchNorm statistics untouched
    assert model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_unstable_measurements_warn():
    from torchcost.measure.latency import BatchLatency, Latency

    noisy = BatchLatency(1, 1.0, 1.0, 0.1, 1.2, 1.3, UNSTABLE_CV * 2, 10, 1.0)
    latency = Latency("cpu", "test cpu", 1, "float32", "x", None, by_batch=[noisy])
    assert "spread is high" in latency.warnings()[0]


def test_meta_cannot_be_timed():
    with pytest.raises(ValueError, match="meta"):
        measure(small_model(), torch.randn(2, 32), device="meta", progress=False)


def test_busy_machine_warns():
    from torchcost.measure.latency import BatchLatency, Latency

    quiet = BatchLatency(1, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 10, 1.0)
    busy = Latency("cpu", "test cpu", 2, "float32", "x", None, by_batch=[quiet], load_average=1.9, cpus=2)
    assert "the machine was busy" in busy.warnings()[0]
    idle = Latency("cpu", "test cpu", 2, "float32", "x", None, by_batch=[quiet], load_average=0.1, cpus=2)
    assert idle.warnings() == []
