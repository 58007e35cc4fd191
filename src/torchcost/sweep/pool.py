"""A local pool of worker processes, each a fresh interpreter running one task at a time.

The parent hands each idle worker one task and waits on all of them. A worker that dies (a segfault, an
``os._exit``) or passes its time limit (then it is killed) costs only its own task, which becomes a row with
the reason, and a fresh worker takes its place. Workers are started with ``subprocess`` and talk over pipes
(``multiprocessing.connection``), so nothing of the caller's ``__main__`` runs in them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Generator, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path

from torchcost.sweep.output import SweepError
from torchcost.sweep.rows import Row, Task
from torchcost.sweep.worker import WorkerSettings, family, worker_name

STOP_WAIT_S = 5.0  # how long a killed worker may take to go
FAILED_STARTS = 3  # workers that die while starting, in a row, before the sweep gives up


class _Worker:
    def __init__(self, settings: WorkerSettings) -> None:
        task_read, task_write = os.pipe()
        row_read, row_write = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "torchcost.sweep.serve", str(task_read), str(row_write)],
            pass_fds=(task_read, row_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_environment(),
        )
        os.close(task_read)
        os.close(row_write)
        self.tasks = Connection(task_write, readable=False)
        self.rows = Connection(row_read, writable=False)
        with contextlib.suppress(BrokenPipeError):  # it died at once: its end of the pipe says so
            self.tasks.send(settings)
        self.ready = False
        self.task: Task | None = None
        self.given = 0.0  # when the task was handed over (time.monotonic)

    def give(self, task: Task) -> None:
        self.task, self.given = task, time.monotonic()
        with contextlib.suppress(BrokenPipeError):  # it just died: its end of the pipe says so
            self.tasks.send(task)

    def failed(self, error: str) -> Row:
        """The row of the task this worker was running when it had to go."""
        assert self.task is not None
        seconds = time.monotonic() - self.given
        return Row.failed(
            self.task, error, family(self.task.spec), seconds=seconds, worker=worker_name(self.process.pid)
        )

    def stop(self) -> str:
        """Kill the process; say how it ended."""
        self.tasks.close()
        self.rows.close()
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait(STOP_WAIT_S)
        return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def _environment() -> dict[str, str]:
    """This environment, with the directory torchcost was imported from first on the workers' path."""
    source = str(Path(__file__).resolve().parents[2])  # the folder torchcost is imported from
    paths = [source, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def run_pool(
    tasks: Sequence[Task], settings: WorkerSettings, workers: int, timeout: float | None
) -> Generator[Row, None, None]:
    """Rows of ``tasks`` as they finish, on ``workers`` processes."""
    todo = deque(tasks)
    pool = [_Worker(settings) for _ in range(max(1, min(workers, len(todo))))]
    starts = _Starts()
    try:
        while todo or any(w.task is not None for w in pool):
            for worker in pool:
                if worker.ready and worker.task is None and todo:
                    worker.give(todo.popleft())
            deadlines = [w.given + timeout for w in pool if w.task is not None and timeout]
            wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            for conn in wait([w.rows for w in pool], wait_s):
                index = next(i for i, w in enumerate(pool) if w.rows is conn)
                row = _receive(pool, index, settings, starts)
                if row is not None:
                    yield row
            for index, worker in enumerate(pool):
                if worker.task is not None and timeout and time.monotonic() > worker.given + timeout:
                    worker.stop()
                    pool[index] = _Worker(settings)
                    yield worker.failed(f"timed out after {timeout:g} s (--timeout); its worker was killed")
    finally:
        for worker in pool:
            worker.stop()


class _Starts:
    """Whether any worker came up, and how many died while starting since one last did."""

    def __init__(self) -> None:
        self.any_ready = False
        self.failed_in_a_row = 0

    def failed(self, how: str) -> None:
        self.failed_in_a_row += 1
        if not self.any_ready or self.failed_in_a_row >= FAILED_STARTS:
            why = "python -c 'import torchcost.sweep.serve' shows why"
            raise SweepError(f"worker processes die while starting ({how}); {why}")

    def ready(self) -> None:
        self.any_ready, self.failed_in_a_row = True, 0


def _receive(pool: list[_Worker], index: int, settings: WorkerSettings, starts: _Starts) -> Row | None:
    """Read one message from ``pool[index]``; replace the worker if it died."""
    worker = pool[index]
    try:
        kind, value = worker.rows.recv()
    except (EOFError, OSError):
        how = worker.stop()
        if worker.task is None:
            starts.failed(how)
        pool[index] = _Worker(settings)
        if worker.task is None:
            return None
        return worker.failed(f"the worker process died ({how}) while running this model; it was replaced")
    if kind == "ready":
        worker.ready = True
        starts.ready()
        return None
    worker.task = None
    row: Row = value
    return row
