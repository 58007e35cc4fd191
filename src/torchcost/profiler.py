"""``profile()``: run a model once under the counting mode and gather a ``Profile``."""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map

from torchcost.counting.mode import CountingMode, FusedAttentionOnMeta, ModuleStack
from torchcost.counting.registry import tensors_in
from torchcost.params import count_params, size_bytes, size_if, unique_parameters
from torchcost.records import (
    MemoryAccess,
    ModuleStats,
    OperatorStats,
    OpRecord,
    Profile,
    TensorSpec,
    UncountedOp,
)

InputSize = Sequence[int] | Sequence[Sequence[int]]


class ProfilingError(RuntimeError):
    """The model could not be run on the given inputs; the message names the module and the shapes."""


def profile(
    model: nn.Module,
    *inputs: Any,
    input_size: InputSize | None = None,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    backward: bool = False,
    **kwargs: Any,
) -> Profile:
    """Count the parameters, size, MACs, FLOPs and memory access of ``model(*inputs, **kwargs)``.

    Args:
        model: any ``nn.Module``. It is left exactly as it was found (weights, buffers, ``training`` flags,
            hooks, grads, device), also when its forward raises.
        inputs: example inputs, passed as they are (tensors, or tuples/lists/dicts of them).
        input_size: instead of ``inputs``, one shape ``(1, 3, 224, 224)`` or a list of shapes; random
            tensors of that shape are made (of ``dtype``, float32 by default).
        dtype: run in this dtype: a copy of the model and the floating-point inputs are cast to it.
        device: run on this device (``"meta"`` counts without allocating any weights). A copy of the model
            is moved there; the user's model never is. By default the model's own device.
        backward: also run and count the backward pass, in training mode, as autograd runs it.
            Otherwise the forward runs in eval mode under ``torch.no_grad()``.
        kwargs: keyword inputs of the model's forward.
    """
    if inputs and input_size is not None:
        raise ValueError("give either example inputs or input_size, not both")
    if not inputs and input_size is None and not kwargs:
        raise ValueError("give example inputs, e.g. profile(model, torch.randn(1, 3, 224, 224)), or input_size=")
    run_dtype = _as_dtype(dtype)
    model_device = _device_of(model)
    run_device = torch.device(device) if device is not None else model_device
    needs_copy = run_device != model_device or (run_dtype is not None and _dtype_of(model) != run_dtype)
    run_model = copy_to(model, run_device, run_dtype) if needs_copy else model
    if input_size is not None:
        inputs = _random_inputs(input_size, run_dtype or torch.float32, run_device)
    inputs, kwargs = _move((inputs, kwargs), run_device, run_dtype)

    names = {id(module): name for name, module in run_model.named_modules()}
    state = _ModelState(model)
    try:
        stack = ModuleStack(names)
        fused = FusedAttentionOnMeta() if run_device.type == "meta" else contextlib.nullcontext()
        with stack, fused, CountingMode(stack) as mode:
            run_model.train(backward)
            with torch.set_grad_enabled(backward):
                output = _forward(run_model, stack, inputs, kwargs, run_device)
            if backward:
                _backward(output, mode)
    finally:
        state.restore()
    return _build_profile(run_model, inputs, kwargs, run_device, backward, mode.records, stack)


