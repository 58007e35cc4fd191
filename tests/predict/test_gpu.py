import dataclasses

import pytest

from torchcost.hardware import Hardware, hardware
from torchcost.hardware.calibration import Calibration
from torchcost.predict import gpu
from torchcost.predict.gpu import Efficiency, GpuRates, MathSettings
from torchcost.predict.kernels import Gemm, Kernel, kernels
from torchcost.records import OpCost, OpRecord

# A made-up GPU: 132 SMs, 1 TFLOP/s of fp16 per SM (132e12 in all), fp32 at half that, 1 TB/s.
GPU = Hardware("wavy", "wavy", "gpu", {"fp32": 66e12, "tf32": 132e12, "fp16": 132e12}, 1e12, None, 132, "test")
# Binary-exact shares: large fp16 products at half of peak (0.5e12 per SM), elementwise at half of 1 TB/s.
EXACT = Efficiency(
    gemm=0.5,
    conv=0.25,
    grouped=0.125,
    attention=0.5,
    bandwidth=0.5,
    conv_bandwidth=0.5,
    copy_bandwidth=0.25,
    depthwise_bandwidth=0.25,
    depthwise_compute=0.5,
    floor_s=1e-6,
    source="test",
)
RATES = GpuRates("wavy", 132, dict(GPU.peak), EXACT, 1e12, settings=MathSettings(tf32_matmul=False, tf32_conv=True))


def record(op, inputs, output, flops=0, macs=0, bytes_=0, dtypes=("float16",), phase="forward") -> OpRecord:
    cost = OpCost(flops, macs, bytes_, 0)
    dtypes = tuple(dtypes) * len(inputs) if len(dtypes) == 1 else tuple(dtypes)
    return OpRecord(op, phase, ("",), cost, tuple(inputs), (output,), input_dtypes=dtypes, output_dtypes=dtypes[:1])


@pytest.mark.parametrize(
    ("m", "n", "tiles", "waves"),
    [
        (128 * 11, 256 * 24, 264, 2),  # 11 x 24 = 264 tiles of 128 x 256 = 2 full waves of 132
        (128 * 133, 256, 133, 2),  # 133 tiles: a full wave, then 1 tile on 1 of 132 SMs
        (128 * 132, 256, 132, 1),
        (100, 100, 1, 1),  # ceil(100 / 128) x ceil(100 / 128) = 1 tile (of 128 x 128)
    ],
)
def test_tiles_and_waves(m, n, tiles, waves):
    tile = gpu.tile("fp16", m, n)
    assert gpu.tiles(Gemm(1, m, n, 64), tile) == tiles
    assert gpu.waves(tiles, 132) == waves


@pytest.mark.parametrize(
    ("dtype", "m", "n", "tile"),
    [
        ("fp16", 4096, 4096, (128, 256)),  # tensor cores: at most 128 x 256
        ("fp16", 4096, 48, (128, 64)),  # the smallest power of two that covers 48
        ("fp16", 4096, 8, (128, 32)),  # never narrower than 32
        ("fp16", 1, 4096, (16, 256)),  # a batch-1 product: never fewer than 16 rows
        ("fp32", 4096, 4096, (128, 128)),  # CUDA cores (SIMT): at most 128 x 128
    ],
)
def test_tile_is_the_smallest_that_covers_the_product(dtype, m, n, tile):
    assert gpu.tile(dtype, m, n) == tile


def test_gemm_time_is_waves_times_one_tile_on_one_sm():
    # 264 tiles -> 2 waves; one tile: 2 x 128 x 256 x 4096 = 268,435,456 FLOPs on an SM's 0.5e12 FLOP/s
    # (132e12 x 0.5 / 132) = 536.870912 us; two waves = 1073.741824 us
    full = Gemm(1, 128 * 11, 256 * 24, 4096)
    assert gpu.gemm_seconds(full, (128, 256), 66e12, 132) == pytest.approx(1073.741824e-6, rel=1e-12)
    # 133 tiles: also 2 waves, the second with one tile: the same time for about half the work
    partial = Gemm(1, 128 * 133, 256, 4096)
    assert gpu.gemm_seconds(partial, (128, 256), 66e12, 132) == pytest.approx(1073.741824e-6, rel=1e-12)


