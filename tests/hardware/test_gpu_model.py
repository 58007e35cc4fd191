import pytest

from tests.test_roofline import hand_profile as roofline_profile
from torchcost.hardware import Hardware, gpu_model, hardware
from torchcost.hardware.gpu_model import Gemm, GpuConstants
from torchcost.records import OpCost, OpRecord, Profile, TensorSpec
from torchcost.roofline import WAVE_MODEL, predict

# A made-up GPU: 132 SMs, 1 TFLOP/s of fp16 per SM (132e12 in all), 1 TB/s, 1 MiB of L2 at 1 GHz.
GPU = Hardware(
    "wavy", "wavy", "gpu", {"fp32": 66e12, "fp16": 132e12}, 1e12, None, 132, "test", clock_hz=1e9, l2_bytes=1 << 20
)
# Binary-exact constants: utilisation 0.75 - 0.25 / waves is 0.5 for one wave, 0.625 for two.
EXACT = GpuConstants(
    gamma={"matmul": 0.75, "conv": 0.75},
    alpha={"matmul": 0.25, "conv": 0.25},
    bandwidth={"memory": 0.5, "depthwise_conv": 0.25},
    launch_s=4e-6,
)


def record(op, inputs, output, flops=0, macs=0, bytes_=0) -> OpRecord:
    return OpRecord(op, "forward", ("",), OpCost(flops, macs, bytes_, 0), tuple(inputs), (output,))


@pytest.mark.parametrize(
    ("m", "n", "tiles", "waves", "shares"),
    [
        (128 * 11, 256 * 24, 264, 2, [1.0, 1.0]),  # 11 x 24 = 264 tiles of 128 x 256 = 2 full waves of 132
        (128 * 133, 256, 133, 2, [1.0, 1 / 132]),  # 133 tiles: a full wave, then 1 tile on 1 of 132 SMs
        (128 * 132, 256, 132, 1, [1.0]),
        (100, 100, 1, 1, [1 / 132]),  # ceil(100 / 128) x ceil(100 / 128) = 1 tile (of 128 x 128)
    ],
)
def test_tiles_waves_and_the_share_of_each_wave(m, n, tiles, waves, shares):
    gemm = Gemm(1, m, n, 64)
    tile = gpu_model.tile("fp16", m, n)
    assert gpu_model.tiles(gemm, tile) == tiles
    assert gpu_model.waves(tiles, 132) == waves
    assert gpu_model.wave_shares(tiles, 132) == shares


def test_batched_products_multiply_the_tiles():
    # 12 heads x ceil(197 / 128) = 2 x ceil(64 / 64) = 1 -> 24 tiles, one wave on 132 SMs
    gemm = Gemm(12, 197, 64, 197)
    assert gpu_model.tile("fp16", 197, 64) == (128, 64)
    assert gpu_model.tiles(gemm, (128, 64)) == 24 and gpu_model.waves(24, 132) == 1


@pytest.mark.parametrize(
    ("dtype", "m", "n", "tile"),
    [
        ("fp16", 4096, 4096, (128, 256)),  # tensor cores: at most 128 x 256
        ("fp16", 4096, 256, (128, 256)),
        ("fp16", 4096, 48, (128, 64)),  # the smallest power of two that covers 48
        ("fp16", 4096, 8, (128, 32)),  # never narrower than 32
        ("fp16", 40, 4096, (64, 256)),  # 64 rows cover 40
        ("fp16", 1, 4096, (16, 256)),  # a batch-1 product: never fewer than 16 rows
        ("fp32", 4096, 4096, (128, 128)),  # CUDA cores (SIMT): at most 128 x 128
    ],
)
def test_tile_is_the_smallest_that_covers_the_product(dtype, m, n, tile):
    assert gpu_model.tile(dtype, m, n) == tile


