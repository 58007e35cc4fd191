"""Storage lifetimes as the run makes and frees them: a dispatch mode that sees every ATen op's outputs, and a
weak reference on each new storage that says when the program frees it.

A tensor is memory only through its storage: views and in-place results share their base's storage and add
nothing; a storage is freed when the last tensor on it goes (autograd's saved tensors included), which is
when its weak reference calls back. Step ``k`` is the moment after the ``k``-th op; step 0 is the start.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch._ops import OpOverload
from torch.utils._python_dispatch import TorchDispatchMode

from torchcost.counting.module_stack import ModuleStack
from torchcost.peak_memory.workspace import workspace_bytes
from torchcost.tensors import tensors_in

UNRECORDED = ("prim", "profiler")  # metadata queries (a fake tensor's device) and profiler markers: not ops


@dataclass
class Life:
    """One storage: its bytes, the steps it lived (``died`` is the first step it was gone; None: still alive),
    the phase and the module paths it was made in, and its category when it is known up front."""

    nbytes: int
    born: int
    phase: str
    modules: tuple[str, ...]
    category: str | None = None
    died: int | None = None


@dataclass(frozen=True)
class Step:
    """One op call: its name, the phase, the enclosing module paths (outermost first), and the bytes its kernel
    held only while it ran (a modelled workspace)."""

    op: str
    phase: str
    modules: tuple[str, ...]
    workspace: int = 0


@dataclass
class Lifetimes:
    """What the tracker saw: every op call in order, every storage's life, the categories learnt after the
    run (life index -> category) and the step at which backward started."""

    steps: list[Step] = field(default_factory=list)
    lives: list[Life] = field(default_factory=list)
    labelled: dict[int, str] = field(default_factory=dict)
    backward_from: int | None = None


class LifetimeTracker(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Records each op call and the birth and death of every storage it makes.

    ``phase`` is set by the caller ("forward", "backward", "optimizer"); an op autograd's engine runs is in
    "backward" even while the caller still says "forward".
    """

    def __init__(self, modules: ModuleStack, device_type: str | None = None, workspaces: str | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.modules = modules
        self.workspaces = workspaces  # model kernels' transient buffers on this device kind (peak_memory/workspace.py)
        self.device_type = device_type  # count only storages on this kind of device (None: all)
        self.phase = "forward"
        self.seen = Lifetimes()
        self._alive: dict[int, tuple[int, weakref.ref[torch.UntypedStorage]]] = {}  # id(storage) -> life, ref

    def track(self, tensors: list[torch.Tensor], category: str) -> None:
        """Storages that exist before the run (parameters, inputs, ...), alive from step 0."""
        for tensor in tensors:
            self._see(tensor, 0, category)

    def label(self, tensors: list[torch.Tensor], category: str) -> None:
        """Put the storages of these (live) tensors in ``category``, unless they already have one."""
        for tensor in tensors:
            if tensor.layout != torch.strided:
                continue
            found = self._alive.get(id(tensor.untyped_storage()))
            if found is not None:
                self.seen.labelled.setdefault(found[0], category)

    def __torch_dispatch__(
        self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if func.namespace in UNRECORDED:
            return out
        in_backward = torch._C._current_graph_task_id() != -1
        phase = "backward" if in_backward and self.phase == "forward" else self.phase
        workspace = workspace_bytes(func, args, out, self.workspaces) if self.workspaces else 0
        # no module runs in the optimizer (a recomputation stopped early in backward leaves its modules entered)
        modules = () if phase == "optimizer" else self.modules.current
        self.seen.steps.append(Step(str(func.overloadpacket), phase, modules, workspace))
        step = len(self.seen.steps)
        for tensor in tensors_in(out):
            self._see(tensor, step, None)
        return out

    def _see(self, tensor: torch.Tensor, step: int, category: str | None) -> None:
        if tensor.layout != torch.strided or self.device_type not in (None, tensor.device.type):
            return
        storage = tensor.untyped_storage()
        key = id(storage)
        known = self._alive.get(key)
        nbytes = storage.nbytes()
        if known is not None:
            life = self.seen.lives[known[0]]
            if life.nbytes == nbytes:
                return
            life.died = step  # resized in place (resize_, set_): the old size ends, the new one starts here
            self._alive.pop(key)
            category = category or life.category
        index = len(self.seen.lives)
        phase = self.seen.steps[-1].phase if step else "start"
        modules = self.seen.steps[-1].modules if step else ()
        self.seen.lives.append(Life(nbytes, step, phase, modules, category))
        self._alive[key] = (index, weakref.ref(storage, functools.partial(self._free, index, key)))

    def _free(self, index: int, key: int, ref: weakref.ref[torch.UntypedStorage]) -> None:
        life = self.seen.lives[index]
        if life.died is None:
            life.died = len(self.seen.steps) + 1
        known = self._alive.get(key)
        if known is not None and known[0] == index:
            del self._alive[key]

    def stop(self) -> None:
        """Stop listening: storages that die after the run no longer change what was recorded."""
        self._alive.clear()
