"""What timing runs share: ``torch.utils.benchmark``, imported on first use (it pulls in
``torch.utils.cpp_extension``, which logs a warning about CUDA_HOME on machines without CUDA; that line says
nothing about the measurement), and a progress bar that stays off the report's output."""

from __future__ import annotations

import logging
from types import ModuleType

from rich.console import Console
from rich.progress import Progress


def progress_bar(shown: bool = True) -> Progress:
    """A transient progress bar on stderr, only on a terminal (elsewhere rich would leave a blank line)."""
    console = Console(stderr=True)
    return Progress(console=console, disable=not shown or not console.is_terminal, transient=True)


def timing_module() -> ModuleType:
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    return benchmark
