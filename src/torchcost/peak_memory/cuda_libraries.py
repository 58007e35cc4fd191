"""Memory a CUDA run holds besides its tensors: the cuBLAS workspaces, which go through the caching allocator
(so ``memory_allocated()`` counts them), and the CUDA context, which does not (only ``nvidia-smi`` shows it).

cuBLAS (``aten/src/ATen/cuda/CublasHandlePool.cpp``): each thread that calls cuBLAS reserves its own handle
(``DeviceThreadHandlePool``), and each (handle, stream) pair gets one workspace from the caching allocator,
kept for the life of the process. Its size is ``CUBLAS_WORKSPACE_CONFIG`` (``:SIZE:COUNT`` pairs, SIZE in KiB:
the sum of SIZE x COUNT) or, by default, 32 MiB (``:4096:8``) on compute capability 9, 10, 11 and 12 and
``:4096:2:16:8`` (8 MiB + 128 KiB) on older GPUs. cuBLASLt shares that workspace by default
(``TORCH_CUBLASLT_UNIFIED_WORKSPACE``). A training step calls cuBLAS from two threads: the forward and the
optimizer from the caller's, backward from autograd's thread for the device (``torch/csrc/autograd/engine.cpp``
runs each device's backward work on a thread of its own).
"""

from __future__ import annotations

import os
import re

from torchcost.peak_memory.tracker import Life, Lifetimes

KIB = 1024
WORKSPACE_CONFIG = "CUBLAS_WORKSPACE_CONFIG"
LARGE_WORKSPACE_MAJORS = (9, 10, 11, 12)  # compute capabilities whose default workspace is :4096:8
LARGE_WORKSPACE = 4096 * KIB * 8  # :4096:8, 32 MiB
SMALL_WORKSPACE = 4096 * KIB * 2 + 16 * KIB * 8  # :4096:2:16:8, 8 MiB + 128 KiB
CUBLAS_OPS = frozenset(
    f"aten.{name}"
    for name in ("mm", "addmm", "bmm", "baddbmm", "addbmm", "addmv", "mv", "dot", "vdot", "addr", "_addmm_activation")
)  # ATen ops whose CUDA kernels call cuBLAS (aten/src/ATen/native/cuda/Blas.cpp)
# The CUDA context and the kernels loaded into it, which nvidia-smi shows and the allocator does not: with lazy
# module loading (PyTorch's default since CUDA 11.7) reports range from 287 MB (pytorch/pytorch#86509) to
# 426 MiB (unslothai/unsloth-zoo#1053, torch 2.10, CUDA 13); libraries' kernels add to it as they load. An
# allowance, not a measurement: bench/memory_accuracy.py --device cuda measures it on the GPU at hand.
CONTEXT_ALLOWANCE = 512 * KIB * KIB


def cublas_workspace_bytes(capability: tuple[int, int] | None, config: str | None = None) -> int:
    """Bytes of one cuBLAS workspace on a GPU of this compute capability (None: unknown, taken as one with the
    32 MiB default, the larger), under ``CUBLAS_WORKSPACE_CONFIG`` ``config`` (None: the environment's)."""
    config = os.environ.get(WORKSPACE_CONFIG) if config is None else config
    default = (
        SMALL_WORKSPACE if capability is not None and capability[0] not in LARGE_WORKSPACE_MAJORS else LARGE_WORKSPACE
    )
    pairs = re.findall(r":([0-9]+):([0-9]+)", config or "")
    if not pairs:
        return default
    return sum(int(size) * KIB * int(count) for size, count in pairs)


def add_cublas_workspaces(seen: Lifetimes, workspace: int) -> int:
    """Add one workspace of ``workspace`` bytes, alive from the start (kept from an earlier step), for each
    thread that calls cuBLAS in the run; the number added."""
    threads = {"backward" if step.phase == "backward" else "caller" for step in seen.steps if step.op in CUBLAS_OPS}
    for _ in threads:
        seen.lives.append(Life(workspace, 0, "start", (), "library_workspace"))
    return len(threads)
