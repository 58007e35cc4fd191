"""The same tasks on Ray: on an existing cluster (``ray.init(address=...)``) or on a local Ray.

One Ray actor per CPU of the cluster plays the part of a pool worker: Ray places, starts and connects them;
this module hands each idle actor one task, takes each row as it comes back (``ray.wait``), and kills
(``ray.kill``) and replaces an actor whose task passes its time limit or that dies. The clock starts when an
actor that is up gets its task, so starting a worker process is not counted. Every node needs torchcost and
the model packages installed, and a search-space file at the same path.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from torchcost.sweep.output import SweepError
from torchcost.sweep.rows import Row, Task
from torchcost.sweep.worker import WorkerSettings, family, run_task, start_worker


class SweepActor:
    """A worker on Ray; made a Ray actor class by ``ray.remote`` when Ray is used."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        start_worker(settings)

    def ready(self) -> bool:
        return True

    def run(self, task: Task) -> Row:
        return run_task(task, self.settings)


@dataclass
class _Slot:
    actor: Any
    call: Any  # the pending call: ready() while starting, then run(task)
    task: Task | None = None
    given: float = 0.0  # when the task was handed over (time.monotonic)


def run_ray(
    tasks: Sequence[Task], settings: WorkerSettings, address: str | None, workers: int, timeout: float | None
) -> Generator[Row, None, None]:
    """Rows of ``tasks`` as they finish on Ray; a local Ray (``workers`` CPUs) when ``address`` is None."""
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"address": address} if address else {"num_cpus": workers}
        ray.init(**options, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    actor_class = ray.remote(num_cpus=1, max_restarts=0)(SweepActor)
    shared = ray.put(settings)

    def start() -> _Slot:
        actor = actor_class.remote(shared)
        return _Slot(actor, actor.ready.remote())

    todo = deque(tasks)
    free = int(ray.available_resources().get("CPU", 1))  # an actor per free CPU: each can start at once
    slots = [start() for _ in range(max(1, min(free, len(todo))))]
    try:
        while todo or any(s.task is not None for s in slots):
            for slot in slots:
                if slot.call is None and todo:
                    slot.task, slot.given = todo.popleft(), time.monotonic()
                    slot.call = slot.actor.run.remote(slot.task)
            deadlines = [s.given + timeout for s in slots if s.task is not None and timeout]
            wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            done, _ = ray.wait([s.call for s in slots if s.call is not None], num_returns=1, timeout=wait_s)
            for ref in done:
                index = next(i for i, s in enumerate(slots) if s.call == ref)
                row = _receive(ray, slots, index, start)
                if row is not None:
                    yield row
            for index, slot in enumerate(slots):
                if slot.task is not None and timeout and time.monotonic() > slot.given + timeout:
                    ray.kill(slot.actor)
                    slots[index] = start()
                    error = f"timed out after {timeout:g} s (--timeout); its Ray worker was killed"
                    yield Row.failed(slot.task, error, family(slot.task.spec), seconds=time.monotonic() - slot.given)
    finally:
        for slot in slots:
            ray.kill(slot.actor)
        if started_here:
            ray.shutdown()


def _receive(ray: Any, slots: list[_Slot], index: int, start: Any) -> Row | None:
    """The result of ``slots[index]``'s call: a row, or None when the actor just came up."""
    slot = slots[index]
    try:
        value = ray.get(slot.call)
    except ray.exceptions.RayError as exc:  # the actor died: a crash, or Ray's memory monitor
        slots[index] = start()
        reason = " ".join(str(exc).split()).split(". ")[0]  # the rest is ids, pids and addresses
        if slot.task is None:
            raise SweepError(f"a Ray worker could not start ({type(exc).__name__}: {reason})") from None
        error = f"the Ray worker died while running this model ({type(exc).__name__}: {reason}); it was replaced"
        return Row.failed(slot.task, error, family(slot.task.spec), seconds=time.monotonic() - slot.given)
    slot.call, slot.task = None, None
    return value if isinstance(value, Row) else None


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SweepError("--ray needs ray, which is not installed: pip install 'torchcost[ray]'") from None
    return ray