def test_split_k_spreads_a_long_k_over_idle_sms():
    # (64, 4608) x (4608, 512): tile (64, 256), 1 x 2 = 2 tiles on 132 SMs; split K into
    # min(132 // 2 = 66, 4608 // 256 = 18) = 18 slices of 256: 36 tiles, 1 wave of 2 x 64 x 256 x 256 FLOPs
    gemm = Gemm(1, 64, 512, 4608)
    assert gpu.split_k(2, 4608, 132) == 18
    assert gpu.gemm_waves(gemm, (64, 256), 132) == (1, 8_388_608)
    assert gpu.split_k(132, 4608, 132) == 1 and gpu.split_k(2, 300, 132) == 1  # no idle SMs; K too short


def test_a_skinny_product_streams_its_weight_at_the_bandwidth():
    # (1, 4096) x (4096, 4096) fp16: 2 x (4096 + 4096 x 4096 + 4096) = 33,570,816 bytes at 0.5e12 B/s = 67.141632 us;
    # compute: tile (16, 256), 16 tiles split 8 ways (132 // 16 = 8; 4096 // 256 = 16): 128 tiles, one wave of
    # 2 x 16 x 256 x 512 = 4,194,304 FLOPs at 0.5e12 per SM = 8.388608 us; the kernel takes 67.14 + 1 us
    product = Kernel("gemm", "fp16", 33_570_816, 2 * 4096 * 4096, (Gemm(1, 1, 4096, 4096),), 4096 * 4096)
    time = gpu.kernel_time(product, RATES)
    assert time.compute_s == pytest.approx(8.388608e-6, rel=1e-12)
    assert time.memory_s == pytest.approx(67.141632e-6, rel=1e-12)
    assert time.seconds == pytest.approx(68.141632e-6, rel=1e-12)


def test_fp32_convolutions_use_tf32_and_products_do_not_unless_asked():
    conv = Kernel("conv", "fp32", 0, 0, (Gemm(1, 128 * 132, 256, 1024),), 0)
    product = dataclasses.replace(conv, kind="gemm")
    default = MathSettings(tf32_matmul=False, tf32_conv=True)
    assert gpu.math_dtype(conv, default) == "tf32" and gpu.math_dtype(product, default) == "fp32"
    assert gpu.math_dtype(product, MathSettings(tf32_matmul=True)) == "tf32"
    # one wave of 132 tiles of 2 x 128 x 128 x 1024 (fp32 SIMT tile) at 66e12 x 0.5 / 132 = 0.25e12 per SM
    fp32 = gpu.kernel_time(product, RATES).compute_s
    assert fp32 == pytest.approx(2 * 2 * 128 * 128 * 1024 / 0.25e12, rel=1e-12)  # 256 x 128 tiles: 264 in 2 waves


def test_grouped_and_dense_convolutions_have_their_own_efficiency():
    # dense: one wave of 132 tiles of 2 x 128 x 256 x 576 FLOPs at 132e12 x 0.25 / 132 = 0.25e12 per SM
    dense = Kernel("conv", "fp16", 0, 0, (Gemm(1, 128 * 132, 256, 576),), 0)
    assert gpu.kernel_time(dense, RATES).compute_s == pytest.approx(2 * 128 * 256 * 576 / 0.25e12, rel=1e-12)
    # 2 groups of (128 x 66, 256): 132 tiles again, at the grouped share 0.125: twice the time
    grouped = Kernel("conv", "fp16", 0, 0, (Gemm(2, 128 * 66, 256, 576),), 0)
    assert gpu.kernel_time(grouped, RATES).compute_s == pytest.approx(2 * 128 * 256 * 576 / 0.125e12, rel=1e-12)


def test_bandwidth_bound_kernels_and_their_shares():
    # elementwise: 4e6 bytes at 1e12 x 0.5 = 8 us; compute 66e6 FLOPs on 66e12 fp32 = 1 us
    add = Kernel("memory", "fp16", 4_000_000, 66_000_000)
    assert gpu.kernel_time(add, RATES) == gpu.KernelTime(1e-6, 8e-6, 1e-6)
    # a copy reaches a quarter of that bandwidth: 32 us; a depthwise conv a quarter too, its FLOPs half the fp32 cores
    assert gpu.kernel_time(dataclasses.replace(add, kind="copy"), RATES).memory_s == pytest.approx(32e-6)
    depthwise = Kernel("depthwise", "fp16", 4_000_000, 66_000_000)
    assert gpu.kernel_time(depthwise, RATES) == gpu.KernelTime(2e-6, 32e-6, 1e-6)


