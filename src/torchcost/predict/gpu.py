"""How long one kernel runs on a GPU: matrix products by tiles and waves over the SMs, everything else by bytes
over the bandwidth it reaches, and every kernel at least a small fixed time on the device.

**Matrix products** (cuBLAS GEMMs, cuDNN's implicit-GEMM convolutions, fused attention). NeuSight (Lee et al.,
ASPLOS 2025, arXiv 2407.13853) and Habitat (Yu et al., USENIX ATC 2021) split a kernel into the output tiles its
library launches; the tiles run in waves of one per SM:

    tiles = batch x ceil(M / tile_m) x ceil(N / tile_n)       per product of (M, K) x (K, N)
    split K when tiles < SMs: slices = min(SMs // tiles, K // SPLIT_K_MIN)   (cuBLAS's and CUTLASS's split-K)
    waves = ceil(tiles x slices / SMs)                         a partial last wave takes a full wave's time
    compute = waves x 2 tile_m tile_n (K / slices) / (peak x efficiency / SMs)

``efficiency`` is the share of the datasheet peak the library reaches on large products (about 0.8 for cuBLAS
bf16 on an H200, measured: ``bench/data/gpu-truth/h200-gemm.json``); cuDNN's convolutions and the fused attention
kernels have their own. The memory side: every product reads its operands and writes its output once, at the
bandwidth, so a skinny product (a batch-1 classifier head, an LLM's decode step) streams its weight:
``memory = bytes / bandwidth``. The kernel takes ``max(compute, memory) + floor``.

**Narrow convolutions** (fewer than 8 input channels per group: depthwise ones, a 3-channel stem) run as direct
kernels on the CUDA cores, and **everything else** (elementwise, norms, softmax, reductions, pooling, copies) is
bound by bandwidth: its bytes over the bandwidth, or its FLOPs over the CUDA cores' peak when that is longer.
Copies (layout changes, concatenation, padding, gathers: ``copy`` kernels) often read or write with strides and
reach less. A reduction is parallel over its input, so a reduction to few outputs (a bias gradient) is no slower
per byte than an elementwise op.

fp32 convolutions use TF32 tensor cores when ``torch.backends.cudnn.allow_tf32`` is True (PyTorch's default);
fp32 matrix products only when ``torch.get_float32_matmul_precision()`` is "high" or "medium" (the default is
"highest": no TF32). ``MathSettings.current()`` reads both.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from torchcost.hardware import Hardware
from torchcost.hardware.calibration import Calibration
from torchcost.predict.kernels import Gemm, Kernel

# Threadblock tiles (M x N) of CUTLASS's default GEMM configurations (include/cutlass/gemm/device/
# default_gemm_configuration.h): 128 x 256 for tensor-core math, 128 x 128 for SIMT fp32. A library picks a
# smaller tile for a small product; we take, on each side, the smallest power of two that covers it, from
# TILE_M_MIN (the M of the m16n8k16 tensor-core instruction) and TILE_N_MIN up.
TENSOR_TILE = (128, 256)
SIMT_TILE = (128, 128)
TILE_M_MIN = 16
TILE_N_MIN = 32
TENSOR_DTYPES = {"fp16", "bf16", "tf32", "fp8", "int8"}
SPLIT_K_MIN = 256  # the shallowest K slice split-K makes (a few of CUTLASS's 32- or 64-deep main-loop steps)
# Flash attention's query block per threadblock (FlashAttention-2, Dao 2023: 128 rows of queries, the keys
# streamed through in blocks)
ATTENTION_TILE = (128, 128)
DEFAULT_MATMUL_N = 8192  # the square product a GPU calibration times


@dataclass(frozen=True)
class Efficiency:
    """Shares of the datasheet a GPU generation reaches, per kind of kernel."""

    gemm: float  # cuBLAS, large products, of the tensor-core (or fp32) peak
    conv: float  # cuDNN implicit GEMM, dense, of the tensor-core (or fp32) peak
    grouped: float  # cuDNN grouped convolutions (ResNeXt, RegNet), of the same peak
    attention: float  # fused flash / memory-efficient attention
    bandwidth: float  # of the DRAM bandwidth, by elementwise and norm kernels and by GEMM operand streams
    conv_bandwidth: float  # of that bandwidth (the elementwise kernels'), by cuDNN's convolutions
    copy_bandwidth: float  # of that bandwidth, by copies, layout changes, concatenation, padding and gathers
    depthwise_bandwidth: float  # of that bandwidth, by direct depthwise kernels
    depthwise_compute: float  # of the CUDA cores' fp32 peak, by direct depthwise kernels
    floor_s: float  # the device time of the smallest kernel (launch latency, a wave's ramp-up and drain)
    source: str

    def compute_share(self, kind: str) -> float:
        """The share of the peak a kernel of this kind (``kind_of``) computes at."""
        shares = {"gemm": self.gemm, "conv": self.conv, "grouped": self.grouped, "attention": self.attention}
        return shares.get(kind, self.depthwise_compute if kind == "depthwise" else 1.0)

    def bandwidth_share(self, kind: str) -> float:
        """The share of the elementwise kernels' bandwidth a kernel of this kind streams at."""
        shares = {"conv": self.conv_bandwidth, "grouped": self.conv_bandwidth, "copy": self.copy_bandwidth}
        return shares.get(kind, self.depthwise_bandwidth if kind == "depthwise" else 1.0)


