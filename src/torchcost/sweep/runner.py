"""``sweep()``: every model the specs name, at every grid point, in worker processes or on Ray, into one table."""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from torchcost.hardware import Hardware
from torchcost.hardware import hardware as find_hardware
from torchcost.predict import rates_for
from torchcost.prepare import as_dtype
from torchcost.sweep import specs as spec_lists
from torchcost.sweep.output import RowWriter, SweepError, check_path, read_rows
from torchcost.sweep.pool import run_pool
from torchcost.sweep.ray_runner import require_ray, run_ray
from torchcost.sweep.rows import Row, Shape, Task, columns
from torchcost.sweep.worker import WorkerSettings

DEFAULT_TIMEOUT_S = 300.0  # per model; the slowest timm model counts on meta in seconds
PACKAGES = {"timm": "timm", "torchvision": "torchvision", "hf": "transformers"}  # what each source imports
MEMORY_SHARE = 0.8  # by default the workers may together take this share of the machine's memory


@dataclass
class SweepResult:
    """The whole table (rows already in the output when resuming, then the new ones) and what this run did."""

    rows: list[Row]
    hardware: list[str]  # the prediction columns, in order
    done: int  # rows this run added
    failed: int  # of which failed
    skipped: int  # tasks left out because their rows were already in the output (--resume)
    seconds: float


def sweep(
    specs: Sequence[str],
    out: str | Path | None = None,
    *,
    input_sizes: Sequence[Sequence[Shape]] | None = None,
    batches: Sequence[int] | None = None,
    dtypes: Sequence[str] | None = None,
    hardware: Sequence[str] = (),
    device: str | None = None,
    workers: int | None = None,
    ray: bool | str = False,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    max_memory: int | None = None,
    resume: bool = False,
    trust_pickle: bool = False,
    progress: bool = False,
) -> SweepResult:
    """Profile every model ``specs`` name (see ``torchcost.sweep.specs``) at every grid point, one row each.

    Args:
        out: write the rows to this ``.csv``, ``.jsonl`` or ``.parquet`` file as they finish.
        input_sizes, batches, dtypes: the grid; each grid point of ``input_sizes`` is a list of shapes (one per
            positional input). Left out, each model takes its own default.
        hardware: add the predicted latency on each of these devices (``"h100"``, ``"l4"``, ``"local"``).
        device: count on this device; by default on meta, and on the cpu when a model needs real data.
        workers: worker processes (default: one per CPU); with a local Ray, its CPUs.
        ray: run on Ray: ``True`` starts a local Ray, a string is the address of a cluster (``"auto"``).
        timeout: seconds one model may take; its worker is then killed, and the row says so.
        max_memory: bytes of memory one model may add to its worker (0: no limit); by default
            80% of this machine's memory shared among the workers. Not applied on cuda devices.
        resume: keep the rows already in ``out`` and run only the tasks that have none.
        trust_pickle: allow whole pickled models (this runs code from the files).
        progress: show a progress bar (on stderr) with done, failed and skipped counts and the time left.
    """
    start = time.perf_counter()
    path = Path(out) if out is not None else None
    if path is not None:
        check_path(path)
    if resume and path is None:
        raise SweepError("--resume needs --out: the rows to resume from")
    if ray is not False:
        require_ray()
    workers = workers or os.cpu_count() or 1
    for dtype in dtypes or []:
        as_dtype(dtype)  # an unknown name fails here, before anything runs
    todo = spec_lists.tasks(spec_lists.expand(specs), input_sizes, batches, dtypes)
    if not todo:
        raise SweepError("no models to sweep: the specs name none")
    limit = _memory_limit(max_memory, workers, device)
    settings = WorkerSettings(_hardware(hardware), device, limit, trust_pickle, _packages(todo))
    names = list(settings.hardware)
    kept = _kept_rows(path, names) if resume and path is not None else []
    done_keys = {row.key for row in kept}
    remaining = [task for task in todo if task.key not in done_keys]
    result = SweepResult(kept, names, 0, 0, len(todo) - len(remaining), 0.0)
    if remaining:
        rows = _run(remaining, settings, workers, ray, timeout)
        writer = RowWriter(path, columns(names), append=resume) if path is not None else None
        try:
            for row in _with_progress(rows, len(remaining), result, progress):
                if writer is not None:
                    writer.write(row)
                result.rows.append(row)
                result.done += 1
                result.failed += not row.ok
        finally:
            rows.close()  # stops the workers, also on Ctrl-C
            if writer is not None:
                writer.close()
    result.seconds = time.perf_counter() - start
    return result


def _run(
    tasks: list[Task], settings: WorkerSettings, workers: int, ray: bool | str, timeout: float | None
) -> Generator[Row, None, None]:
    if ray is False:
        return run_pool(tasks, settings, workers, timeout)
    return run_ray(tasks, settings, None if ray is True else ray, workers, timeout)


def _hardware(names: Sequence[str]) -> dict[str, Hardware]:
    resolved = {}
    for name in names:
        device = find_hardware(name)
        try:
            rates_for(device)
        except ValueError as exc:
            raise SweepError(f"--hardware {name}: {exc}") from None
        resolved[name] = device
    return resolved


def _packages(tasks: list[Task]) -> tuple[str, ...]:
    """The model packages the tasks' sources need (``hf:`` is transformers)."""
    sources = {task.spec.partition(":")[0] for task in tasks if task.entry is None}
    return tuple(PACKAGES[source] for source in sorted(sources) if source in PACKAGES)


def _memory_limit(max_memory: int | None, workers: int, device: str | None) -> int | None:
    if max_memory == 0 or (device or "").startswith("cuda"):  # CUDA reserves a vast address space of its own
        return None
    if max_memory is not None:
        return max_memory
    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * MEMORY_SHARE / workers)


def _kept_rows(path: Path, hardware: list[str]) -> list[Row]:
    rows, found = read_rows(path)
    if found is not None and found != columns(hardware):
        raise SweepError(
            f"{path} has other columns than this sweep ({', '.join(found)}); resume with the same --hardware, "
            "or write to a new --out"
        )
    return rows


def _with_progress(rows: Iterator[Row], total: int, result: SweepResult, show: bool) -> Iterator[Row]:
    if not show:
        yield from rows
        return
    counts = TextColumn("done {task.fields[done]}, failed {task.fields[failed]}, skipped {task.fields[skipped]}")
    bar = Progress(
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        counts,
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with bar:
        task = bar.add_task("sweep", total=total, done=0, failed=0, skipped=result.skipped)
        for row in rows:
            yield row
            bar.update(task, advance=1, done=result.done, failed=result.failed)
