"""GPU op times from the spec sheet alone: tiles, waves over the SMs, and utilisation by waves (NeuSight-like).

NeuSight (Lee et al., "Forecasting GPU Performance for Deep Learning Training and Inference", ASPLOS 2025,
arXiv 2407.13853) predicts GPUs it has never seen by splitting each kernel into the tiles its library launches:
the tiles run in waves of one per SM, so an op's time is its number of waves times one wave's time, and a tile
reaches a share of the SM's peak that grows with the number of waves. Here:

    tiles = batch x ceil(M / tile_m) x ceil(N / tile_n)        per matrix product of (M, K) x (K, N)
    waves = ceil(tiles / SMs)                                   the last wave runs tiles - (waves - 1) x SMs tiles
    utilisation = clamp(gamma - alpha / waves, UTIL_FLOOR, 1)   gamma, alpha per op class
    one wave = (2 x tile_m x tile_n x K) / (peak / SMs x utilisation)   one tile on its SM's share of peak
    compute time = waves x one wave                              a partial last wave takes a full wave's time

A product with fewer tiles than SMs has its K split over the idle SMs (split-K), in slices of at least
SPLIT_K_MIN, which multiplies its tiles and divides each tile's K.

A convolution is an implicit GEMM per group (M = batch x output pixels, N = C_out / groups,
K = C_in / groups x kernel area); attention is its two products, Q K^T and P V. The time of an op is capped by
the roofline: it is at least its bytes over the bandwidth it reaches, which is the DRAM's, or the L2's when the
op's bytes fit in L2, times a share that falls with the op's size when it has too few elements to give every
resident thread of every SM one (its parallelism). Ops other than matrix products and convolutions run on the
CUDA cores (fp32 peak) and are bound by memory in practice; depthwise convolutions have their own share of
bandwidth, as their kernels reach less of it.

Each wave also moves its share of the op's bytes, so the per-wave roofline max(wave compute, wave bytes /
bandwidth), summed over the waves, is the op's max(compute time, bytes / bandwidth); every op adds a fixed
launch cost. The constants (``FITTED``) are fitted on one GPU's published measurements only (the RTX 3090's timm
table, ``bench/gpu_spec_accuracy.py``); every other GPU is predicted from its spec-table entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torchcost.hardware.spec import Hardware
from torchcost.records import OpRecord

# Threadblock tiles (M x N) of CUTLASS's default GEMM configurations (include/cutlass/gemm/device/
# default_gemm_configuration.h): 128 x 256 for tensor-core math (Sm75, Sm80), 128 x 128 for SIMT fp32. A
# library picks a smaller tile for a small product; we take, on each side, the smallest power of two that covers
# it, from TILE_M_MIN (the M of the m16n8k16 tensor-core instruction: a batch-1 product is not run as 128 rows)
# and TILE_N_MIN up.
TENSOR_TILE = (128, 256)
SIMT_TILE = (128, 128)
TILE_M_MIN = 16
TILE_N_MIN = 32
TENSOR_DTYPES = {"fp16", "bf16", "tf32", "fp8", "int8"}
# One wave reaches at least a quarter of peak: the batch-1024 tables the constants are fitted on hold few one-wave
# products, and with a floor of 0.05 the fit drove one wave's utilisation down to it (16x too slow for them).
UTIL_FLOOR = 0.25
# Resident threads per SM: 2048 on compute capability 7.0, 8.0 and 9.0 (CUDA C++ Programming Guide, "Technical
# Specifications per Compute Capability"). An op with fewer output elements than SMs x this leaves SMs idle.
THREADS_PER_SM = 2048
# L2 read bandwidth per clock: 5120 bytes/clk on A100's 108 SMs (NVIDIA A100 Tensor Core GPU Architecture
# whitepaper), taken per SM and scaled by each GPU's SMs and boost clock.
L2_BYTES_PER_CLOCK_PER_SM = 5120 / 108
GEMM_CLASSES = ("matmul", "conv", "attention")
SPLIT_K_MIN = 256  # the shallowest K slice split-K makes (a few of CUTLASS's 32- or 64-deep main-loop steps)


@dataclass(frozen=True)
class GpuConstants:
    """The model's fitted constants: utilisation curves of the GEMM-like classes and shares of bandwidth."""

    gamma: dict[str, float]  # utilisation with many waves, per class (matmul, conv; attention uses matmul's)
    alpha: dict[str, float]  # utilisation lost per 1 / waves
    bandwidth: dict[str, float]  # share of DRAM (or L2) bandwidth reached: "memory" (all ops), "depthwise_conv"
    launch_s: float  # fixed cost of each op: eager dispatch plus kernel launch

    def curve(self, op_class: str) -> tuple[float, float]:
        key = "matmul" if op_class == "attention" else op_class
        return self.gamma[key], self.alpha[key]