# Hopper (compute capability 9.0): fitted on an H200 (``bench/fit_gpu.py`` on ``bench/data/gpu-truth``: the 42 bf16
# GEMMs and the 22 torchvision models at batch 1 fp32 and batch 128 fp16; two-fold cross-validation over the models
# says how it holds on others). The GEMM figure is the bf16 GEMMs' (75 to 81% of 989 TFLOP/s at M >= 2048); the
# bandwidth is the measured 4.08 TB/s of an elementwise add (``h200-calibration.json``) on the datasheet's 4.8;
# the smallest kernel's 2.5 us and fused attention's 0.4 (FlashAttention-2's forward on an H100) are not fitted.
HOPPER = Efficiency(
    gemm=0.78,
    conv=0.47,
    grouped=0.23,
    attention=0.4,
    bandwidth=0.85,
    conv_bandwidth=1.0,
    copy_bandwidth=0.28,
    depthwise_bandwidth=0.12,
    depthwise_compute=0.27,
    floor_s=2.5e-6,
    source="fitted on an H200 (bench/fit_gpu.py)",
)
# Other generations (Volta, Turing, Ampere, Ada, Blackwell consumer parts): fitted on the RTX 3090's published
# timm throughput at batch 1024 (bench/gpu_spec_accuracy.py), the RTX 4090 and 5090 held out; the large products'
# share sits at its bound of 1 (GeForce cards run above their rated boost clock).
OTHERS = Efficiency(
    gemm=1.0,
    conv=0.81,
    grouped=0.44,
    attention=0.5,
    bandwidth=0.92,
    conv_bandwidth=0.72,
    copy_bandwidth=0.69,
    depthwise_bandwidth=0.45,
    depthwise_compute=0.32,
    floor_s=2.5e-6,
    source="fitted on the RTX 3090's timm table (bench/gpu_spec_accuracy.py)",
)
# Data-center Ampere (GA100: the A100, compute capability 8.0) runs at its rated clock, so its large products do
# not reach the datasheet as GeForce cards do. The share is the largest bf16 product Bekman measured on an A100 SXM
# (267.9 of 312 TFLOP/s, "Maximum Achievable Matmul FLOPS", github.com/stas00/ml-engineering, compute/accelerator),
# scaled as Hopper's: our fitted 0.78 is 0.975 of the 80.1% he measured on an H100 SXM, and 0.975 x 0.859 = 0.84.
# The other kinds keep the RTX 3090's shares. Megatron-LM's published A100 step times check it
# (bench/megatron_published.py); nothing was fitted to them.
GA100 = replace(
    OTHERS, gemm=0.84, source="an A100 SXM's largest bf16 product (Bekman's MAMF table), the rest as OTHERS"
)
EFFICIENCY_BY_ARCH = {"hopper": HOPPER, "ga100": GA100}


@dataclass(frozen=True)
class MathSettings:
    """Whether fp32 products and convolutions run on TF32 tensor cores, as this process has PyTorch set."""

    tf32_matmul: bool = False
    tf32_conv: bool = True

    @staticmethod
    def current() -> MathSettings:
        matmul = torch.get_float32_matmul_precision() in ("high", "medium")
        return MathSettings(tf32_matmul=matmul, tf32_conv=bool(torch.backends.cudnn.allow_tf32))


