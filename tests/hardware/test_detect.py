from torchcost.hardware import hardware
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
