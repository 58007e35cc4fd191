"""Failures grouped by reason: the same error in many models (a name, a shape, a number apart) is one group."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from torchcost.sweep.rows import Row

REASON_CHARS = 160
_WHERE = re.compile(r"(module '[^']*' \([^)]*\) with input shapes .*?|the forward of \w+) failed: ")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class FailureGroup:
    reason: str
    specs: list[str]  # the rows' specs, in sweep order


def reason(error: str) -> str:
    """``error`` without where it happened (the module, its shapes), quoted names, numbers and the hint."""
    text = _WHERE.sub("", error.split(" hint: ")[0])
    text = _NUMBER.sub("N", _QUOTED.sub("'…'", text)).strip()
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def group_failures(rows: Sequence[Row]) -> list[FailureGroup]:
    """The failed rows by reason, the largest group first."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        if row.error:
            groups.setdefault(reason(row.error), []).append(row.spec)
    return sorted((FailureGroup(r, specs) for r, specs in groups.items()), key=lambda g: -len(g.specs))