@dataclass(frozen=True)
class GpuRates:
    """What one GPU achieves: its SMs, peaks per math dtype, the efficiencies, the bandwidth it reaches."""

    name: str
    sms: int
    peak: dict[str, float]  # math dtype -> datasheet FLOP/s (OP/s for int8, fp8)
    efficiency: Efficiency
    dram_bandwidth: float  # bytes/s, datasheet
    matmul_rate: dict[str, float] = field(default_factory=dict)  # calibrated large-GEMM FLOP/s per dtype
    measured_bandwidth: float | None = None  # calibrated bytes/s of an elementwise op
    settings: MathSettings = field(default_factory=MathSettings)

    @property
    def bandwidth(self) -> float:
        """Bytes/s elementwise kernels and operand streams reach."""
        return self.measured_bandwidth or self.dram_bandwidth * self.efficiency.bandwidth

    def rate(self, dtype: str) -> float:
        """The datasheet peak of a math dtype (fp32 when the GPU has no such units)."""
        return self.peak.get(dtype) or self.peak.get("fp32") or 1.0

    def compute_share(self, kind: str, dtype: str) -> float:
        """The share of ``dtype``'s peak a kernel of this kind reaches: a calibration's measured products for cuBLAS,
        else the generation's efficiency."""
        if kind == "gemm" and dtype in self.matmul_rate:
            return self.matmul_rate[dtype] / self.rate(dtype)
        return self.efficiency.compute_share(kind)

    def gemm_rate(self, dtype: str, kind: str) -> float:
        """FLOP/s a large product of this kind reaches."""
        return self.rate(dtype) * self.compute_share(kind, dtype)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sms": self.sms,
            "bandwidth": self.bandwidth,
            "kernel_floor_s": self.efficiency.floor_s,
            "efficiency": {
                "gemm": self.efficiency.gemm,
                "conv": self.efficiency.conv,
                "grouped": self.efficiency.grouped,
                "attention": self.efficiency.attention,
                "bandwidth": self.efficiency.bandwidth,
                "conv_bandwidth": self.efficiency.conv_bandwidth,
                "copy_bandwidth": self.efficiency.copy_bandwidth,
                "depthwise_bandwidth": self.efficiency.depthwise_bandwidth,
                "depthwise_compute": self.efficiency.depthwise_compute,
            },
            "matmul_rate": dict(self.matmul_rate),
            "source": self.efficiency.source,
        }


def applies(hardware: Hardware) -> bool:
    """The kernel models need a GPU's SM count and bandwidth."""
    return hardware.kind == "gpu" and bool(hardware.cores) and bool(hardware.bandwidth)


def gpu_rates(hardware: Hardware, settings: MathSettings | None = None) -> GpuRates:
    """The rates of a spec-table GPU, with its calibration's measured GEMM rates and bandwidth when it has one."""
    efficiency = EFFICIENCY_BY_ARCH.get(hardware.arch or "", OTHERS)
    calibration = hardware.calibration
    measured = calibration is not None and calibration.device == "cuda"
    if measured and calibration is not None and calibration.kernel_floor_s:
        efficiency = Efficiency(**{**efficiency.__dict__, "floor_s": calibration.kernel_floor_s})
    return GpuRates(
        name=hardware.name,
        sms=hardware.cores or 1,
        peak=dict(hardware.peak),
        efficiency=efficiency,
        dram_bandwidth=float(hardware.bandwidth or 0.0),
        matmul_rate=_per_tile_rates(hardware, calibration) if measured and calibration is not None else {},
        measured_bandwidth=calibration.bandwidth if measured and calibration is not None else None,
        settings=settings or MathSettings.current(),
    )


def _per_tile_rates(hardware: Hardware, calibration: Calibration) -> dict[str, float]:
    """The calibrated square products' FLOP/s as the rate of one tile: a measured n x n x n product already pays
    its own waves' quantisation, which the model adds again, so the rate is scaled by (its modelled time at that
    rate) / (its measured time)."""
    n = calibration.matmul_n or _measured_size(calibration.details)
    sms = hardware.cores or 1
    rates = {}
    for dtype, measured in calibration.matmul_flops.items():
        gemm = Gemm(1, n, n, n)
        modelled = gemm_seconds(gemm, tile(dtype, n, n), measured, sms)
        rates[dtype] = measured * modelled / (2 * n**3 / measured)
    return rates