def copy_to(model: nn.Module, device: torch.device, dtype: torch.dtype | None) -> nn.Module:
    """A deep copy of ``model`` on ``device`` (and ``dtype``), tied weights still tied.

    Each parameter and buffer is converted once, before copying, so moving to ``meta`` allocates nothing.
    """
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        cast = dtype if dtype is not None and tensor.is_floating_point() else None
        moved = tensor.detach().to(device=device, dtype=cast)
        if isinstance(tensor, nn.Parameter):
            moved = nn.Parameter(moved, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = moved
    return copy.deepcopy(model, memo)


def _as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use a torch dtype name such as float32, float16, bfloat16")
    return resolved


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _dtype_of(model: nn.Module) -> torch.dtype | None:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def _random_inputs(input_size: InputSize, dtype: torch.dtype, device: torch.device) -> tuple[Any, ...]:
    sizes = [input_size] if isinstance(input_size[0], int) else list(input_size)
    made = []
    for size in sizes:
        shape = tuple(int(s) for s in size)  # type: ignore[attr-defined]
        if dtype.is_floating_point or dtype.is_complex:
            made.append(torch.randn(shape, dtype=dtype, device=device))
        else:
            made.append(torch.zeros(shape, dtype=dtype, device=device))
    return tuple(made)


def _move(tree: Any, device: torch.device, dtype: torch.dtype | None) -> Any:
    def move(leaf: Any) -> Any:
        if not isinstance(leaf, torch.Tensor):
            return leaf
        cast = dtype if dtype is not None and leaf.is_floating_point() else None
        return leaf.to(device=device, dtype=cast)

    return tree_map(move, tree)


def _forward(
    model: nn.Module,
    stack: ModuleStack,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    device: torch.device,
) -> Any:
    try:
        return model(*inputs, **kwargs)
    except Exception as exc:
        raise ProfilingError(_forward_failure(model, stack, exc, device)) from exc


def _forward_failure(model: nn.Module, stack: ModuleStack, exc: Exception, device: torch.device) -> str:
    where = f"the forward of {type(model).__name__}"
    if stack.forward and stack.forward[-1]:
        module = model.get_submodule(stack.forward[-1])
        shapes = ", ".join(str(list(s)) for s in stack.forward_inputs[-1]) or "no tensors"
        where = f"module '{stack.forward[-1]}' ({type(module).__name__}) with input shapes {shapes}"
    hint = "check the input shapes (--input-size) against what the model expects"
    if device.type == "meta" and any(word in str(exc) for word in ("meta", "item", "data-dependent")):
        hint = "this model needs real data (a value-dependent branch or shape); profile on device='cpu'"
    return f"{where} failed: {type(exc).__name__}: {exc}\n  hint: {hint}"


def _backward(output: Any, mode: CountingMode) -> None:
    roots = [t for t in tensors_in(output) if t.requires_grad and t.is_floating_point()]
    if not roots:
        raise ProfilingError("backward=True, but no output of the model requires grad (are all weights frozen?)")
    mode.recording = False  # the seed gradients are our doing, not the model's
    seeds = [torch.ones_like(t) for t in roots]
    mode.recording = True
    torch.autograd.backward(roots, seeds)


class _ModelState:
    """What running a model can change: training flags, grads, and (in training mode) buffers."""

    def __init__(self, model: nn.Module) -> None:
        self.training = [(m, m.training) for m in model.modules()]
        self.grads = [(p, p.grad) for p in unique_parameters(model)]
        for param, _ in self.grads:  # backward would accumulate into them in place
            param.grad = None
        self.buffers = [(b, b.detach().clone()) for b in model.buffers()]

    def restore(self) -> None:
        for module, training in self.training:
            module.training = training
        for param, grad in self.grads:
            param.grad = grad
        with torch.no_grad():
            for buffer, saved in self.buffers:
                if buffer.device.type != "meta":
                    buffer.copy_(saved)


def _build_profile(
    model: nn.Module,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    device: torch.device,
    backward: bool,
    records: list[OpRecord],
    stack: ModuleStack,
) -> Profile:
    counted = [r for r in records if r.counted]
    return Profile(
        model=type(model).__name__,
        inputs=[TensorSpec(tuple(t.shape), str(t.dtype).removeprefix("torch.")) for t in tensors_in((inputs, kwargs))],
        device=str(device),
        backward=backward,
        params=count_params(model),
        size_bytes=size_bytes(model),
        size_if=size_if(model),
        macs=sum(r.cost.macs for r in counted),
        flops=sum(r.cost.flops for r in counted),
        memory_access=MemoryAccess(
            read=sum(r.cost.bytes_read for r in records), write=sum(r.cost.bytes_written for r in records)
        ),
        modules=_module_stats(model, records, stack),
        operators=_operator_stats(counted),
        uncounted=[UncountedOp(op, n) for op, n in Counter(r.op for r in records if not r.counted).most_common()],
        records=records,
    )


def _module_stats(model: nn.Module, records: list[OpRecord], stack: ModuleStack) -> list[ModuleStats]:
    stats: dict[str, ModuleStats] = {}
    for name, module in model.named_modules():
        stats[name] = ModuleStats(
            name=name,
            type=type(module).__name__,
            depth=0 if name == "" else name.count(".") + 1,
            params=sum(p.numel() for p in unique_parameters(module)),
            own_params=sum(p.numel() for p in module.parameters(recurse=False)),
            calls=stack.calls.get(name, 0),
            output_shapes=list(stack.output_shapes.get(name, [])),
        )
    for record in records:
        for name in record.modules:
            stats[name].add(record.cost)
    return list(stats.values())


def _operator_stats(records: list[OpRecord]) -> list[OperatorStats]:
    by_op: dict[str, OperatorStats] = {}
    for record in records:
        by_op.setdefault(record.op, OperatorStats(record.op)).add(record.cost)
    return sorted(by_op.values(), key=lambda o: (o.flops, o.memory_access.total), reverse=True)
