"""Whole leaf modules of ``torch.nn`` replayed on a lent meta copy.

A module such as ``nn.Conv2d`` or ``nn.BatchNorm2d`` has no children, and its forward is a fixed function of its
fields, its tensors and its input: on meta, called again with an input of the same shape, dtype and strides, it
dispatches the same ops with the same arguments' signatures, and the counting mode replays each of them from what
it learnt (``counting/mode.py``). On a copy lent again (``meta_copies.py``: unchanged since it was made), the records
of such a call are kept by module and input signature, and a later call appends them again, with the enclosing
modules of the moment, and makes its output as the dispatch would, without running the module's Python or
dispatching its ops: most of what a profile of a small convolutional network costs.

The copy's modules are followed through forwards set on them (``ModuleStack.by_forwards``): a leaf's is the one
below, which makes a replayed call's entry on the stack itself (its calls and output shapes; its records under the
paths the stack would have had inside it).

A call is kept only when every op it ran was replayed by the dispatch and left nothing else behind (the mode's
``unsettled`` count: no meta values computed or followed, nothing run for real, every op recorded), but for in-place
ops on the input alone (``nn.ReLU(inplace=True)``), which meta values follow again on each replay as the dispatch
would; and when its output is a new tensor, a view of one made in the call (``nn.Linear`` on a 3-D input), or its
input itself. It is replayed only under what made it: the same module fields, parameters and buffers (the same
objects), no grad, no autocast, no user formula running or registered for the module, no phase named, the same fused
call, the same formulas, and the input's values and the module's tensors' unknown to meta values.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import nn
from torch._ops import OpOverload

from torchcost.counting.mode import CountingMode, empty_meta, tensor_meta
from torchcost.counting.module_stack import CALLERS
from torchcost.counting.registry import find_module_formula, formula_changes
from torchcost.meta_copies import same_objects
from torchcost.records import OpRecord
from torchcost.tensors import shapes_of

# exact classes (a subclass may override forward): a single tensor in, a fixed function of the fields out
LEAF_CLASSES = frozenset({
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm,
    nn.GroupNorm, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Dropout,
    nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.AvgPool2d,
})  # fmt: skip


class _Call:
    """What one call of a leaf module made: its output ("input", or how ``_made`` says to make it), its output shapes
    and its records (replayed under the enclosing modules of the moment), with the module's state it depended on."""

    __slots__ = ("fields", "in_place", "output", "output_shapes", "own", "paths", "records", "tensors")

    def __init__(
        self, module: nn.Module, out: torch.Tensor, records: list[OpRecord], in_place: list[OpOverload]
    ) -> None:
        self.in_place = in_place  # in-place ops on the input alone, for meta values to follow
        self.fields = list(module.__dict__.values())
        self.tensors = _tensors(module)
        self.own: list[torch.Tensor] = [t for t in self.tensors if t is not None]  # (a bias may be None)
        self.output: Any = None  # set by the caller, from ``out``
        self.output_shapes = list(shapes_of(out))  # as the module stack keeps them
        self.records = records
        self.paths = records[0].modules  # the modules they ran under (each record's)

    def still(self, module: nn.Module) -> bool:
        """Whether the module holds what it held when the call was kept (the same objects)."""
        fields, tensors = list(module.__dict__.values()), _tensors(module)
        return same_objects(fields, self.fields) and same_objects(tensors, self.tensors)


def _tensors(module: nn.Module) -> list[torch.Tensor | None]:
    """The module's parameters and buffers, in its tables' order (None where one is unset: a bias)."""
    return [*module._parameters.values(), *module._buffers.values()]


