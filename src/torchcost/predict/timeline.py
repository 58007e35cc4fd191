"""The execution timeline: the host issues ops one after another, the device runs their kernels in stream order.

    host:   issue_i = issue_(i-1) + host_i                  (dispatch, launches, module calls entered at op i)
    device: start_i = max(issue_i, end_(i-1)),  end_i = start_i + device_i       (ops that launch kernels)
    latency = the later of the last issue and the last kernel's end

So a run of small kernels is host-bound (the device waits for each launch) and a run of large ones is
device-bound (the host runs ahead), with everything in between and no blend to tune. An op that reads a value
back (``.item()``) makes the host wait for the device. On a CPU the host runs the kernels itself: the two are
one thread and nothing overlaps. Replayed as a CUDA graph, the host issues nothing per op: one replay starts the
kernels, back to back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One issue of the host and the kernels it runs: one op, or a multi-tensor op standing for many."""

    records: tuple[int, ...]  # the profile records it stands for
    host_s: float
    device_s: float  # its kernels, back to back
    compute_s: float
    memory_s: float
    kernels: int
    waits: bool = False  # the host waits for the device's result (a value read back)


@dataclass(frozen=True)
class Placed:
    """A step on the timeline: its kernels' start and end, and how far it moved the run's end."""

    step: Step
    start_s: float
    end_s: float
    advance_s: float


@dataclass(frozen=True)
class Timeline:
    placed: list[Placed]
    latency_s: float
    host_s: float  # the host's busy time
    device_s: float  # the device's busy time


def run(steps: list[Step], overlap: bool, start_s: float = 0.0) -> Timeline:
    """Place each step: on two timelines that overlap (a GPU) or on one (a CPU). ``start_s`` is host time spent
    before the first step (a CUDA graph's replay)."""
    host = start_s
    device = finish = 0.0
    host_busy = start_s
    device_busy = 0.0
    placed = []
    for step in steps:
        host += step.host_s
        host_busy += step.host_s
        if not overlap:
            begin = host
            host += step.device_s
            device = end = host
        else:
            if step.waits:
                host = max(host, device)
            begin = max(host, device) if step.kernels else host
            end = begin + step.device_s
            device = end if step.kernels else device
        device_busy += step.device_s
        new_finish = max(host, device, finish)
        placed.append(Placed(step, begin, end, new_finish - finish))
        finish = new_finish
    return Timeline(placed, finish, host_busy, device_busy)


def overlapped_latency(host_s: list[float], device_s: list[float], kernels: list[int], waits: list[bool]) -> float:
    """``run(steps, overlap=True).latency_s`` from plain lists, for fits that evaluate thousands of timelines."""
    host = device = 0.0
    for issue, busy, launches, wait in zip(host_s, device_s, kernels, waits, strict=True):
        host += issue
        if wait:
            host = max(host, device)
        if launches:
            device = max(host, device) + busy
    return max(host, device)
