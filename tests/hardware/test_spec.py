import pytest

from torchcost.hardware import UnknownHardwareError, hardware, known_hardware
from torchcost.hardware.spec import _table, match_gpu

REQUIRED = [
    "h200",
    "h100-sxm",
    "h100-pcie",
    "a100-40gb",
    "a100-80gb",
    "l40s",
    "l4",
    "a10g",
    "t4",
    "v100",
    "rtx-4090",
    "rtx-3090",
    "jetson-agx-orin",
    "jetson-orin-nano",
    "apple-m1",
    "apple-m2",
    "x86-avx2-8c",
]


def test_table_covers_the_devices_users_ask_about():
    assert set(REQUIRED) <= set(known_hardware())


@pytest.mark.parametrize("key", sorted(_table()))
def test_every_entry_has_units_a_source_and_sane_numbers(key):
    entry = _table()[key]
    assert entry["units"]["bandwidth"] == "byte/s" and "FLOP/s" in entry["units"]["peak"]
    assert entry["source"].strip()
    hw = known_hardware()[key]
    assert hw.peak["fp32"] > 1e11  # every device here does more than 100 GFLOP/s in fp32
    assert 1e10 < hw.bandwidth < 1e13  # between 10 GB/s and 10 TB/s
    for dtype, rate in hw.peak.items():
        assert rate >= hw.peak["fp32"] * 0.99 or dtype == "tf32", (dtype, rate)  # lower precision is never slower


def test_aliases_and_ridge_point():
    h100 = hardware("h100")
    assert h100.key == "h100-sxm"
    assert h100.ridge_point("bf16") == pytest.approx(989.4e12 / 3.35e12)  # about 295 FLOP/byte


def test_generic_cpu_entry_is_computed():
    cpu = hardware("x86-avx2-8c")
    assert cpu.peak["fp32"] == 8 * 3.0e9 * 32  # cores x clock x (2 FMA pipes x 8 lanes x 2)


def test_unknown_name_lists_closest():
    with pytest.raises(UnknownHardwareError, match="h100"):
        hardware("h10")


@pytest.mark.parametrize(
    ("device_name", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("Tesla T4", "t4"),
        ("NVIDIA H200", "h200"),
        ("Some Future GPU", None),
    ],
)
def test_cuda_device_names_match_spec_entries(device_name, key):
    assert match_gpu(device_name) == key


# FP32 lanes per SM, from each architecture's whitepaper: Volta GV100, Turing TU104 and Ampere GA100 have 64;
# Ampere GA102, Ada, Hopper GH100 and Blackwell GB202 have 128.
FP32_LANES_PER_SM = {
    "h200": 128,
    "h100-sxm": 128,
    "h100-pcie": 128,
    "a100-40gb": 64,
    "a100-80gb": 64,
    "l40s": 128,
    "l4": 128,
    "a10g": 128,
    "t4": 64,
    "v100": 64,
    "rtx-4090": 128,
    "rtx-5090": 128,
    "rtx-3090": 128,
}


def test_every_gpu_entry_gives_sms_clock_and_l2():
    gpus = {key for key, hw in known_hardware().items() if hw.kind == "gpu"}
    assert gpus == set(FP32_LANES_PER_SM)
    for key in sorted(gpus):
        hw = known_hardware()[key]
        assert hw.cores and hw.clock_hz and hw.l2_bytes, key
        assert 1e9 <= hw.clock_hz <= 3e9 and 1 << 20 <= hw.l2_bytes <= 128 << 20, key


@pytest.mark.parametrize(("key", "lanes"), sorted(FP32_LANES_PER_SM.items()))
def test_fp32_peak_is_sms_x_lanes_x_2_x_boost_clock(key, lanes):
    # an independent check of the SM count and clock against the sheet's FP32 rate, e.g. the RTX 3090:
    # 82 SMs x 128 lanes x 2 FLOPs (FMA) x 1.695 GHz = 35.58 TFLOP/s; its sheet says 35.6
    hw = known_hardware()[key]
    assert hw.cores and hw.clock_hz
    assert hw.cores * lanes * 2 * hw.clock_hz == pytest.approx(hw.peak["fp32"], rel=0.01)
