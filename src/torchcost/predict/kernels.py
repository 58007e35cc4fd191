"""The kernels an op runs on a GPU in eager PyTorch, read from its ``OpRecord``: how many, of which kind, and the
matrix products or bytes each one does.

Kinds: ``gemm`` (cuBLAS matrix products), ``conv`` (cuDNN's implicit GEMM: M = batch x output pixels, N = C_out /
groups, K = C_in / groups x kernel area, per group), ``depthwise`` (a grouped convolution too narrow for tensor
cores: a direct kernel on the CUDA cores), ``attention`` (a fused flash or memory-efficient kernel: Q K^T and
P V per head, reading Q, K and V once and never writing the scores), ``copy`` (copies, layout changes,
concatenation, padding, gathers) and ``memory`` (elementwise, norms, reductions, pooling): both bound by
bandwidth.

Ops that launch several kernels are split as PyTorch runs them on CUDA:
- a convolution with a bias: the convolution, then ``output.add_(bias)`` (``at::_convolution``);
- a convolution's backward: the gradients of the input (dgrad), of the weight (wgrad) and of the bias (a sum);
- ``_native_multi_head_attention`` (``nn.MultiheadAttention``'s inference fast path): the QKV projection, the
  bias-and-heads transform, fused attention, the output projection;
- ``_transformer_encoder_layer_fwd`` (``nn.TransformerEncoderLayer``'s fast path): that, then two residual
  layer norms and the feed-forward products;
- a batch norm in training mode: the statistics, then the normalisation.
Views, reshapes and allocations launch nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torchcost.counting.formulas.attention import attended_pairs
from torchcost.errors import renamed
from torchcost.predict.taxonomy import launches_kernel, op_class
from torchcost.records import OpRecord, Shape
from torchcost.units import SHORT_DTYPE_NAMES

# Bytes per element of the dtypes records name.
ELEMENT_BYTES = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "complex64": 8,
    "complex128": 16,
}
# Below this many input channels per group (the K of a tensor-core instruction's k8 fp16 step), a convolution runs as a
# direct kernel on the CUDA cores: depthwise ones, and 3-channel stems.
TENSOR_CORE_GROUP_WIDTH = 8
HEAD_DIM = 64  # of a fused attention op whose head count its shapes do not give
STREAMED_PIECE = 1 << 16  # elements per contiguous piece above which a concatenation streams
SOFTMAX_FLOPS = 5  # per score, as counting/formulas/attention.py counts them


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
class Kernel:
    """One kernel: its kind, the dtype it computes in, the bytes it moves, its FLOPs and its matrix products."""

    kind: str  # gemm, conv, depthwise, attention, copy or memory
    dtype: str  # fp32, fp16, bf16, int8, fp8
    bytes: int
    flops: int = 0
    gemms: tuple[Gemm, ...] = ()
    macs: int = 0  # what the products really do (a causal mask skips part of the modelled ones)


def compute_dtype(record: OpRecord) -> str:
    """The dtype an op computes in: its first floating input's."""
    names = [SHORT_DTYPE_NAMES[d] for d in record.input_dtypes if d in SHORT_DTYPE_NAMES and d != "int8"]
    quantized = "int8" in record.input_dtypes[:2] and op_class(record) == "matmul"
    return "int8" if quantized and not names else names[0] if names else "fp32"


def tensor_bytes(shape: Shape, dtype: str) -> int:
    return math.prod(shape) * ELEMENT_BYTES.get(dtype, 4)


