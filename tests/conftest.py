"""Shared helpers: run a function under the counting mode and pick out the records of one op; what a profile says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from torchcost.counting.mode import CountingMode, ModuleStack
from torchcost.records import OpCost, OpRecord


def count(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[OpRecord]:
    """Every op record of ``fn(*args, **kwargs)``."""
    stack = ModuleStack({})
    with stack, CountingMode(stack) as mode:
        fn(*args, **kwargs)
    return mode.records


def total(records: list[OpRecord]) -> OpCost:
    cost = OpCost()
    for record in records:
        cost = cost + record.cost
    return cost


def only(records: list[OpRecord], op: str) -> OpCost:
    """The cost of the single call of ``op`` among ``records``."""
    matching = [r for r in records if r.op == op]
    assert len(matching) == 1, f"expected one {op}, got {[r.op for r in records]}"
    assert matching[0].counted
    return matching[0].cost


@pytest.fixture(autouse=True)
def _tracebacks_in_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI turns an unexpected exception into one line; in tests it is raised, so a bug shows its traceback."""
    monkeypatch.setenv("TORCHCOST_DEBUG", "1")


def everything(p: Any) -> tuple[Any, ...]:
    """What a profile says, all of it that a run can change: totals, records, module rows, operators, uncounted
    ops, device (to compare profiles counted different ways)."""
    modules = [(m.name, m.calls, m.macs, m.flops, m.memory_access, m.output_shapes) for m in p.modules]
    return p.macs, p.flops, p.memory_access, p.records, modules, p.operators, p.uncounted, p.device
