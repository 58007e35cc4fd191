"""What a sweep runs (``Task``: one model at one grid point) and what it records (``Row``: one per task).

The columns are the fields of ``Row`` in order, with ``predicted_s`` spread into one ``predicted_s_<hardware>``
column per device. A new quantity (e.g. ``peak_memory_bytes``) is one new field here and one line where the
worker fills it in (``worker.costs``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Shape = tuple[int, ...]
Key = tuple[str, str, str, str]  # spec, input_size, batch, dtype: what --resume matches on
PREDICTED = "predicted_s_"  # prefix of the per-hardware prediction columns
TIMING_COLUMNS = ("seconds", "worker", "worker_peak_rss_bytes")  # differ from run to run; the rest must not


@dataclass(frozen=True)
class SpaceEntry:
    """One model of a search space: the ``index``-th item that ``function()`` in ``path`` yields, named ``name``."""

    spec: str  # the space as the user named it, ``space.py:NAME``
    path: Path  # the file, resolved (workers may run elsewhere)
    function: str
    index: int
    name: str


@dataclass(frozen=True)
class Task:
    """One model at one grid point. Empty strings and ``None`` mean the model's own default."""

    spec: str  # a profile spec, or ``space.py:NAME/entry`` for a search-space entry
    input_size: str = ""  # "1x3x224x224", several inputs separated by spaces
    batch: int | None = None
    dtype: str = ""
    entry: SpaceEntry | None = None

    @property
    def key(self) -> Key:
        return key(self.spec, self.input_size, self.batch, self.dtype)

    @property
    def shapes(self) -> list[Shape] | None:
        if not self.input_size:
            return None
        return [tuple(int(d) for d in part.split("x")) for part in self.input_size.split()]


def key(spec: str, input_size: str, batch: int | None, dtype: str) -> Key:
    return (spec, input_size, "" if batch is None else str(batch), dtype)


def shapes_text(shapes: list[Shape]) -> str:
    return " ".join("x".join(str(d) for d in shape) for shape in shapes)


@dataclass
class Row:
    """The costs of one task, or why it failed (``error``). Counts are exact integers; ``None`` is unknown."""

    spec: str
    input_size: str = ""  # the grid point asked for ("" is the model's default input)
    batch: int | None = None
    dtype: str = ""
    family: str = ""  # the model's architecture family: timm/torchvision module, transformers model type, class
    inputs: str = ""  # what ran: "1x3x224x224 float32", several inputs separated by "; "
    device: str = ""  # where it was counted: meta, or cpu when the model needs real data
    params: int | None = None
    size_bytes: int | None = None
    macs: int | None = None
    flops: int | None = None
    memory_access_bytes: int | None = None
    uncounted_calls: int | None = None  # calls of ops with no formula (their FLOPs are unknown, not zero)
    predicted_s: dict[str, float] = field(default_factory=dict)  # hardware name -> roofline latency, when known
    seconds: float | None = None  # wall time of the task in its worker: build, count, predict
    worker: str = ""  # host:pid of the worker process; in the local pool, also of one that died or was killed
    worker_peak_rss_bytes: int | None = None  # the worker process's peak resident memory so far
    error: str = ""  # empty when the model was counted

    @classmethod
    def failed(cls, task: Task, error: str, family: str = "", **timing: Any) -> Row:
        return cls(task.spec, task.input_size, task.batch, task.dtype, family=family, error=error, **timing)

    @property
    def key(self) -> Key:
        return key(self.spec, self.input_size, self.batch, self.dtype)

    @property
    def ok(self) -> bool:
        return not self.error

    def to_record(self, hardware: list[str]) -> dict[str, Any]:
        """One flat record: the fields in order, ``predicted_s`` as one column per hardware name."""
        record: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            if item.name == "predicted_s":
                record.update({PREDICTED + name: self.predicted_s.get(name) for name in hardware})
            else:
                record[item.name] = getattr(self, item.name)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Row:
        """The inverse of ``to_record``; values may be text (CSV): each is converted to its field's type."""
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if item.name == "predicted_s":
                predicted = {k.removeprefix(PREDICTED): v for k, v in record.items() if k.startswith(PREDICTED)}
                values[item.name] = {k: float(v) for k, v in predicted.items() if v not in (None, "")}
            elif item.name in record:
                values[item.name] = _convert(str(item.type), record[item.name])
        return cls(**values)


def columns(hardware: list[str]) -> list[str]:
    """The column names of a sweep that predicts on ``hardware``, in order."""
    return list(Row("").to_record(hardware))


def _convert(kind: str, value: Any) -> Any:
    if kind.startswith("int"):
        return _number(value, int)
    if kind.startswith("float"):
        return _number(value, float)
    return "" if value is None else str(value)


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if value is None or value == "":
        return None
    return kind(value)
