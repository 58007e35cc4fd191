"""Which of the model's modules are running, in forward and in backward: the paths each counted op is
attributed to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.graph import register_multi_grad_hook
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from torchcost.counting.registry import find_module_formula
from torchcost.records import OpRecord, Shape
from torchcost.tensors import dtypes_of, shapes_of, tensors_in


class ModuleStack:
    """Which of the model's modules are running, in forward and in backward, from global module hooks.

    Nothing is registered on the model itself; the hooks are removed on exit. In backward, a module is
    entered when the gradients of its outputs arrive and left when those of its inputs are computed
    (the approach of ``torch.utils.module_tracker``).
    """

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names  # id(module) -> dotted path ("" for the root)
        self.forward: list[str] = []
        self.forward_inputs: list[tuple[Shape, ...]] = []  # input shapes of each running module (for a failure)
        self.backward: list[str] = []
        self.calls: dict[str, int] = {}
        self.output_shapes: dict[str, list[Shape]] = {}
        self.opaque: list[str] = []  # running modules whose cost a user formula gives (their ops are not counted)
        self.user_formula: set[str] = set()  # modules counted by a user formula
        self.emit: Callable[[OpRecord], None] | None = None  # where a user formula's record goes
        self._handles: list[Any] = []
        self._paths: list[tuple[str, ...] | None] = [None, None]  # ``paths(False)`` and ``paths(True)``, until a change

    def __enter__(self) -> ModuleStack:
        self._handles = [
            register_module_forward_pre_hook(self._enter_forward),
            register_module_forward_hook(self._leave_forward),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def current(self) -> tuple[str, ...]:
        """The running modules' paths, outermost first (each once)."""
        return self.paths(torch._C._current_graph_task_id() != -1)

    def paths(self, backward: bool) -> tuple[str, ...]:
        """``current``, for a caller that knows whether autograd runs a backward pass (every op asks)."""
        paths = self._paths[backward]
        if paths is None:
            paths = self._paths[backward] = tuple(dict.fromkeys(self.backward if backward else self.forward))
        return paths

    def _enter_forward(self, module: torch.nn.Module, args: Any) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        self.forward.append(name)
        self._paths[False] = None
        # shapes, not the tensors: a module whose forward never returns (checkpointing stops a recomputation
        # early) would keep them alive
        self.forward_inputs.append(shapes_of(args))
        self.calls[name] = self.calls.get(name, 0) + 1
        if not self.opaque and find_module_formula(module) is not None:
            self.opaque.append(name)
        if torch.is_grad_enabled():
            self._on_gradients(args, lambda: self._leave_backward(name))

    def _leave_forward(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        if self.opaque == [name]:
            self._apply_module_formula(module, name, args, output)
        if self.forward[-1] == name:  # the usual case: the innermost module returns
            del self.forward[-1], self.forward_inputs[-1]
        else:
            index = len(self.forward) - 1 - self.forward[::-1].index(name)
            del self.forward[index], self.forward_inputs[index]
        self._paths[False] = None
        if name not in self.output_shapes:
            self.output_shapes[name] = list(shapes_of(output))
        if torch.is_grad_enabled():
            self._on_gradients(output, lambda: self._enter_backward(name))

    def _apply_module_formula(self, module: torch.nn.Module, name: str, args: Any, output: Any) -> None:
        """The module's cost by its user formula, as one record in place of the ops its forward ran."""
        formula = find_module_formula(module)
        assert formula is not None
        cost = formula(module, args, output)
        self.opaque.clear()
        self.user_formula.add(name)
        if self.emit is not None:
            record = OpRecord(
                op=f"{type(module).__name__} (user formula)",
                phase="forward",
                modules=self.current,
                cost=cost,
                input_shapes=shapes_of(args),
                output_shapes=shapes_of(output),
                input_dtypes=dtypes_of(args),
                output_dtypes=dtypes_of(output),
            )
            self.emit(record)

    def _on_gradients(self, tree: Any, action: Callable[[], None]) -> None:
        """Run ``action`` when the gradients of the tensors in ``tree`` arrive (with grad enabled: in inference
        there is no backward to follow)."""
        tensors = [t for t in tensors_in(tree) if t.requires_grad]
        if tensors:
            self._handles.append(register_multi_grad_hook(tensors, lambda grad: action(), mode="any"))

    def _enter_backward(self, name: str) -> None:
        self.backward.append(name)
        self._paths[True] = None

    def _leave_backward(self, name: str) -> None:
        if name in self.backward:
            del self.backward[len(self.backward) - 1 - self.backward[::-1].index(name)]
            self._paths[True] = None