def _leaf_forward(
    current: list[LeafReplays], name: str, module: nn.Module, forward: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """A leaf module's forward while its copy is profiled (``forward``: its class's, bound to it): called by
    ``nn.Module.__call__``, replayed through the profile's ``LeafReplays`` when it can be, else run (and learnt) on
    the module stack; called directly, as it is (no module stack follows such a call)."""
    if not current or sys._getframe(1).f_code not in CALLERS:
        return forward(*args, **kwargs)
    replays = current[0]
    mode = replays.mode
    x = args[0] if len(args) == 1 and not kwargs else None
    if (
        type(x) is not torch.Tensor
        or not x.is_meta
        or x.layout != torch.strided
        or torch.is_grad_enabled()
        or torch._C._is_any_autocast_enabled()
        or not mode.recording
        or mode.modules.opaque
        or mode.phase is not None
        or find_module_formula(module) is not None
    ):
        return mode.modules.run(name, module, forward, args, kwargs)
    key = (id(module), x.shape, x.dtype, x.stride(), module.training, mode.fused)
    kept = replays.calls.get(key)
    values = mode.values
    if kept is None or not kept.still(module) or (values is not None and not values.none_known([x, *kept.own])):
        return replays.learn(name, module, forward, x, key)
    return replays.replay(name, kept, x)


def _leaf_forward_of(
    current: list[LeafReplays], name: str, module: nn.Module, forward: Callable[..., Any]
) -> Callable[..., Any]:
    """The forward set on a leaf module while its copy is profiled, with the signature of ``forward``."""
    leaf_forward = functools.partial(_leaf_forward, current, name, module, forward)
    leaf_forward.__wrapped__ = forward  # type: ignore[attr-defined]  # (what inspect.signature reads)
    return leaf_forward


class LeafReplays:
    """While active, the leaf modules of a copy whose module stack follows it by forwards (``mode.modules``) run
    through ``_leaf_forward`` above; ``kept`` (``META_COPIES.derived``) holds the copy's leaf modules and their calls
    for its next profiles."""

    def __init__(self, mode: CountingMode, kept: dict[str, Any]) -> None:
        self.mode = mode
        followed = mode.modules.followed
        assert mode.modules.by_forwards and followed is not None
        if kept.get("formulas") != formula_changes():  # what was kept was counted with other formulas
            kept["leaf calls"], kept["formulas"] = {}, formula_changes()
        self.calls: dict[Hashable, _Call] = kept["leaf calls"]
        if "leaf forwards" not in kept:  # made once per copy: the same objects in the modules' fields every time
            current: list[LeafReplays] = []
            kept["leaf forwards"] = (
                current,
                [  # each leaf, its forward here, and the stack's (put back on exit)
                    (module, _leaf_forward_of(current, name, module, inner), stack_forward)
                    for (name, module), own, inner, stack_forward in zip(
                        followed.modules, followed.own, followed.inner, followed.forwards, strict=True
                    )
                    # (a forward of its own, set on the object, is left to run as it is)
                    if type(module) in LEAF_CLASSES and not module._modules and own is None
                ],
            )
        self._current, self._forwards = kept["leaf forwards"]

    def __enter__(self) -> LeafReplays:
        self._current[:] = [self]
        for module, forward, _ in self._forwards:  # an object's field is found before its class's method
            module.__dict__["forward"] = forward
        return self

    def __exit__(self, *exc: object) -> None:
        for module, _, stack_forward in self._forwards:
            module.__dict__["forward"] = stack_forward
        self._current.clear()

    def replay(self, name: str, kept: _Call, x: torch.Tensor) -> Any:
        """The call ``kept`` made again on input ``x``: its records, in-place ops followed, its output."""
        mode = self.mode
        paths = mode.modules.replayed(name, kept.output_shapes)
        # the records kept, when made under the same modules (the usual case: the same place in the same model)
        mode.records += kept.records if paths == kept.paths else [record.under(paths) for record in kept.records]
        values = mode.values
        if values is not None:
            for op in kept.in_place:  # what the dispatch would have had them follow
                values.follow(op, (x,), {}, x, [x])
        output = kept.output
        if output == "input":
            return x
        with torch._C._DisableTorchDispatch():  # made as the dispatch makes a replayed op's output, unseen by it
            if output[0] != "view":
                return empty_meta(output)
            _, base, (size, stride, offset) = output
            return empty_meta(base).as_strided(size, stride, offset)

    def learn(self, name: str, module: nn.Module, forward: Callable[..., Any], x: torch.Tensor, key: Hashable) -> Any:
        """``forward(x)`` run on the module stack, its call kept under ``key`` if a replay can make it."""
        mode = self.mode
        unsettled, first, mode.followed = mode.unsettled, len(mode.records), []
        try:
            out = mode.modules.run(name, module, forward, (x,), {})
        finally:
            followed, mode.followed = mode.followed, None
        # what meta values followed: at most in-place ops on the input alone (an in-place activation), followed
        # again on a replay
        in_place = [op for op, on, kw, made in followed if made is x and len(on) == 1 and on[0] is x and not kw]
        if mode.unsettled - unsettled == len(in_place) == len(followed) and len(mode.records) > first:
            call = _Call(module, out, mode.records[first:], in_place)
            call.output = "input" if out is x else _made(out, [x, *call.own])
            if call.output is not None:
                self.calls[key] = call
        return out


def _made(out: Any, before: list[torch.Tensor]) -> Any:
    """How a replay makes a call's output ``out``: its shape, strides and dtype (a new tensor), or ("view", those
    of its base, its size, strides and offset) for a view of a new tensor (``nn.Linear`` on a 3-D input); None for
    any other output. ``before``: the tensors the call was given, which a new tensor is none of."""
    if type(out) is not torch.Tensor or not out.is_meta or out.layout != torch.strided:
        return None
    if not out._is_view():
        return tensor_meta(out)
    base = out._base
    if base is None or base._is_view() or any(base is t or base is t._base for t in before):
        return None
    return "view", tensor_meta(base), (tuple(out.shape), out.stride(), out.storage_offset())
