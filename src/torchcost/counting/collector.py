"""Python's cyclic garbage collector held off while a run is counted on meta.

Counting makes many small objects that live to the end (records, a copy of the module tree), which set off the
collector's full passes over every object of the process: tens of milliseconds at random points of a profile.
A run on meta holds no tensor memory for the collector to free; reference counting still frees everything that
is not in a cycle, and the collector runs as usual once the run is over.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """The cyclic garbage collector off for the block when ``pause`` (and it was on), back on after it."""
    was_on = gc.isenabled()
    if pause and was_on:
        gc.disable()
    try:
        yield
    finally:
        if pause and was_on:
            gc.enable()