def _measured_size(details: dict[str, str]) -> int:
    """The product size a calibration's details name ("(4096, 4096) x (4096, 4096): 0.194 ms"); else 8192."""
    found = re.search(r"\((\d+), \d+\)", next((v for k, v in details.items() if k.startswith("matmul_")), ""))
    return int(found.group(1)) if found else DEFAULT_MATMUL_N


def math_dtype(kernel: Kernel, settings: MathSettings) -> str:
    """The rate a kernel computes at: fp32 products on TF32 tensor cores where PyTorch allows it."""
    if kernel.dtype != "fp32" or kernel.kind not in ("gemm", "conv"):
        return kernel.dtype
    tf32 = settings.tf32_conv if kernel.kind == "conv" else settings.tf32_matmul
    return "tf32" if tf32 else "fp32"


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


def split_k(n_tiles: int, k: int, sms: int) -> int:
    """Slices of K a product with fewer tiles than SMs is split into, so that idle SMs share its long K: as many
    as the idle SMs allow, each at least SPLIT_K_MIN deep."""
    return max(1, min(sms // max(n_tiles, 1), k // SPLIT_K_MIN))


def gemm_waves(gemm: Gemm, tile_mn: tuple[int, int], sms: int) -> tuple[int, int]:
    """The product's waves and the FLOPs of one of its tiles (K split when the tiles leave SMs idle)."""
    n_tiles = tiles(gemm, tile_mn)
    slices = split_k(n_tiles, gemm.k, sms)
    return waves(n_tiles * slices, sms), 2 * tile_mn[0] * tile_mn[1] * math.ceil(gemm.k / slices)


def gemm_seconds(gemm: Gemm, tile_mn: tuple[int, int], rate: float, sms: int) -> float:
    """Waves x one tile's FLOPs on one SM's share of ``rate``."""
    n_waves, tile_flops = gemm_waves(gemm, tile_mn, sms)
    return n_waves * tile_flops / (rate / sms)


@dataclass(frozen=True)
class KernelTime:
    compute_s: float
    memory_s: float
    floor_s: float

    @property
    def seconds(self) -> float:
        return max(self.compute_s, self.memory_s) + self.floor_s


KINDS = ("gemm", "conv", "grouped", "attention", "depthwise", "memory", "copy")


def kind_of(kernel: Kernel) -> str:
    """What sets a kernel's rates: its kind, a grouped convolution apart, a product with nothing to multiply as
    memory."""
    if kernel.kind in ("gemm", "conv", "attention") and not kernel.gemms:
        return "memory"
    return "grouped" if kernel.kind == "conv" and kernel.gemms[0].batch > 1 else kernel.kind


def work_seconds(kernel: Kernel, rates: GpuRates) -> float:
    """The kernel's compute time at its math dtype's full datasheet rate: waves of tiles for the products, FLOPs on
    the fp32 CUDA cores for the rest (``kernel_time`` divides it by the share the kernel reaches)."""
    if kind_of(kernel) not in ("gemm", "conv", "grouped", "attention"):
        return kernel.flops / rates.rate("fp32")
    dtype = math_dtype(kernel, rates.settings)
    rate = rates.rate(dtype)
    if kernel.kind == "attention":
        seconds = sum(gemm_seconds(g, ATTENTION_TILE, rate, rates.sms) for g in kernel.gemms)
        modelled = sum(g.macs for g in kernel.gemms)
        return seconds * (kernel.macs / modelled if modelled and kernel.macs else 1.0)  # a causal mask skips blocks
    return sum(gemm_seconds(g, tile(dtype, g.m, g.n), rate, rates.sms) for g in kernel.gemms)


def kernel_time(kernel: Kernel, rates: GpuRates) -> KernelTime:
    """Compute, memory and fixed time of one kernel (it takes the larger of the first two, plus the third)."""
    kind = kind_of(kernel)
    compute = work_seconds(kernel, rates) / rates.compute_share(kind, math_dtype(kernel, rates.settings))
    memory = kernel.bytes / (rates.bandwidth * rates.efficiency.bandwidth_share(kind))
    return KernelTime(compute, memory, rates.efficiency.floor_s)