# Fitted on bench/data/timm-infer-amp-nchw-pt240-cu124-rtx3090.csv only, by bench/gpu_spec_accuracy.py (which
# refits them on every run and says when they differ from these). gamma for matmul and launch_s sit at the fit's
# upper bounds (1 and 10 us).
FITTED = GpuConstants(
    gamma={"matmul": 1.0, "conv": 0.81},
    alpha={"matmul": 0.0, "conv": 0.71},
    bandwidth={"memory": 0.8, "depthwise_conv": 0.54},
    launch_s=1e-05,
)


@dataclass(frozen=True)
class Gemm:
    """``batch`` independent products of an (M, K) by a (K, N) matrix."""

    batch: int
    m: int
    n: int
    k: int

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.n * self.k


@dataclass(frozen=True)
class OpTimes:
    compute_s: float
    memory_s: float


def applies(hardware: Hardware) -> bool:
    """The wave model needs a GPU's SM count and bandwidth."""
    return hardware.kind == "gpu" and bool(hardware.cores) and bool(hardware.bandwidth)


def gemms(record: OpRecord, op_class: str) -> list[Gemm]:
    """The matrix products an op runs, from its shapes and MACs; empty for ops that are not GEMM-like."""
    macs = record.cost.macs
    if not macs or not record.output_shapes:
        return []
    out = record.output_shapes[0]
    if op_class == "conv":
        x, w = record.input_shapes[0], record.input_shapes[1]
        # weight (C_out, C_in / groups, k...) or, transposed, (C_in, C_out / groups, k...)
        groups = x[1] // w[1] if w[0] == out[1] else out[1] // w[1]
        m, n = out[0] * math.prod(out[2:]), out[1] // groups
        return [Gemm(groups, m, n, max(1, macs // (groups * m * n)))]
    if op_class == "attention":
        return _attention_gemms(record)
    batch = math.prod(out[:-2])
    m, n = (out[-2], out[-1]) if len(out) >= 2 else (math.prod(out), 1)
    return [Gemm(batch, m, n, max(1, macs // (batch * m * n)))]


def _attention_gemms(record: OpRecord) -> list[Gemm]:
    """Q K^T and P V for queries (B, H, L, E), keys (B, H, S, E), values (B, H, S, Ev); the lower-level flash
    and memory-efficient kernels take (B, L, H, E)."""
    q, k, v = record.input_shapes[:3]
    if "scaled_dot_product" not in record.op:
        q, k, v = ((t[0], t[2], t[1], t[3]) for t in (q, k, v))
    heads, queries, keys = math.prod(q[:-2]), q[-2], k[-2]
    return [Gemm(heads, queries, keys, q[-1]), Gemm(heads, queries, v[-1], keys)]


def tile(dtype: str, m: int, n: int) -> tuple[int, int]:
    """The (M, N) threadblock tile for an M x N product."""
    tallest, widest = TENSOR_TILE if dtype in TENSOR_DTYPES else SIMT_TILE
    return min(tallest, max(TILE_M_MIN, _cover(m))), min(widest, max(TILE_N_MIN, _cover(n)))


def _cover(size: int) -> int:
    """The smallest power of two >= size."""
    return 1 << max(0, size - 1).bit_length()


def tiles(gemm: Gemm, tile_mn: tuple[int, int]) -> int:
    """Output tiles of the product: one threadblock each."""
    return gemm.batch * math.ceil(gemm.m / tile_mn[0]) * math.ceil(gemm.n / tile_mn[1])


def waves(n_tiles: int, sms: int) -> int:
    """Waves of one tile per SM that run ``n_tiles`` tiles."""
    return math.ceil(n_tiles / sms)


def wave_shares(n_tiles: int, sms: int) -> list[float]:
    """Share of the SMs each wave keeps busy: 1 for full waves, the remainder over the SMs for the last."""
    n_waves = waves(n_tiles, sms)
    return [min(sms, n_tiles - i * sms) / sms for i in range(n_waves)]


def utilisation(waves: int, gamma: float, alpha: float) -> float:
    """Share of peak a tile reaches in a kernel of ``waves`` waves: gamma - alpha / waves, clamped."""
    return min(1.0, max(UTIL_FLOOR, gamma - alpha / waves))


def split_k(n_tiles: int, k: int, sms: int) -> int:
    """Slices of K a product with fewer tiles than SMs is split into, so that idle SMs share its long K (CUTLASS's
    and cuBLAS's split-K): as many as the idle SMs allow, each at least SPLIT_K_MIN deep."""
    return max(1, min(sms // max(n_tiles, 1), k // SPLIT_K_MIN))


def gemm_waves(gemm: Gemm, dtype: str, sms: int) -> tuple[int, int]:
    """The product's waves and the FLOPs of one of its tiles (K split when the tiles leave SMs idle)."""
    tile_mn = tile(dtype, gemm.m, gemm.n)
    n_tiles = tiles(gemm, tile_mn)
    slices = split_k(n_tiles, gemm.k, sms)
    return waves(n_tiles * slices, sms), 2 * tile_mn[0] * tile_mn[1] * math.ceil(gemm.k / slices)


def gemm_seconds(gemm: Gemm, dtype: str, peak: float, sms: int, gamma: float, alpha: float) -> float:
    """Waves x one tile's FLOPs at the SM's share of peak, scaled by the utilisation of that many waves."""
    n_waves, tile_flops = gemm_waves(gemm, dtype, sms)
    return n_waves * tile_flops / (peak / sms * utilisation(n_waves, gamma, alpha))


def math_dtype(dtype: str, op_class: str) -> str:
    """The rate an op computes at: fp32 convolutions use TF32 tensor cores (PyTorch's
    ``torch.backends.cudnn.allow_tf32`` is True by default), fp32 matrix products do not
    (``torch.backends.cuda.matmul.allow_tf32`` is False); other ops run on the CUDA cores."""
    if op_class not in GEMM_CLASSES:
        return "fp32"
    return "tf32" if dtype == "fp32" and op_class == "conv" else dtype


def peak(hardware: Hardware, dtype: str) -> float:
    rate = hardware.peak.get(dtype) or hardware.peak.get("fp32")
    if not rate:
        raise ValueError(f"{hardware.name} has no {dtype} or fp32 peak to predict with; pick a spec-table entry")
    return rate


def l2_bandwidth(hardware: Hardware) -> float | None:
    if not hardware.cores or not hardware.clock_hz:
        return None
    return hardware.cores * hardware.clock_hz * L2_BYTES_PER_CLOCK_PER_SM


def bandwidth(record: OpRecord, hardware: Hardware, share: float) -> float:
    """Bytes/s an op reaches: L2's when its bytes fit in L2, else DRAM's, times ``share``, times the share of
    the SMs' resident threads its output elements occupy (below 1 when it is too small to fill the GPU)."""
    moved = record.cost.memory_access
    l2 = l2_bandwidth(hardware)
    fits = hardware.l2_bytes is not None and l2 is not None and moved <= hardware.l2_bytes
    base = l2 if fits and l2 is not None else float(hardware.bandwidth or 0.0)
    elements = math.prod(record.output_shapes[0]) if record.output_shapes else 0
    fill = min(1.0, max(elements, 1) / ((hardware.cores or 1) * THREADS_PER_SM))
    return base * share * fill


def op_times(
    record: OpRecord, op_class: str, hardware: Hardware, dtype: str, constants: GpuConstants = FITTED
) -> OpTimes:
    """Compute and memory time of one op on ``hardware`` (the op takes the larger of the two)."""
    sms = hardware.cores or 1
    rate = peak(hardware, math_dtype(dtype, op_class))
    products = gemms(record, op_class) if op_class in GEMM_CLASSES else []
    if products:
        gamma, alpha = constants.curve(op_class)
        rate_dtype = math_dtype(dtype, op_class)
        compute = sum(gemm_seconds(g, rate_dtype, rate, sms, gamma, alpha) for g in products)
        modelled = sum(g.macs for g in products)
        compute *= record.cost.macs / modelled if op_class == "attention" and modelled else 1.0  # causal masks
    else:
        compute = record.cost.flops / rate
    share = constants.bandwidth.get(op_class, constants.bandwidth["memory"])
    moved = record.cost.memory_access
    memory = moved / bandwidth(record, hardware, share) if moved else 0.0
    return OpTimes(compute, memory)