@pytest.mark.parametrize(
    ("waves", "gamma", "alpha", "expected"),
    [
        (1, 0.75, 0.25, 0.5),  # 0.75 - 0.25 / 1
        (2, 0.75, 0.25, 0.625),  # 0.75 - 0.25 / 2
        (4, 0.75, 0.25, 0.6875),  # 0.75 - 0.25 / 4
        (1, 0.125, 0.25, 0.25),  # -0.125 is clamped to the floor, a quarter of peak
        (8, 1.5, 0.0, 1.0),  # never above 1
    ],
)
def test_utilisation_grows_with_waves(waves, gamma, alpha, expected):
    assert gpu_model.utilisation(waves, gamma, alpha) == expected


def test_gemm_time_is_waves_times_one_tile_on_one_sm():
    # 264 tiles -> 2 waves, utilisation 0.625; one tile: 2 x 128 x 256 x 4096 = 268,435,456 FLOPs on an SM's
    # 1e12 FLOP/s at 0.625 = 429.4967296 us; two waves = 858.9934592 us
    full = Gemm(1, 128 * 11, 256 * 24, 4096)
    assert gpu_model.gemm_seconds(full, "fp16", 132e12, 132, 0.75, 0.25) == pytest.approx(858.9934592e-6, rel=1e-12)
    # 133 tiles: also 2 waves, the second 1/132 busy, so the same time for about half the work
    partial = Gemm(1, 128 * 133, 256, 4096)
    assert gpu_model.gemm_seconds(partial, "fp16", 132e12, 132, 0.75, 0.25) == pytest.approx(858.9934592e-6, rel=1e-12)
    # 132 tiles: 1 wave at utilisation 0.5: 268,435,456 / (1e12 x 0.5) = 536.870912 us
    one = Gemm(1, 128 * 132, 256, 4096)
    assert gpu_model.gemm_seconds(one, "fp16", 132e12, 132, 0.75, 0.25) == pytest.approx(536.870912e-6, rel=1e-12)


def test_split_k_spreads_a_long_k_over_idle_sms():
    # (64, 4608) x (4608, 512) in fp16: tile (64, 256), 1 x 2 = 2 tiles on 132 SMs; split K into
    # min(132 // 2 = 66, 4608 // 256 = 18) = 18 slices of 256: 36 tiles, 1 wave of 2 x 64 x 256 x 256 FLOPs
    gemm = Gemm(1, 64, 512, 4608)
    assert gpu_model.split_k(2, 4608, 132) == 18
    assert gpu_model.gemm_waves(gemm, "fp16", 132) == (1, 8_388_608)
    # one wave at utilisation 0.5 (0.75 - 0.25): 8,388,608 / (1e12 x 0.5) = 16.777216 us
    assert gpu_model.gemm_seconds(gemm, "fp16", 132e12, 132, 0.75, 0.25) == pytest.approx(16.777216e-6, rel=1e-12)
    assert gpu_model.split_k(132, 4608, 132) == 1 and gpu_model.split_k(2, 300, 132) == 1  # no idle SMs; K too short


