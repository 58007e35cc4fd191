"""One task in a worker process (of the local pool or of Ray): build the model, count it, predict, make its row.

Every failure of the model becomes the row's ``error``; only a crash of the process itself (a segfault, an
``os._exit``) or a hang escapes, and the pool or Ray handles those.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import resource
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchcost.errors import renamed
from torchcost.from_spec import profile_spec
from torchcost.hardware import Hardware
from torchcost.inputs import InputOptions
from torchcost.predict import predict
from torchcost.prepare import meta_then, random_inputs, with_batch
from torchcost.profiler import profile
from torchcost.records import Profile
from torchcost.sources import presets
from torchcost.sources.base import build_on
from torchcost.sources.files import import_file
from torchcost.sweep.rows import Row, SpaceEntry, Task
from torchcost.sweep.specs import entry_name

ERROR_CHARS = 500  # an error message is kept to this length, on one line


@dataclass(frozen=True)
class WorkerSettings:
    """What every task of a sweep shares."""

    hardware: dict[str, Hardware] = field(default_factory=dict)  # column name -> device to predict on
    device: str | None = None  # None: meta, and cpu when the model needs real data
    max_memory: int | None = None  # bytes of address space one task may add to its worker
    trust_pickle: bool = False
    preload: tuple[str, ...] = ()  # the model packages the tasks need, imported before the first task


def start_worker(settings: WorkerSettings) -> None:
    """Ready a worker process: one thread (the pool or Ray runs one worker per core), the model packages
    imported and a first count done (it imports much of torch lazily: seconds), so that neither a task's time
    nor its time limit includes them."""
    torch.set_num_threads(1)
    for package in settings.preload:
        with contextlib.suppress(ImportError):  # a task that needs it says so in its row
            importlib.import_module(package)
    profile(nn.Linear(1, 1), torch.zeros(1, 1), device="meta")


def run_task(task: Task, settings: WorkerSettings) -> Row:
    """The row of one task; never raises for a failure of the model."""
    start = time.perf_counter()
    try:
        with memory_limit(settings.max_memory), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = _profile(task, settings)
            row = _row(task, result, settings)
    except (Exception, SystemExit) as exc:  # a model's code may call sys.exit too
        row = Row.failed(task, describe(exc, settings), family=family(task.spec))
    row.seconds = time.perf_counter() - start
    row.worker = worker_name()
    row.worker_peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return row


def worker_name(pid: int | None = None) -> str:
    """``host:pid`` of this process, or of the local process ``pid``."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def _row(task: Task, result: Profile, settings: WorkerSettings) -> Row:
    row = Row(task.spec, task.input_size, task.batch, task.dtype)
    row.family = family(task.spec) or result.modules[0].type
    row.inputs = "; ".join(f"{'x'.join(map(str, spec.shape))} {spec.dtype}" for spec in result.inputs)
    row.device = result.device
    costs(row, result)
    for name, device in settings.hardware.items():
        with contextlib.suppress(ValueError):  # no peak for this dtype on this device: the cell stays empty
            row.predicted_s[name] = predict(result, device).latency_s
    return row


def costs(row: Row, result: Profile) -> None:
    """The counted columns of a row (a new quantity, such as peak memory, is filled in here)."""
    row.params = result.params.total
    row.size_bytes = result.size_bytes
    row.macs = result.macs
    row.flops = result.flops
    row.memory_access_bytes = result.memory_access.total
    row.uncounted_calls = sum(op.count for op in result.uncounted)


def family(spec: str) -> str:
    """The architecture family of a hub model: its timm or torchvision module, or its transformers model type.
    Empty for other specs (the caller then uses the model's class name)."""
    source, _, name = spec.partition(":")
    with contextlib.suppress(Exception):  # an unknown name has no family; its row says why
        if source == "timm":
            import timm

            return str(timm.models.model_entrypoint(timm.models.get_arch_name(name)).__module__).rsplit(".", 1)[-1]
        if source == "torchvision":
            import torchvision

            return str(torchvision.models.get_model_builder(name).__module__).rsplit(".", 1)[-1]
        if source == "hf" and "/" not in name and not name.endswith(".json"):  # a type, not a config's path
            return name
    shipped = presets.preset(spec.removeprefix("hf:"))  # a checkpoint preset, by name or Hub id
    return shipped.model_type if shipped is not None else ""


