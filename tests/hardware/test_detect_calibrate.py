import pytest

from torchcost.hardware import hardware
from torchcost.hardware.calibrate import cache_path, calibrate, load_calibration
from torchcost.hardware.detect import FP32_FLOP_PER_CYCLE, detect_cpu


def test_detects_this_cpu_with_its_arithmetic():
    cpu = detect_cpu()
    assert cpu.cores >= 1 and cpu.model
    assert cpu.isa in FP32_FLOP_PER_CYCLE
    if cpu.clock_hz:
        assert cpu.peak["fp32"] == cpu.cores * cpu.clock_hz * FP32_FLOP_PER_CYCLE[cpu.isa]
        assert cpu.arithmetic[0].startswith(f"fp32: {cpu.cores} cores")


def test_cpu_hardware_has_peak_but_no_bandwidth_until_calibrated():
    cpu = hardware("cpu")
    assert cpu.kind == "cpu" and cpu.bandwidth is None


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHCOST_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_calibration_is_cached_and_used_by_local(cache_dir):
    assert hardware("local").calibration is None
    result = calibrate("cpu", quick=True, progress=False, force=True)
    assert cache_path("cpu").parent == cache_dir and cache_path("cpu").exists()
    assert result.matmul_flops["fp32"] > 0 and result.bandwidth > 0 and result.op_overhead_s > 0
    assert result.depthwise_conv_flops > 0 and result.conv_flops > 0
    assert load_calibration("cpu") == result
    assert hardware("local").calibration == result


def test_fit_rate_and_overhead_recovers_a_line():
    from torchcost.hardware.calibrate import fit_rate_and_overhead

    # time = 10 us + FLOPs / 1e11: (1e6, 20 us), (1e7, 110 us), (1e8, 1.01 ms)
    rate, overhead = fit_rate_and_overhead([(1e6, 20e-6), (1e7, 110e-6), (1e8, 1.01e-3)])
    assert rate == pytest.approx(1e11) and overhead == pytest.approx(10e-6)
    # a line through the origin gives no overhead
    assert fit_rate_and_overhead([(1e6, 1e-5), (2e6, 2e-5)]) == (pytest.approx(1e11), pytest.approx(0.0, abs=1e-12))
