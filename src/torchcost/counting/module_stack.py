"""Which of the model's modules are running, in forward and in backward: the paths each counted op is
attributed to."""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.autograd.graph import register_multi_grad_hook
from torch.nn.modules import module as torch_module
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from torchcost.counting.registry import find_module_formula
from torchcost.records import OpRecord, Shape
from torchcost.tensors import dtypes_of, shapes_of, tensors_in

# the frames from which ``nn.Module.__call__`` runs a module's forward: without hooks, with hooks (``inner``), traced
CALLERS = (
    nn.Module._call_impl.__code__,
    *(c for c in nn.Module._call_impl.__code__.co_consts if isinstance(c, types.CodeType) and c.co_name == "inner"),
    nn.Module._slow_forward.__code__,
)


class ModuleStack:
    """Which of the model's modules are running, in forward and in backward, from global module hooks.

    Nothing is registered on the model itself; the hooks are removed on exit. In backward, a module is
    entered when the gradients of its outputs arrive and left when those of its inputs are computed
    (the approach of ``torch.utils.module_tracker``).

    On a copy of the profiler's own (``followed``: forwards for its modules, each with no hook, called as
    ``nn.Module`` calls them; see ``followable``), when no global module hook is registered, the modules are
    followed instead through a forward set on each object for the run (``by_forwards``): ``nn.Module.__call__``
    then runs a module's forward without the hooks' slower path, and the stack sees the same calls (a forward
    called directly, not through ``__call__``, is not followed, as no hook would run for it).
    """

    def __init__(self, names: dict[int, str], followed: Followed | None = None) -> None:
        self.names = names  # id(module) -> dotted path ("" for the root)
        self.followed = followed
        self.by_forwards = False  # while entered: followed through forwards set on the modules
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
        self._inside: dict[str, tuple[str, ...]] = {}  # ``paths(False)`` inside a module ``replayed``, until a change

    def __enter__(self) -> ModuleStack:
        self.by_forwards = self.followed is not None and not _global_hooks()
        if self.followed is not None and self.by_forwards:
            self.followed.set_on(self)
            return self
        self._handles = [
            register_module_forward_pre_hook(self._enter_forward),
            register_module_forward_hook(self._leave_forward),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.followed is not None and self.by_forwards:
            self.followed.taken_off()
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

    def run(
        self, name: str, module: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """``forward(*args, **kwargs)``, module ``name``'s, on the stack as the global hooks put it: entered with its
        positional arguments, not left when it raises."""
        self.enter(name, module, args)
        output = forward(*args, **kwargs)
        self.leave(name, module, args, output)
        return output

    def replayed(self, name: str, output_shapes: list[Shape]) -> tuple[str, ...]:
        """A call of module ``name`` made without running it: counted, and ``paths(False)`` inside it returned (for
        the records of its ops)."""
        self.calls[name] = self.calls.get(name, 0) + 1
        if name not in self.output_shapes:
            self.output_shapes[name] = output_shapes
        paths = self._inside.get(name)
        if paths is None:
            outside = self.paths(False)
            paths = self._inside[name] = outside if name in outside else (*outside, name)
        return paths

    def _enter_forward(self, module: torch.nn.Module, args: Any) -> None:
        name = self.names.get(id(module))
        if name is not None:
            self.enter(name, module, args)

    def enter(self, name: str, module: nn.Module, args: Any) -> None:
        self.forward.append(name)
        self._paths[False] = None
        self._inside.clear()
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
        if name is not None:
            self.leave(name, module, args, output)

    def leave(self, name: str, module: nn.Module, args: Any, output: Any) -> None:
        if self.opaque == [name]:
            self._apply_module_formula(module, name, args, output)
        if self.forward[-1] == name:  # the usual case: the innermost module returns
            del self.forward[-1], self.forward_inputs[-1]
        else:
            index = len(self.forward) - 1 - self.forward[::-1].index(name)
            del self.forward[index], self.forward_inputs[index]
        self._paths[False] = None
        self._inside.clear()
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


class Followed:
    """The forwards through which a ``ModuleStack`` follows a copy's modules (``by_forwards``), made once per copy:
    each runs the module's forward (its own, set on the object, or its class's) on the stack of the moment."""

    def __init__(self, modules: list[tuple[str, nn.Module]]) -> None:
        self.modules = modules
        self.own = [module.__dict__.get("forward") for _, module in modules]  # a forward set on the object, or None
        # what each module's forward runs: its own, or its class's bound to it
        self.inner = [
            own or types.MethodType(type(module).forward, module)
            for (_, module), own in zip(modules, self.own, strict=True)
        ]
        self._stack: list[ModuleStack] = []  # the one following them now
        self.forwards = []  # the forwards set on the modules
        for (name, module), inner in zip(modules, self.inner, strict=True):
            followed = functools.partial(_followed, self._stack, name, module, inner)
            followed.__wrapped__ = inner  # type: ignore[attr-defined]  # (what inspect.signature reads)
            self.forwards.append(followed)

    def set_on(self, stack: ModuleStack) -> None:
        """Set each module's forward, for ``stack`` to follow them (an object's field is found before its class's
        method)."""
        self._stack[:] = [stack]
        for (_, module), forward in zip(self.modules, self.forwards, strict=True):
            module.__dict__["forward"] = forward

    def taken_off(self) -> None:
        """Each module as it was: its own forward, or none set on the object."""
        for (_, module), own in zip(self.modules, self.own, strict=True):
            if own is None:
                del module.__dict__["forward"]
            else:
                module.__dict__["forward"] = own
        self._stack.clear()


def _followed(
    stack: list[ModuleStack], name: str, module: nn.Module, forward: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """A module's forward while ``stack`` follows it: called by ``nn.Module.__call__``, on the stack; called
    directly, as it is."""
    if not stack or sys._getframe(1).f_code not in CALLERS:
        return forward(*args, **kwargs)
    return stack[0].run(name, module, forward, args, kwargs)


def _global_hooks() -> bool:
    """Whether a global module hook is registered (ours, or another's: theirs run before a module's forward)."""
    return bool(
        torch_module._global_forward_pre_hooks
        or torch_module._global_forward_hooks
        or torch_module._global_backward_pre_hooks
        or torch_module._global_backward_hooks
    )


def followable(modules: list[nn.Module]) -> bool:
    """Whether the modules can be followed through forwards set on them: none has a hook of its own or is compiled,
    and each class's ``forward`` is a plain function (a forward set on the object then runs in its place). A class
    may have a ``__call__`` of its own: its forward is on the stack when ``nn.Module._call_impl`` runs it
    (``CALLERS``), which is when the hooks would have run."""
    return all(
        not (m._forward_pre_hooks or m._forward_hooks or m._backward_pre_hooks or m._backward_hooks)
        and getattr(m, "_compiled_call_impl", None) is None
        and isinstance(inspect.getattr_static(type(m), "forward"), types.FunctionType)
        for m in modules
    )