def test_gemms_of_convolutions_products_and_attention():
    # conv 3x3, 64 -> 128 channels, 8 x 56 x 56 output: M = 8 x 3136 = 25,088, N = 128, K = 64 x 9 = 576
    macs = 25_088 * 128 * 576
    conv = record("aten.convolution", [(8, 64, 56, 56), (128, 64, 3, 3)], (8, 128, 56, 56), macs=macs)
    assert gpu_model.gemms(conv, "conv") == [Gemm(1, 25_088, 128, 576)]
    # 4 groups: 4 products of N = 128 / 4 = 32, K = 16 x 9 = 144; MACs = 4 x 25,088 x 32 x 144
    grouped = record("aten.convolution", [(8, 64, 56, 56), (128, 16, 3, 3)], (8, 128, 56, 56), macs=macs // 4)
    assert gpu_model.gemms(grouped, "conv") == [Gemm(4, 25_088, 32, 144)]
    mm = record("aten.mm", [(512, 768), (768, 1024)], (512, 1024), macs=512 * 1024 * 768)
    assert gpu_model.gemms(mm, "matmul") == [Gemm(1, 512, 1024, 768)]
    bmm = record("aten.bmm", [(12, 197, 197), (12, 197, 64)], (12, 197, 64), macs=12 * 197 * 64 * 197)
    assert gpu_model.gemms(bmm, "matmul") == [Gemm(12, 197, 64, 197)]
    q = (2, 12, 197, 64)
    sdpa = record("aten._scaled_dot_product_efficient_attention", [q, q, q], q, macs=2 * 24 * 197 * 197 * 64)
    # Q K^T: 24 products of (197, 64) x (64, 197); P V: 24 of (197, 197) x (197, 64)
    assert gpu_model.gemms(sdpa, "attention") == [Gemm(24, 197, 197, 64), Gemm(24, 197, 64, 197)]
    assert gpu_model.gemms(record("aten.add", [q, q], q, flops=1), "other") == []


def test_bandwidth_is_l2_when_the_op_fits_and_shrinks_when_the_op_cannot_fill_the_gpu():
    # L2: 132 SMs x 1 GHz x 5120 / 108 bytes per clock and SM = 6.2578e12 B/s; DRAM 1e12 B/s
    l2 = 132 * 1e9 * 5120 / 108
    elements = 132 * 2048  # one resident thread per output element on every SM: fill 1
    fits = record("aten.add", [], (elements,), bytes_=1 << 20)
    spills = record("aten.add", [], (elements,), bytes_=(1 << 20) + 1)
    assert gpu_model.bandwidth(fits, GPU, 0.5) == pytest.approx(l2 * 0.5, rel=1e-12)
    assert gpu_model.bandwidth(spills, GPU, 0.5) == pytest.approx(0.5e12, rel=1e-12)
    half = record("aten.add", [], (elements // 2,), bytes_=2 << 20)  # half the resident threads: fill 0.5
    assert gpu_model.bandwidth(half, GPU, 0.5) == pytest.approx(0.25e12, rel=1e-12)


def test_op_times_take_the_class_share_of_bandwidth():
    elements = 132 * 2048
    add = record("aten.add", [], (elements,), flops=66_000_000, bytes_=4_000_000)
    times = gpu_model.op_times(add, "other", GPU, "fp16", EXACT)
    assert times.compute_s == pytest.approx(1e-6, rel=1e-12)  # 66e6 FLOPs on the 66e12 fp32 CUDA cores
    assert times.memory_s == pytest.approx(8e-6, rel=1e-12)  # 4e6 bytes at 0.5 x 1e12 B/s (too big for L2)
    depthwise = record("aten.convolution", [(1, 8, 4, 4), (8, 1, 3, 3)], (elements,), flops=0, bytes_=4_000_000)
    assert gpu_model.op_times(depthwise, "depthwise_conv", GPU, "fp16", EXACT).memory_s == pytest.approx(16e-6)


def hand_profile(records: list[OpRecord]) -> Profile:
    return roofline_profile(records, TensorSpec((128 * 11, 4096), "float16"))


def test_predict_uses_the_wave_model_on_a_gpu_from_the_spec_table():
    m, n, k = 128 * 11, 256 * 24, 4096
    mm = record("aten.mm", [(m, k), (k, n)], (m, n), flops=2 * m * n * k, macs=m * n * k, bytes_=2 * (m * k + k * n))
    prediction = predict(hand_profile([mm]), GPU)
    assert prediction.rates.source == WAVE_MODEL and prediction.dtype == "fp16"
    gamma, alpha = gpu_model.FITTED.curve("matmul")
    expected = gpu_model.gemm_seconds(Gemm(1, m, n, k), "fp16", 132e12, 132, gamma, alpha)
    (op,) = prediction.ops
    assert op.compute_s == pytest.approx(expected, rel=1e-12) and op.bound == "compute"
    assert prediction.latency_s == pytest.approx(expected + gpu_model.FITTED.launch_s, rel=1e-12)


def test_the_wave_model_needs_a_gpu_with_its_sm_count():
    assert gpu_model.applies(GPU) and gpu_model.applies(hardware("rtx-3090"))
    no_sms = Hardware("x", "x", "gpu", {"fp32": 1e12}, 1e11, None, None, "test")
    assert not gpu_model.applies(no_sms) and not gpu_model.applies(hardware("apple-m2"))
    assert predict(hand_profile([record("aten.add", [], (4,), flops=4, bytes_=48)]), no_sms).rates.source != WAVE_MODEL
