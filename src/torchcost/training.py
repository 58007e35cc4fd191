"""Moved: the training step's record is ``torchcost.records.TrainingStep``, its FLOPs by phase come from
``torchcost.profiler.training_step``, its measured time from ``torchcost.measure.step.measure_step`` and its
predicted time and MFU from ``torchcost.analysis.timed``. The old names answer here, with a DeprecationWarning,
for one release."""

from __future__ import annotations

import importlib
from typing import Any

from torchcost.errors import renamed

_HOMES = {
    "TrainingStep": "torchcost.records",
    "TOKEN_DTYPES": "torchcost.profiler",
    "training_step": "torchcost.profiler",
    "counted_step": "torchcost.profiler",
    "timed": "torchcost.analysis",
    "measure_step": "torchcost.measure.step",
    "steady_optimizer": "torchcost.step",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = _HOMES[name]
    value = getattr(importlib.import_module(home), name)  # imported on use: those modules sit above this name
    return renamed(__name__, {name: (value, f"{home}.{name}")})(name)
