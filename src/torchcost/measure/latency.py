"""Measured latency of a whole model, with ``torch.utils.benchmark`` doing the timing.

Warm-up, device synchronisation and repetition until the estimate is stable are
``torch.utils.benchmark.Timer.adaptive_autorange``'s; this module chooses the conditions (eval mode, no grad,
thread count, cuDNN autotuning), sweeps batch sizes and summarises the runs.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from torchcost.display import Shown
from torchcost.errors import ProfilingError
from torchcost.hardware.detect import cpu_model_name
from torchcost.measure.timing import progress_bar, timing_module
from torchcost.prepare import InputSize, ModelState, prepare, with_batch

UNSTABLE_CV = 0.05  # a coefficient of variation above 5% makes a single number hard to trust


@dataclass(frozen=True)
class BatchLatency:
    """Statistics of the timed runs at one batch size. Times in seconds per forward pass."""

    batch: int | None  # None when the inputs were used as given
    median_s: float
    mean_s: float
    iqr_s: float
    p90_s: float
    p99_s: float
    cv: float  # standard deviation / mean of the measured blocks
    runs: int  # forward passes timed (blocks x runs per block)
    samples_per_s: float | None

    @property
    def unstable(self) -> bool:
        return self.cv > UNSTABLE_CV


@dataclass(repr=False)
class Latency(Shown):
    """Measured latency, per batch size, with the conditions it was measured under."""

    device: str
    device_name: str
    threads: int
    dtype: str
    torch_version: str
    cudnn_benchmark: bool | None
    flush_denormal: bool = True
    by_batch: list[BatchLatency] = field(default_factory=list)
    load_average: float | None = None  # other work on the machine when timing began (1-minute load average)
    cpus: int | None = None

    def _first(self) -> BatchLatency:
        return self.by_batch[0]

    @property
    def median_s(self) -> float:
        return self._first().median_s

    @property
    def p90_s(self) -> float:
        return self._first().p90_s

    @property
    def p99_s(self) -> float:
        return self._first().p99_s

    @property
    def iqr_s(self) -> float:
        return self._first().iqr_s

    @property
    def cv(self) -> float:
        return self._first().cv

    @property
    def runs(self) -> int:
        return self._first().runs

    def busy(self) -> bool:
        """Other processes wanted the CPUs this measurement needed (timing threads wait for each other)."""
        if self.load_average is None or self.cpus is None or self.device != "cpu":
            return False
        return self.load_average + self.threads > self.cpus + 0.5

    def warnings(self) -> list[str]:
        notes = []
        if self.busy():
            notes.append(
                f"the machine was busy: load average {self.load_average:.1f} on {self.cpus} CPUs while timing with "
                f"{self.threads} threads; threads that share a core wait for each other, so times can be inflated "
                "many-fold (use --threads 1, or measure on an idle machine)"
            )
        for b in self.by_batch:
            if b.unstable:
                batch = "as given" if b.batch is None else b.batch
                notes.append(
                    f"batch {batch}: spread is high (CV {b.cv:.1%} > {UNSTABLE_CV:.0%}); "
                    "close other work or raise --min-time"
                )
        return notes

    def to_dict(self) -> dict[str, Any]:
        first = self._first()
        return {
            "device": self.device,
            "device_name": self.device_name,
            "threads": self.threads,
            "dtype": self.dtype,
            "torch_version": self.torch_version,
            "cudnn_benchmark": self.cudnn_benchmark,
            "flush_denormal": self.flush_denormal,
            "load_average": self.load_average,
            "cpus": self.cpus,
            "median_s": first.median_s,
            "p90_s": first.p90_s,
            "p99_s": first.p99_s,
            "iqr_s": first.iqr_s,
            "cv": first.cv,
            "runs": first.runs,
            "by_batch": [asdict(b) for b in self.by_batch],
            "warnings": self.warnings(),
        }


def summarize(block_times: Sequence[float], runs_per_block: int, batch: int | None) -> BatchLatency:
    """Statistics over per-block mean times (each block is ``runs_per_block`` forward passes)."""
    times = sorted(block_times)
    mean = statistics.fmean(times)
    deciles = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else [times[0]] * 99
    quartiles = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else [times[0]] * 3
    median = statistics.median(times)
    return BatchLatency(
        batch=batch,
        median_s=median,
        mean_s=mean,
        iqr_s=quartiles[2] - quartiles[0],
        p90_s=deciles[89],
        p99_s=deciles[98],
        cv=statistics.stdev(times) / mean if len(times) > 1 and mean > 0 else 0.0,
        runs=len(times) * runs_per_block,
        samples_per_s=batch / median if batch and median > 0 else None,
    )


def measure(
    model: nn.Module,
    *inputs: Any,
    input_size: InputSize | None = None,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    batch_sizes: Sequence[int] | None = None,
    threads: int | None = None,
    warmup: int = 3,
    min_time: float = 1.0,
    max_time: float = 10.0,
    stability: float = 0.05,
    flush_denormal: bool = True,
    progress: bool = True,
    **kwargs: Any,
) -> Latency:
    """Measure the forward latency of ``model(*inputs, **kwargs)`` in eval mode under ``inference_mode``.

    Args:
        batch_sizes: sweep these batch sizes (the first sample repeated along dim 0); default: as given.
        threads: intra-op CPU threads (default: ``torch.get_num_threads()``); always reported.
        warmup: untimed forward passes first (cuDNN autotuning, allocator, caches).
        min_time, max_time: seconds of timed runs per batch size, at least and at most.
        stability: stop once the IQR is below this fraction of the median (``adaptive_autorange``).
        flush_denormal: treat denormal floats as zero while timing (CPU). Randomly initialised models often
            produce denormal activations, which some CPUs process 10-100x slower than trained weights would.
        progress: show a progress bar (rich) while measuring.
    The model is left as it was found; a copy is used when ``device`` or ``dtype`` differ from the model's.
    """
    prepared = prepare(model, inputs, kwargs, input_size, dtype, device)
    if prepared.device.type == "meta":
        raise ProfilingError("latency cannot be measured on the meta device; pass device='cpu' or 'cuda'")
    threads = threads or torch.get_num_threads()
    cudnn_benchmark = True if prepared.device.type == "cuda" else None
    latency = Latency(
        device=str(prepared.device),
        device_name=device_name(prepared.device),
        threads=threads,
        dtype=str(prepared.dtype or _first_float_dtype(prepared.model)).removeprefix("torch."),
        torch_version=torch.__version__,
        cudnn_benchmark=cudnn_benchmark,
        flush_denormal=flush_denormal,
        load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    )
    sizes: list[int | None] = list(batch_sizes) if batch_sizes else [None]
    settings = _Settings(threads, warmup, min_time, max_time, stability)
    state = ModelState(model)
    try:
        prepared.model.eval()
        with (
            measurement_conditions(threads, cudnn_benchmark, flush_denormal),
            progress_bar(progress) as bar,
        ):
            task = bar.add_task("measuring latency", total=len(sizes))
            for batch in sizes:
                tree = (prepared.inputs, prepared.kwargs)
                args, kw = tree if batch is None else with_batch(tree, batch)
                latency.by_batch.append(_time_one(prepared.model, args, kw, settings, batch))
                bar.advance(task)
    finally:
        state.restore()
    return latency


@dataclass(frozen=True)
class _Settings:
    threads: int
    warmup: int
    min_time: float
    max_time: float
    stability: float


def _time_one(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], settings: _Settings, batch: int | None
) -> BatchLatency:
    def forward() -> None:
        with torch.inference_mode():
            model(*args, **kwargs)

    for _ in range(settings.warmup):
        forward()
    timer = timing_module().Timer(stmt="forward()", globals={"forward": forward}, num_threads=settings.threads)
    result = timer.adaptive_autorange(
        threshold=settings.stability, min_run_time=settings.min_time, max_run_time=settings.max_time
    )
    return summarize(result.times, result.number_per_run, batch)


@contextlib.contextmanager
def measurement_conditions(threads: int, cudnn_benchmark: bool | None, flush_denormal: bool) -> Iterator[None]:
    saved_threads, saved_cudnn = torch.get_num_threads(), torch.backends.cudnn.benchmark
    torch.set_num_threads(threads)
    torch.set_flush_denormal(flush_denormal)
    if cudnn_benchmark is not None:
        torch.backends.cudnn.benchmark = cudnn_benchmark
    try:
        yield
    finally:
        torch.set_num_threads(saved_threads)
        torch.backends.cudnn.benchmark = saved_cudnn
        torch.set_flush_denormal(False)  # PyTorch's default


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model_name() or platform.processor() or "cpu"


def _first_float_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
