"""The optimizer's step as a CUDA run makes it: multi-tensor (foreach) kernels over all parameters at once.

On CUDA, PyTorch's optimizers default to their foreach implementation (``torch/optim/optimizer.py``,
``_default_to_fused_or_foreach``): AdamW's step is eight ``torch._foreach_*`` calls (``_multi_tensor_adam`` in
``torch/optim/adam.py``: mul_ for the weight decay, lerp_, mul_, addcmul_, sqrt, div_, add_, addcdiv_), each over
every parameter, plus a Python loop that reads each step counter (``_get_value``). A profile counted on meta or a
CPU runs the per-parameter loop instead (``_single_tensor_adam``): the same element-wise ops, once per parameter.
This maps the loop back to the foreach calls: the records of one op name are the calls of that op, as many
calls as the op appears per parameter.

Each foreach call launches ``max(ceil(tensors / 110), ceil(chunks / 320))`` kernels of 65,536-element chunks
(``aten/src/ATen/native/cuda/MultiTensorApply.cuh``: kChunkSize, depth_to_max_tensors[0],
depth_to_max_blocks[0]) and moves the same bytes as the loop.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from torchcost.records import OpRecord

CHUNK_ELEMENTS = 65536
MAX_TENSORS_PER_LAUNCH = 110
MAX_BLOCKS_PER_LAUNCH = 320


@dataclass(frozen=True)
class ForeachCall:
    """One multi-tensor call standing for the records of its op over many parameters."""

    op: str
    records: tuple[int, ...]
    tensors: int
    bytes: int
    flops: int
    chunks: int  # 65,536-element chunks over its tensors

    @property
    def launches(self) -> int:
        return max(1, math.ceil(self.tensors / MAX_TENSORS_PER_LAUNCH), math.ceil(self.chunks / MAX_BLOCKS_PER_LAUNCH))


def is_scalar(record: OpRecord) -> bool:
    """An op on 0-d tensors only: a step counter on the CPU, or reading it (``.item()``); host work alone."""
    return all(len(shape) == 0 for shape in (*record.input_shapes, *record.output_shapes))


def _chunks(record: OpRecord) -> int:
    return sum(math.ceil(math.prod(shape) / CHUNK_ELEMENTS) for shape in record.output_shapes[:1] or ((1,),))


def foreach_calls(indexed: list[tuple[int, OpRecord]]) -> list[ForeachCall]:
    """The foreach calls a CUDA run makes for the per-parameter loop's records (scalar records left out), in
    the order their ops first appear."""
    loop = [(i, r) for i, r in indexed if not is_scalar(r)]
    counts = Counter(r.op for _, r in loop)
    if not counts:
        return []
    parameters = min(counts.values())
    grouped: dict[tuple[str, int], list[tuple[int, OpRecord]]] = {}
    seen: Counter[str] = Counter()
    for index, record in loop:
        calls = max(1, round(counts[record.op] / parameters))
        grouped.setdefault((record.op, seen[record.op] % calls), []).append((index, record))
        seen[record.op] += 1
    return [
        ForeachCall(
            op=op.replace("aten.", "aten._foreach_", 1),
            records=tuple(i for i, _ in members),
            tensors=len(members),
            bytes=sum(r.cost.memory_access for _, r in members),
            flops=sum(r.cost.flops for _, r in members),
            chunks=sum(_chunks(r) for _, r in members),
        )
        for (op, _), members in grouped.items()
    ]


def as_call(index: int, record: OpRecord) -> ForeachCall:
    """A multi-tensor record as counted (a profile of a foreach or fused optimizer). An in-place call returns
    nothing: its first list is then taken as half its input tensors (a list and one operand list)."""
    shapes = record.output_shapes or record.input_shapes[: max(len(record.input_shapes) // 2, 1)]
    tensors = max(len(shapes), 1)
    chunks = sum(math.ceil(math.prod(shape) / CHUNK_ELEMENTS) for shape in shapes)
    return ForeachCall(record.op, (index,), tensors, record.cost.memory_access, record.cost.flops, chunks)
