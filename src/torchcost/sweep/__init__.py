"""Sweeps: one table of costs for many models (a hub, a list, a search space) at many input sizes, batch sizes
and dtypes, in worker processes or on Ray. A failing, crashing or hanging model costs only its own row.

>>> result = torchcost.sweep(["torchvision:resnet*"], "resnets.csv", hardware=["h100"])   # doctest: +SKIP
"""

from torchcost.sweep.output import SweepError
from torchcost.sweep.rows import Row, Task
from torchcost.sweep.runner import SweepResult, sweep
from torchcost.sweep.specs import SpecError

__all__ = ["Row", "SpecError", "SweepError", "SweepResult", "Task", "sweep"]
