import pytest
import torch

from tests.predict.test_learned import learned_calibration, power_law
from torchcost.hardware import hardware
from torchcost.hardware.calibration import cache_path, load_calibration, save_calibration
from torchcost.measure import quiet
from torchcost.predict import calibrate as calibration_module
from torchcost.predict.calibrate import CalibrationError, calibrate, fit_rate_and_overhead
from torchcost.predict.learned import FEATURE_COUNT, Observation
from torchcost.predict.predict import learned_model


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHCOST_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_calibration_with_learned_models_persists(cache_dir):
    calibration = learned_calibration(power_law(30, seed=3))
    save_calibration(calibration)
    loaded = load_calibration("cpu")
    assert loaded == calibration
    row = [20.0] + [10.0] * (FEATURE_COUNT - 1)
    assert learned_model(loaded).seconds("matmul", row) == learned_model(calibration).seconds("matmul", row)


def test_each_calibration_extends_the_samples_of_the_last_and_resamples_the_worst_class(cache_dir, monkeypatch):
    monkeypatch.setattr(calibration_module, "last_level_cache_bytes", lambda: 1 << 20)
    save_calibration(learned_calibration(power_law(30, seed=4)))
    # 1 or 10 us
    noisy = [Observation("pointwise", (float(i),) * FEATURE_COUNT, 1e-6 * (1 + 9 * (i % 2))) for i in range(10)]
    calls = []

    def observe(seconds, effort, cache_bytes, seed, advance, classes=None, per_class=None):
        calls.append((seed, classes, per_class))
        return noisy if classes is None else power_law(per_class, seed, "pointwise")

    monkeypatch.setattr(calibration_module, "observe", observe)
    monkeypatch.setattr(calibration_module, "module_call_seconds", lambda seconds, min_time: 2e-6)
    result = learned_calibration([])
    advanced = []
    calibration_module._learn(result, "quick", 0.01, lambda: advanced.append(1))
    half = calibration_module.SAMPLES_PER_CLASS["quick"] // 2
    # new configurations (the seed moves on by the samples kept); then more of the class missed by far the most
    assert calls == [(30, None, None), (31, ["pointwise"], half)]
    assert len(result.observations) == 30 + 10 + half and result.module_call_s == 2e-6
    assert len(advanced) == 2 * half  # the re-sampling budget of the two classes that needed none
    assert "more of pointwise" in result.details["learned"]


def test_a_busy_machine_is_refused_and_nothing_is_saved(cache_dir, monkeypatch):
    monkeypatch.setattr(calibration_module, "busy_cores", lambda seconds=0: 1.7)
    monkeypatch.setattr(calibration_module, "WAIT_FOR_QUIET_S", 0)
    monkeypatch.setattr(calibration_module.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(calibration_module.torch, "get_num_threads", lambda: 2)
    with pytest.raises(CalibrationError, match=r"busy \(other work uses 1.7 cores now.*--force"):
        calibration_module.calibrate("cpu", quick=True, progress=False)
    assert load_calibration("cpu") is None


@pytest.mark.parametrize(
    ("drift", "error", "message"),
    [
        (0.5, 0.05, "probe moved [+]50%"),
        (0.0, 0.30, "miss their held-out samples by 30%"),
        (-0.1, 0.1, None),
        (0.0, 0.21, None),  # what the learned models reach on a quiet 2-core VM: kept
    ],
)
def test_unsound_calibrations_are_not_kept(drift, error, message):
    result = learned_calibration([])
    result.check = {"median_abs_error": error, "samples": 40}
    if message is None:
        calibration_module._refuse_if_unsound(result, drift)
    else:
        with pytest.raises(CalibrationError, match=message):
            calibration_module._refuse_if_unsound(result, drift)


def test_busy_threshold_counts_the_cores_the_calibration_leaves_free(monkeypatch):
    monkeypatch.setattr(calibration_module.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(calibration_module.torch, "get_num_threads", lambda: 2)
    assert calibration_module.spare_cores() == 6.3  # 8 - 2 cores free, plus 0.3 of background


def test_busy_cores_are_read_from_cpu_time_now(monkeypatch):
    # /proc/stat's first line: user nice system idle iowait irq softirq steal, in jiffies, over all CPUs
    lines = iter(["cpu  100 0 50 800 50 0 0 0", "cpu  160 0 70 880 50 0 0 10"])
    monkeypatch.setattr(quiet.Path, "read_text", lambda self: next(lines))
    monkeypatch.setattr(quiet.Path, "exists", lambda self: True)
    monkeypatch.setattr(quiet.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(quiet.os, "cpu_count", lambda: 2)
    # busy: (160 + 70 + 10) - (100 + 50) = 90 of (1170 - 1000) = 170 jiffies; on 2 cores 2 x 90 / 170 = 1.0588...
    assert quiet.busy_cores(0.0) == pytest.approx(2 * 90 / 170)


def test_calibration_is_cached_and_used_by_local(cache_dir):
    assert hardware("local").calibration is None
    result = calibrate("cpu", quick=True, progress=False, force=True)
    assert cache_path("cpu").parent == cache_dir and cache_path("cpu").exists()
    assert result.matmul_flops["fp32"] > 0 and result.bandwidth > 0 and result.op_overhead_s > 0
    assert result.depthwise_conv_flops > 0 and result.conv_flops > 0
    assert load_calibration("cpu") == result
    assert hardware("local").calibration == result


def test_fit_rate_and_overhead_recovers_a_line():
    # time = 10 us + FLOPs / 1e11: (1e6, 20 us), (1e7, 110 us), (1e8, 1.01 ms)
    rate, overhead = fit_rate_and_overhead([(1e6, 20e-6), (1e7, 110e-6), (1e8, 1.01e-3)])
    assert rate == pytest.approx(1e11) and overhead == pytest.approx(10e-6)
    # a line through the origin gives no overhead
    assert fit_rate_and_overhead([(1e6, 1e-5), (2e6, 2e-5)]) == (pytest.approx(1e11), pytest.approx(0.0, abs=1e-12))


def test_host_probes_run_on_any_device_and_the_host_costs_land_in_the_record():
    # on the CPU the probes' kernels are real but tiny: the host costs are what a GPU calibration keeps
    result = learned_calibration([])
    ticks = []
    calibration_module._host_costs(result, torch.device("cpu"), 0.002, lambda: ticks.append(1))
    assert set(result.host_s) >= {"view", "kernel", "norm", "conv", "matmul", "extra_kernel", "foreach"}
    assert all(seconds >= 0 for seconds in result.host_s.values()) and result.module_call_s > 0
    assert "graph_replay" not in result.host_s and result.kernel_floor_s == 0.0  # no CUDA graph on a CPU
    assert len(ticks) == len(calibration_module.HOST_PROBES) + 2


def test_samples_of_an_older_feature_set_are_not_used():
    older = learned_calibration([Observation("matmul", (1.0,) * (FEATURE_COUNT - 1), 1e-6)] * 30)
    assert learned_model(older) is None  # a calibration of an earlier version: calibrate again