def test_a_reduction_to_few_outputs_runs_at_the_bandwidth():
    # a bias gradient: (64 x 197, 768) bf16 summed to 768 outputs reads 19,365,888 bytes, writes 1,536:
    # 19,367,424 / 0.5e12 = 38.734848 us, not starved for parallelism by its 768 outputs
    grad = record("aten.sum", [(64 * 197, 768)], (768,), flops=64 * 197 * 768, bytes_=19_367_424, dtypes=("bfloat16",))
    (kernel,) = kernels(grad)
    assert gpu.kernel_time(kernel, RATES).memory_s == pytest.approx(38.734848e-6, rel=1e-12)


def test_fused_attention_reads_qkv_once_and_a_causal_mask_skips_half_the_blocks():
    q = (2, 12, 256, 64)
    macs = 2 * 24 * 256 * 256 * 64  # Q K^T and P V over all pairs
    full = record("aten._scaled_dot_product_flash_attention_for_cpu", [q, q, q], q, macs=macs, bytes_=4 * 786_432)
    (kernel,) = kernels(full)
    assert kernel.kind == "attention" and kernel.gemms == (Gemm(24, 256, 256, 64), Gemm(24, 256, 64, 256))
    # Q K^T: 24 x 2 x 2 = 96 tiles of 128 x 128 (one wave), 2 x 128 x 128 x 64 FLOPs; P V: 24 x 2 x 1 = 48 tiles of
    # 2 x 128 x 128 x 256; each at 132e12 x 0.5 / 132 = 0.5e12 per SM
    expected = (2 * 128 * 128 * 64 + 2 * 128 * 128 * 256) / 0.5e12
    assert gpu.kernel_time(kernel, RATES).compute_s == pytest.approx(expected, rel=1e-12)
    causal = dataclasses.replace(kernel, macs=macs // 2)
    assert gpu.kernel_time(causal, RATES).compute_s == pytest.approx(expected / 2, rel=1e-12)


def test_rates_from_a_cuda_calibration():
    calibration = Calibration(
        "cuda", "wavy", 1, "x", "today", matmul_flops={"fp16": 99e12}, matmul_n=1024, add_bandwidth=0.75e12,
        kernel_floor_s=3e-6,
    )  # fmt: skip
    rates = gpu.gpu_rates(dataclasses.replace(GPU, calibration=calibration), MathSettings())
    # the measured 1024^3 product ran as 8 x 4 = 32 tiles split 4 ways (128 tiles on 132 SMs, one wave): the rate of
    # a tile is the measured rate x 132 / 128, the share of the SMs that product left idle
    assert rates.gemm_rate("fp16", "gemm") == pytest.approx(99e12 * 132 / 128, rel=1e-12)
    assert rates.bandwidth == 0.75e12
    assert rates.efficiency.floor_s == 3e-6
    assert gpu.gpu_rates(GPU).bandwidth == 1e12 * gpu.OTHERS.bandwidth  # no calibration: the spec's share


def test_hopper_gpus_take_the_efficiencies_measured_on_one():
    assert hardware("h200").arch == hardware("h100").arch == "hopper"
    assert gpu.gpu_rates(hardware("h100")).efficiency is gpu.HOPPER
    assert gpu.gpu_rates(hardware("l4")).efficiency is gpu.OTHERS


def test_a100s_take_their_own_product_share_and_the_rest_as_other_gpus():
    assert hardware("a100-80gb").arch == hardware("a100-40gb").arch == "ga100"
    ga100 = gpu.gpu_rates(hardware("a100-80gb")).efficiency
    assert ga100 is gpu.GA100 and ga100.gemm < gpu.OTHERS.gemm
    assert dataclasses.replace(ga100, gemm=gpu.OTHERS.gemm, source=gpu.OTHERS.source) == gpu.OTHERS
    assert gpu.gpu_rates(hardware("rtx-3090")).efficiency is gpu.OTHERS  # Ampere too, but GeForce (8.6)


def test_the_kernel_models_need_a_gpu_with_its_sm_count():
    assert gpu.applies(GPU) and gpu.applies(hardware("rtx-3090"))
    assert not gpu.applies(Hardware("x", "x", "gpu", {"fp32": 1e12}, 1e11, None, None, "test"))
    assert not gpu.applies(hardware("apple-m2"))