def kernels(record: OpRecord) -> list[Kernel]:
    """The kernels the op launches on a GPU, in order."""
    if not launches_kernel(record):
        return []
    name = record.op.removeprefix("aten.")
    cls = op_class(record)
    dtype = compute_dtype(record)
    cost = record.cost
    if name == "_native_multi_head_attention":
        q, k = record.input_shapes[0], record.input_shapes[1]  # (B, L, E), (B, S, E)
        return _multi_head_attention(record, dtype, q[0], q[1], k[1], q[-1])
    if name == "_transformer_encoder_layer_fwd":
        return _encoder_layer(record, dtype)
    if cls == "attention" and len(record.input_shapes) >= 3:
        return [_attention(record, dtype)]
    if cls in ("conv", "depthwise_conv"):
        return _convolution(record, dtype)
    if cls == "matmul":
        return [Kernel("gemm", dtype, cost.memory_access, cost.flops, tuple(_matmul_gemms(record)), cost.macs)]
    if cls == "norm" and "batch_norm" in name and "backward" not in name and len(record.output_shapes) >= 3:
        return _batch_norm(record, dtype)
    kind = "copy" if cls == "movement" and not _streams(record) else "memory"
    return [Kernel(kind, dtype, cost.memory_access, cost.flops)]


def weight_bytes(record: OpRecord) -> int:
    """The bytes of the weight an op reads: a convolution's second tensor, a matrix product's 2-D last operand
    (``x @ w.t()``, ``addmm(bias, x, w.t())``) or an expert product's; 0 for other ops."""
    cls = op_class(record)
    shapes, dtypes = record.input_shapes, record.input_dtypes
    if cls in ("conv", "depthwise_conv") and "backward" not in record.op and len(shapes) >= 2:
        index = 1
    elif cls == "matmul" and len(shapes) >= 2 and (len(shapes[-1]) == 2 or "grouped_mm" in record.op):
        index = len(shapes) - 1
    else:
        return 0
    return tensor_bytes(shapes[index], dtypes[index] if len(dtypes) > index else "float32")


def _streams(record: OpRecord) -> bool:
    """A dtype cast (an fp32 norm's upcast) or a concatenation of large contiguous pieces (an LLM's KV cache
    growing by a token): it streams, where other copies (a permuted tensor made contiguous, padding, gathers)
    read or write with strides. An H200 copies a contiguous tensor at 95% of an add's bandwidth
    (``gpu-truth/h200-calibration.json``: 3.88 and 4.08 TB/s). Records keep no strides, so a cast that also
    changes the layout (``.to(torch.float32, memory_format=torch.channels_last)``) is taken as streaming too."""
    name = record.op.removeprefix("aten.")
    if name == "_to_copy":
        return record.input_dtypes[:1] != record.output_dtypes[:1]
    if name not in ("cat", "stack") or not record.output_shapes or len(record.input_shapes) < 2:
        return False
    out = record.output_shapes[0]
    along = next((d for d, size in enumerate(out) if any(len(s) == len(out) and s[d] != size
                                                            for s in record.input_shapes)), 0)  # fmt: skip
    return math.prod(out[along:]) // max(len(record.input_shapes), 1) >= STREAMED_PIECE


def _output_bytes(record: OpRecord) -> int:
    if not record.output_shapes:
        return 0
    dtype = record.output_dtypes[0] if record.output_dtypes else "float32"
    return tensor_bytes(record.output_shapes[0], dtype)


