"""``torch.utils.benchmark``, imported on first use: it pulls in ``torch.utils.cpp_extension``, which logs a
warning about CUDA_HOME on machines without CUDA; that line says nothing about the measurement."""

from __future__ import annotations

import logging
from types import ModuleType


def timing_module() -> ModuleType:
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    return benchmark