def describe(exc: BaseException, settings: WorkerSettings) -> str:
    """The error on one line: its type and message, and what the memory guard had to do with it."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(text) > ERROR_CHARS:
        text = text[: ERROR_CHARS - 3] + "..."
    out_of_memory = isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text
    if out_of_memory and settings.max_memory is not None:
        text = f"over the memory limit of {settings.max_memory / 2**30:.3g} GiB per model (--max-memory): {text}"
    return text


@contextlib.contextmanager
def memory_limit(limit: int | None) -> Iterator[None]:
    """Let this process's address space grow by at most ``limit`` bytes (a soft RLIMIT_AS, restored after):
    an allocation past it fails with an out-of-memory error instead of exhausting the machine."""
    size = _address_space()
    if limit is None or size is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = size + limit if hard == resource.RLIM_INFINITY else min(size + limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except OSError:
        return None  # not Linux: no guard
    return pages * os.sysconf("SC_PAGE_SIZE")


def _profile(task: Task, settings: WorkerSettings) -> Profile:
    if task.entry is not None:
        return _profile_entry(task, task.entry, settings)
    options = InputOptions(sizes=task.shapes, batch=task.batch)
    return profile_spec(
        task.spec, options, device=settings.device, dtype=task.dtype or None, trust_pickle=settings.trust_pickle
    )


def _profile_entry(task: Task, entry: SpaceEntry, settings: WorkerSettings) -> Profile:
    """A search-space entry: built on meta (from a builder), and on the cpu if counting needs real data."""
    model, inputs = _entry(entry)
    args, kwargs = _split(inputs)
    if task.shapes is not None:
        args = random_inputs(task.shapes, torch.float32, torch.device("cpu"))
    if task.batch is not None:
        args, kwargs = with_batch((args, kwargs), task.batch)

    def count(run_on: str) -> Profile:
        built = model if isinstance(model, nn.Module) else build_on(torch.device(run_on), model)
        if not isinstance(built, nn.Module):
            raise TypeError(f"the builder of {task.spec} returned a {type(built).__name__}, not an nn.Module")
        return profile(built, *args, dtype=task.dtype or None, device=run_on, **kwargs)

    # a row's error is the cpu's when meta's was a mismatch too: PyTorch's CPU kernels say more ("expected input
    # [1, 3, 32, 32] to have 4 channels") than their meta functions
    result = count(settings.device) if settings.device else meta_then("cpu", count, mismatch_too=True)
    result.model = task.spec
    return result


def _split(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A space's example inputs: a dict of keyword inputs, a tuple of positional ones, or one input."""
    if isinstance(inputs, dict):
        return (), inputs
    return (inputs if isinstance(inputs, tuple) else (inputs,)), {}


_spaces: dict[Path, Any] = {}  # each worker imports a search-space file once


def _entry(entry: SpaceEntry) -> tuple[Any, Any]:
    """The model (or builder) and the example inputs of one entry, from a fresh run of the space's generator."""
    if entry.path not in _spaces:
        _spaces[entry.path] = import_file(entry.path)
    space = getattr(_spaces[entry.path], entry.function)
    if not inspect.isgeneratorfunction(space):
        raise TypeError(f"{entry.spec} is no longer a generator function")
    for index, item in enumerate(space()):
        if index == entry.index:
            if entry_name(item, entry.spec, index) != entry.name:
                raise LookupError(f"{entry.spec} changed: item {index} is no longer {entry.name!r}")
            return item[1], item[2]
    raise LookupError(f"{entry.spec} changed: it no longer yields {entry.name!r}")


__getattr__ = renamed(__name__, {"Settings": WorkerSettings})