def _matmul_gemms(record: OpRecord) -> list[Gemm]:
    """The product of a matrix op, from its output's shape and its MACs (K = MACs / (batch x M x N))."""
    macs = record.cost.macs
    if not macs or not record.output_shapes:
        return []
    out = record.output_shapes[0]
    batch = math.prod(out[:-2])
    m, n = (out[-2], out[-1]) if len(out) >= 2 else (math.prod(out), 1)
    return [Gemm(batch, m, n, max(1, macs // max(batch * m * n, 1)))]


def _convolution(record: OpRecord, dtype: str) -> list[Kernel]:
    if "backward" in record.op:
        return _convolution_backward(record, dtype)
    x, w = record.input_shapes[0], record.input_shapes[1]
    out = record.output_shapes[0]
    # weight (C_out, C_in / groups, k...) or, transposed, (C_in, C_out / groups, k...)
    groups = max(1, x[1] // w[1]) if w[0] == out[1] else max(1, out[1] // w[1])
    m, n = out[0] * math.prod(out[2:]), out[1] // groups
    k = max(1, record.cost.macs // max(groups * m * n, 1))
    cost = record.cost
    kind = _conv_kind(x[1] // groups)
    main = Kernel(kind, dtype, cost.memory_access, cost.flops, (Gemm(groups, m, n, k),), cost.macs)
    has_bias = len(record.input_shapes) >= 3 and len(record.input_shapes[2]) == 1
    return [main, Kernel("memory", dtype, 2 * _output_bytes(record), math.prod(out))] if has_bias else [main]


def _conv_kind(channels_per_group: int) -> str:
    """A convolution with fewer input channels per group than a tensor-core instruction takes (a depthwise one,
    and a 3-channel stem) runs as a direct kernel on the CUDA cores; any other as an implicit GEMM."""
    return "depthwise" if channels_per_group < TENSOR_CORE_GROUP_WIDTH else "conv"


def _convolution_backward(record: OpRecord, dtype: str) -> list[Kernel]:
    """dgrad, wgrad and the bias gradient, as far as the op's outputs say it computes them (an output with the
    input's shape, one with the weight's, a 1-D one)."""
    if len(record.input_shapes) < 3:
        return [Kernel("memory", dtype, record.cost.memory_access, record.cost.flops)]
    grad_out, x, w = record.input_shapes[:3]
    groups = max(1, x[1] // w[1]) if len(x) > 1 and w[1] else 1
    kind = _conv_kind(w[1])
    out_pixels = grad_out[0] * math.prod(grad_out[2:])
    in_pixels = x[0] * math.prod(x[2:])
    area = math.prod(w[2:])
    c_out, c_in = w[0] // groups, w[1]
    grad_bytes = tensor_bytes(grad_out, record.input_dtypes[0] if record.input_dtypes else "float32")
    weight_bytes = tensor_bytes(w, record.input_dtypes[2] if len(record.input_dtypes) > 2 else "float32")
    input_bytes = tensor_bytes(x, record.input_dtypes[1] if len(record.input_dtypes) > 1 else "float32")
    found: list[Kernel] = []
    outputs = list(record.output_shapes)
    if x in outputs and x != w:
        dgrad = Gemm(groups, in_pixels, c_in, c_out * area)
        found.append(Kernel(kind, dtype, grad_bytes + weight_bytes + input_bytes, 2 * dgrad.macs, (dgrad,), dgrad.macs))
    if w in outputs:
        wgrad = Gemm(groups, c_out, c_in * area, out_pixels)
        found.append(Kernel(kind, dtype, grad_bytes + input_bytes + weight_bytes, 2 * wgrad.macs, (wgrad,), wgrad.macs))
    if any(len(shape) == 1 for shape in outputs):
        found.append(Kernel("memory", dtype, grad_bytes, math.prod(grad_out)))
    return found or [Kernel("memory", dtype, record.cost.memory_access, record.cost.flops)]


def attention_gemms(q: Shape, k: Shape, v: Shape) -> list[Gemm]:
    """Q K^T and P V for queries (..., L, E), keys (..., S, E) and values (..., S, Ev), one product per head."""
    heads, queries, keys = math.prod(q[:-2]), q[-2], k[-2]
    return [Gemm(heads, queries, keys, q[-1]), Gemm(heads, queries, v[-1], keys)]


def _attention(record: OpRecord, dtype: str) -> Kernel:
    """A fused attention kernel, forward or backward, in the (B, H, L, E) layout or the lower-level kernels'
    (B, L, H, E)."""
    name = record.op.removeprefix("aten.")
    shapes = record.input_shapes[1:4] if "backward" in name else record.input_shapes[:3]
    q, k, v = shapes
    if name.startswith(("_flash_attention", "_efficient_attention")) and len(q) == 4:
        q, k, v = ((t[0], t[2], t[1], t[3]) for t in (q, k, v))
    if min(len(q), len(k), len(v)) < 2:
        return Kernel("memory", dtype, record.cost.memory_access, record.cost.flops)
    cost = record.cost
    return Kernel("attention", dtype, cost.memory_access, cost.flops, tuple(attention_gemms(q, k, v)), cost.macs)


def _heads(record: OpRecord, batch: int, queries: int, keys: int, embed: int, other_flops: int) -> int:
    """The head count of a fused attention op, from its FLOPs: they hold 5 per score for every head
    (counting/formulas/attention.py), beside 2 per MAC, the four projection biases and ``other_flops``."""
    biases = batch * (2 * queries + 2 * keys) * embed
    scores = record.cost.flops - 2 * record.cost.macs - biases - other_flops
    heads = scores // max(SOFTMAX_FLOPS * batch * queries * keys, 1)
    return heads if heads >= 1 and embed % heads == 0 else max(1, embed // HEAD_DIM)


def _multi_head_attention(
    record: OpRecord, dtype: str, batch: int, queries: int, keys: int, embed: int, other_flops: int = 0
) -> list[Kernel]:
    """QKV projection, bias and head split, fused attention, output projection (PyTorch's
    ``native_multi_head_attention`` on CUDA)."""
    heads = _heads(record, batch, queries, keys, embed, other_flops)
    element = ELEMENT_BYTES.get(record.input_dtypes[0] if record.input_dtypes else "float32", 4)
    rows = batch * queries
    qkv = Gemm(1, rows, 3 * embed, embed)
    proj = Gemm(1, rows, embed, embed)
    head_dim = embed // heads
    shape_q, shape_k = (batch, heads, queries, head_dim), (batch, heads, keys, head_dim)
    attention_macs = batch * heads * queries * keys * 2 * head_dim
    activations = rows * embed * element
    return [
        Kernel(
            "gemm", dtype, activations + 3 * embed * embed * element + 3 * activations, 2 * qkv.macs, (qkv,), qkv.macs
        ),
        Kernel("memory", dtype, 6 * activations, 3 * rows * embed),
        Kernel(
            "attention",
            dtype,
            4 * activations,
            2 * attention_macs + SOFTMAX_FLOPS * batch * heads * queries * keys,
            tuple(attention_gemms(shape_q, shape_k, shape_k)),
            attention_macs,
        ),
        Kernel("gemm", dtype, 2 * activations + embed * embed * element, 2 * proj.macs, (proj,), proj.macs),
    ]


def _encoder_layer(record: OpRecord, dtype: str) -> list[Kernel]:
    """The attention block, then add + layer norm, the two feed-forward products with their activation, and
    add + layer norm again. The feed-forward width comes from the MACs: 4 B L E^2 + 2 B L^2 E are attention's
    (projections and scores), the rest is 2 B L E F."""
    src = record.input_shapes[0]
    batch, tokens, embed = src[0], src[1], src[-1]
    rows = batch * tokens
    attention_macs = 4 * rows * embed * embed + 2 * batch * tokens * tokens * embed
    ffn = max(1, (record.cost.macs - attention_macs) // max(2 * rows * embed, 1))
    # non-MAC FLOPs beside attention's: feed-forward biases, activation, residual adds, two layer norms
    other_flops = rows * (ffn + embed) + rows * ffn + 2 * rows * embed + 16 * rows * embed
    element = ELEMENT_BYTES.get(record.input_dtypes[0] if record.input_dtypes else "float32", 4)
    activations = rows * embed * element
    first, second = Gemm(1, rows, ffn, embed), Gemm(1, rows, embed, ffn)
    add_norm = Kernel("memory", dtype, 3 * activations, 10 * rows * embed)
    return [
        *_multi_head_attention(record, dtype, batch, tokens, tokens, embed, other_flops),
        add_norm,
        Kernel(
            "gemm",
            dtype,
            activations + rows * ffn * element + embed * ffn * element,
            2 * first.macs,
            (first,),
            first.macs,
        ),
        Kernel("memory", dtype, 2 * rows * ffn * element, rows * ffn),
        Kernel(
            "gemm",
            dtype,
            activations + rows * ffn * element + embed * ffn * element,
            2 * second.macs,
            (second,),
            second.macs,
        ),
        add_norm,
    ]


def _batch_norm(record: OpRecord, dtype: str) -> list[Kernel]:
    """A batch norm that computes its statistics (training mode, the saved mean and inverse std are real
    outputs): a reduction over the input, then the normalisation."""
    saved = record.output_shapes[1]
    if not saved or math.prod(saved) == 0:  # eval mode: running statistics, one kernel
        return [Kernel("memory", dtype, record.cost.memory_access, record.cost.flops)]
    read = tensor_bytes(record.input_shapes[0], record.input_dtypes[0] if record.input_dtypes else "float32")
    return [
        Kernel("memory", dtype, read, record.cost.flops // 2),
        Kernel("memory", dtype, record.cost.memory_access, record.cost.flops - record.cost.flops // 2),
    ]


# FlashAttention-2's backward (Dao, 2023, algorithm 2): it recomputes Q K^T, then dV = P^T dO, dP = dO V^T,
# dQ = dS K and dK = dS^T Q: 5 products to the forward's 2; it reads Q, K, V, O and dO and writes dQ, dK, dV.
FLASH_BACKWARD_PRODUCTS = 2.5
FLASH_BACKWARD_BYTES = 2.25


def fused_attention(records: list[OpRecord], causal: bool) -> Kernel | None:
    """The one kernel a GPU runs for the math reference of an attention call (its forward records: Q K^T, the
    softmax, P V and what lies between); None when the records hold no such pair of products."""
    products = [r for r in records if op_class(r) == "matmul" and len(r.input_shapes) >= 2]
    if len(products) < 2 or min(len(s) for r in products[:1] + products[-1:] for s in r.input_shapes[:2]) < 2:
        return None
    first, last = products[0], products[-1]
    q, key_t, v = first.input_shapes[0], first.input_shapes[1], last.input_shapes[1]
    key = (*key_t[:-2], key_t[-1], key_t[-2])
    gemms = tuple(attention_gemms(q, key, v))
    queries, keys = q[-2], key[-2]
    macs = sum(g.macs for g in gemms) * attended_pairs(queries, keys, causal) // max(queries * keys, 1)
    # the call's dtype: its first input's (a CPU's math reference computes reduced precisions in fp32)
    dtype = records[0].input_dtypes[0] if records[0].input_dtypes else "float32"
    out = last.output_shapes[0] if last.output_shapes else q
    moved = sum(tensor_bytes(shape, dtype) for shape in (q, key, v, out))
    scores = math.prod(q[:-2]) * attended_pairs(queries, keys, causal)
    compute = SHORT_DTYPE_NAMES.get(dtype, "fp32")
    return Kernel("attention", compute, moved, 2 * macs + SOFTMAX_FLOPS * scores, gemms, macs)


def fused_attention_backward(forward: Kernel) -> Kernel:
    """The fused backward of a fused attention kernel (FlashAttention-2's)."""
    return Kernel(
        "attention",
        forward.dtype,
        round(FLASH_BACKWARD_BYTES * forward.bytes),
        round(FLASH_BACKWARD_PRODUCTS * forward.flops),
        forward.gemms,
        round(FLASH_BACKWARD_PRODUCTS * forward.macs),
    )


__getattr__ = renamed(__name__, {"DTYPE_NAMES": (SHORT_DTYPE_NAMES, "torchcost.units.SHORT_DTYPE_NAMES")})
