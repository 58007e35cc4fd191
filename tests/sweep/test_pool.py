import sys

import pytest

from torchcost.sweep.output import SweepError
from torchcost.sweep.pool import run_pool
from torchcost.sweep.rows import Task
from torchcost.sweep.worker import WorkerSettings


def test_workers_that_cannot_start_stop_the_sweep(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")  # every worker exits at once, with code 1
    with pytest.raises(SweepError, match=r"worker processes die while starting \(exit code 1\)"):
        list(run_pool([Task("torchvision:resnet18")], WorkerSettings(), 2, None))
