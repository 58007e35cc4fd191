"""Is this machine quiet enough to time on: the cores other work keeps busy now, and how many it may."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

IDLE_CORES = 0.3  # CPU time of other work a quiet machine shows (a VM's agents, the shell), in cores
SAMPLE_S = 2.0  # how long /proc/stat is sampled to see what else runs


def busy_cores(seconds: float = SAMPLE_S) -> float:
    """Cores that other work keeps busy now: the machine's busy CPU time over ``seconds`` (``/proc/stat``: user,
    nice, system, irq, softirq and steal, which on a virtual machine is time the hypervisor gave to others),
    while this process sleeps. Unlike the load average, which decays over minutes, it says what runs now."""
    before = _cpu_times()
    if before is None:
        return 0.0
    time.sleep(seconds)
    after = _cpu_times()
    if after is None:
        return 0.0
    (busy0, total0), (busy1, total1) = before, after
    cores = os.cpu_count() or 1
    return cores * (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from the first line of /proc/stat; None where there is none."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None
    fields = [int(v) for v in stat.read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def spare_cores() -> float:
    """Cores other work may use without slowing the calibration's threads (a little background is allowed)."""
    return max((os.cpu_count() or 1) - torch.get_num_threads(), 0) + IDLE_CORES
