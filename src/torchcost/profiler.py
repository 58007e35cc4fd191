"""``profile()``: run a model once under the counting mode and gather a ``Profile``."""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import torch
from torch import nn

from torchcost.counting.mode import CountingMode, FusedAttentionOnMeta, ModuleStack
from torchcost.counting.registry import tensors_in
from torchcost.params import count_params, params_per_module, size_bytes, size_if
from torchcost.prepare import InputSize, ModelState, device_of, prepare
from torchcost.records import (
    MemoryAccess,
    ModuleStats,
    OperatorStats,
    OpRecord,
    Profile,
    TensorSpec,
    UncountedOp,
)
from torchcost.step import OptimizerSpec, optimizer_name, training_copy
from torchcost.training import counted_step, steady_optimizer, training_step


class ProfilingError(RuntimeError):
    """The model could not be run on the given inputs; the message names the module and the shapes."""


def profile(
    model: nn.Module,
    *inputs: Any,
    input_size: InputSize | None = None,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    backward: bool = False,
    optimizer: OptimizerSpec | None = None,
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
            is moved there; the user's model never is. By default the model's own device. ``"auto"``:
            count on a meta copy (counts depend only on shapes, and no kernel runs), and on the model's own
            device only if the forward fails on meta (it needs real values); ``Profile.device`` says which.
        backward: also run and count the backward pass, in training mode, as autograd runs it.
            Otherwise the forward runs in eval mode under ``torch.no_grad()``.
        optimizer: also count a steady-state ``optimizer.step()`` (implies ``backward``; on a copy of the
            model): ``"sgd"``, ``"sgd-momentum"``, ``"adam"``, ``"adamw"`` or a factory; ``Profile.training``.
        kwargs: keyword inputs of the model's forward.
    """
    if device == "auto":
        return _profile_auto(model, inputs, input_size, dtype, backward, kwargs, optimizer)
    prepared = prepare(model, inputs, kwargs, input_size, dtype, device)
    run_model, run_device = prepared.model, prepared.device
    backward = backward or optimizer is not None
    if optimizer is not None and run_model is model:
        run_model = training_copy(model)
    step = steady_optimizer(run_model, optimizer) if optimizer is not None else None
    inputs, kwargs = prepared.inputs, prepared.kwargs

    names = {id(module): name for name, module in run_model.named_modules()}
    state = ModelState(model)
    try:
        stack = ModuleStack(names)
        fused = FusedAttentionOnMeta() if run_device.type == "meta" else contextlib.nullcontext()
        with stack, fused, CountingMode(stack) as mode:
            run_model.train(backward)
            with torch.set_grad_enabled(backward):
                output = _forward(run_model, stack, inputs, kwargs, run_device)
            if backward:
                _backward(output, mode)
            if step is not None:
                counted_step(step, mode)
    finally:
        state.restore()
    result = _build_profile(run_model, inputs, kwargs, run_device, backward, mode.records, stack)
    result.training = training_step(result, optimizer_name(optimizer)) if optimizer is not None else None
    return result


def _profile_auto(
    model: nn.Module,
    inputs: tuple[Any, ...],
    input_size: InputSize | None,
    dtype: torch.dtype | str | None,
    backward: bool,
    kwargs: dict[str, Any],
    optimizer: OptimizerSpec | None = None,
) -> Profile:
    """Meta first; the model's own device when the forward needs real data."""
    try:
        return profile(
            model,
            *inputs,
            input_size=input_size,
            dtype=dtype,
            device="meta",
            backward=backward,
            optimizer=optimizer,
            **kwargs,
        )
    except ProfilingError:
        if device_of(model).type == "meta":
            raise
    return profile(
        model,
        *inputs,
        input_size=input_size,
        dtype=dtype,
        device=None,
        backward=backward,
        optimizer=optimizer,
        **kwargs,
    )


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
    params = params_per_module(model)
    for name, module in model.named_modules():
        stats[name] = ModuleStats(
            name=name,
            type=type(module).__name__,
            depth=0 if name == "" else name.count(".") + 1,
            params=params[name],
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
