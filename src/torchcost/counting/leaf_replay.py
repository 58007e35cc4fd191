"""Whole leaf modules of ``torch.nn`` replayed on a lent meta copy.

A module such as ``nn.Conv2d`` or ``nn.BatchNorm2d`` has no children, and its forward is a fixed function of its
fields, its tensors and its input: on meta, called again with an input of the same shape, dtype and strides, it
dispatches the same ops with the same arguments' signatures, and the counting mode replays each of them from what
it learnt (``counting/mode.py``). On a copy lent again (``meta_copies.py``: unchanged since it was made), the records
of such a call are kept by module and input signature, and a later call appends them again, with the enclosing
modules of the moment, and makes its output as the dispatch would, without running the module's Python or
dispatching its ops: most of what a profile of a small convolutional network costs.

A call is kept only when every op it ran was replayed by the dispatch and left nothing else behind (the mode's
``unsettled`` count: no meta values computed or followed, nothing run for real, every op recorded), but for in-place
ops on the input alone (``nn.ReLU(inplace=True)``), which meta values follow again on each replay as the dispatch
would; and when its output is a new tensor that is not a view, or its input itself. It is replayed only under what
made it: the same module fields, parameters and buffers (the same objects), no grad, no autocast, no user formula
running, no phase named, the same fused call, and the input's values and the module's tensors' unknown to meta
values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import nn
from torch._ops import OpOverload

from torchcost.counting.mode import CountingMode, empty_meta, tensor_meta
from torchcost.meta_copies import same_objects
from torchcost.records import OpRecord

# exact classes (a subclass may override forward): a single tensor in, a fixed function of the fields out
LEAF_CLASSES = frozenset({
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm,
    nn.GroupNorm, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Dropout,
    nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.AvgPool2d,
})  # fmt: skip


class _Call:
    """What one call of a leaf module made: its output ("input", or its shape, strides and dtype) and its records
    (replayed under the enclosing modules of the moment), with the module's state it depended on."""

    __slots__ = ("fields", "in_place", "output", "own", "records", "tensors")

    def __init__(self, module: nn.Module, output: Any, records: list[OpRecord], in_place: list[OpOverload]) -> None:
        self.in_place = in_place  # in-place ops on the input alone, for meta values to follow
        self.fields = list(module.__dict__.values())
        self.tensors = [*module._parameters.values(), *module._buffers.values()]
        self.own: list[torch.Tensor] = [t for t in self.tensors if t is not None]  # (a bias may be None)
        self.output = output
        self.records = records

    def still(self, module: nn.Module) -> bool:
        """Whether the module holds what it held when the call was kept (the same objects)."""
        return same_objects(list(module.__dict__.values()), self.fields) and same_objects(
            [*module._parameters.values(), *module._buffers.values()], self.tensors
        )


def _leaf_forward(
    current: list[LeafReplays], module: nn.Module, forward: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """A leaf module's forward while its copy is profiled: through the profile's ``LeafReplays``."""
    if not current:  # called outside a profile (the copy is the profiler's own, so it should not be)
        return forward(module, *args, **kwargs)
    return current[0]._forward(module, forward, *args, **kwargs)


class LeafReplays:
    """While active, the leaf modules among ``modules`` (a lent copy's) run through ``_forward`` below; ``kept``
    (``META_COPIES.derived``) holds the copy's leaf modules and their calls for its next profiles."""

    def __init__(self, mode: CountingMode, modules: list[tuple[str, nn.Module]], kept: dict[str, Any]) -> None:
        self.mode = mode
        self.calls: dict[Hashable, _Call] = kept.setdefault("leaf calls", {})
        if "leaf forwards" not in kept:  # made once per copy: the same objects in the modules' fields every time
            current: list[LeafReplays] = []
            kept["leaf forwards"] = (
                current,
                [
                    (module, functools.partial(_leaf_forward, current, module, type(module).forward))
                    for _, module in modules
                    # (a forward of its own, set on the object, is left to run as it is)
                    if type(module) in LEAF_CLASSES and not module._modules and "forward" not in module.__dict__
                ],
            )
        self._current, self._forwards = kept["leaf forwards"]

    def __enter__(self) -> LeafReplays:
        self._current[:] = [self]
        for module, forward in self._forwards:  # an object's field is found before its class's method
            module.__dict__["forward"] = forward
        return self

    def __exit__(self, *exc: object) -> None:
        for module, _ in self._forwards:
            module.__dict__.pop("forward", None)
        self._current.clear()

    def _forward(self, module: nn.Module, forward: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        mode = self.mode
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
        ):
            return forward(module, *args, **kwargs)
        key = (id(module), x.shape, x.dtype, x.stride(), module.training, mode.fused)
        kept = self.calls.get(key)
        values = mode.values
        if kept is not None and kept.still(module) and (values is None or values.none_known([x, *kept.own])):
            return self._replay(kept, x)
        unsettled, first, mode.followed = mode.unsettled, len(mode.records), []
        try:
            out = forward(module, x)
        finally:
            followed, mode.followed = mode.followed, None
        # what meta values followed: at most in-place ops on the input alone (an in-place activation), followed
        # again on a replay
        in_place = [op for op, args, kw, made in followed if made is x and len(args) == 1 and args[0] is x and not kw]
        if mode.unsettled - unsettled == len(in_place) == len(followed) and len(mode.records) > first:
            output: Any = "input" if out is x else None
            if output is None and type(out) is torch.Tensor and out.is_meta and not out._is_view():
                output = tensor_meta(out)
            if output is not None:
                self.calls[key] = _Call(module, output, mode.records[first:], in_place)
        return out

    def _replay(self, kept: _Call, x: torch.Tensor) -> Any:
        mode = self.mode
        paths = mode.modules.paths(False)
        mode.records += [record.under(paths) for record in kept.records]
        values = mode.values
        if values is not None:
            for op in kept.in_place:  # what the dispatch would have had them follow
                values.follow(op, (x,), {}, x, [x])
        if kept.output == "input":
            return x
        with torch._C._DisableTorchDispatch():  # made as the dispatch makes a replayed op's output, unseen by it
            return empty_meta(kept.output)
