"""``profile()``: run a model once under the counting mode and gather a ``Profile``."""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections import Counter
from typing import Any

import torch
from torch import nn

from torchcost.counting.collector import collector_paused
from torchcost.counting.failure import forward_failure
from torchcost.counting.fused import FusedCalls
from torchcost.counting.leaf_replay import LeafReplays
from torchcost.counting.mode import CountingMode
from torchcost.counting.module_stack import Followed, ModuleStack, followable
from torchcost.emulate.autocast import CountedAutocast
from torchcost.emulate.meta_values import BUILT, MetaValues
from torchcost.emulate.on_meta import MetaFunctions
from torchcost.errors import ProfilingError as ProfilingError  # re-exported: it was defined here
from torchcost.meta_copies import META_COPIES
from torchcost.params import ModuleTree, count_params, named_modules, params_per_module, size_bytes, size_if
from torchcost.prepare import InputSize, ModelState, device_of, meta_then_device, prepare, random_inputs
from torchcost.records import (
    CostTotals,
    MemoryAccess,
    ModuleStats,
    OperatorStats,
    OpRecord,
    Profile,
    TensorSpec,
    TrainingStep,
    UncountedOp,
)
from torchcost.step import OptimizerSpec, autocast_dtype, optimizer_name, steady_optimizer, training_copy
from torchcost.tensors import dtype_name, tensors_in

TOKEN_DTYPES = ("int64", "int32")  # inputs of token models: batch x sequence length are the tokens


def profile(
    model: nn.Module,
    *inputs: Any,
    input_size: InputSize | None = None,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = "auto",
    backward: bool = False,
    optimizer: OptimizerSpec | None = None,
    autocast: torch.dtype | str | None = None,
    channels_last: bool = False,
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
        device: ``"auto"`` (the default): count on a meta copy (no weight memory, no kernel runs; the counts are
            the CPU's), and on the model's own device only if the forward needs values meta cannot know;
            ``Profile.device`` says which. ``None``: the model's own device. Any other device: a copy of the
            model is moved there; the user's model never is.
        backward: also run and count the backward pass, in training mode, as autograd runs it.
            Otherwise the forward runs in eval mode under ``torch.no_grad()``.
        optimizer: also count a steady-state ``optimizer.step()`` (implies ``backward``; on a copy of the
            model): ``"sgd"``, ``"sgd-momentum"``, ``"adam"``, ``"adamw"`` or a factory; ``Profile.training``.
        autocast: count the forward as CUDA's ``torch.autocast`` runs it in this dtype (``torch.float16``,
            ``torch.bfloat16``, ``"fp16"`` or ``"bf16"``): matmuls and convolutions in it, norms, softmax and the
            other ops of autocast's fp32 list in fp32, each cast a counted ``_to_copy``. On a CUDA device by
            ``torch.autocast("cuda")`` itself; elsewhere torchcost applies its op lists (see
            ``torchcost.emulate.autocast``).
        channels_last: a copy of the model with its 4-D weights, and the 4-D floating-point inputs, in
            ``torch.channels_last`` memory format.
        kwargs: keyword inputs of the model's forward.
    """
    amp = autocast_dtype(autocast)
    if device == "auto":  # meta first; the model's own device when the forward needs real data
        settings: dict[str, Any] = {
            "input_size": input_size,
            "dtype": dtype,
            "backward": backward,
            "optimizer": optimizer,
            "autocast": amp,
            "channels_last": channels_last,
        }
        return meta_then_device(model, lambda run_on: profile(model, *inputs, device=run_on, **settings, **kwargs))
    with collector_paused(pause=str(device) == "meta"):
        return _profile_on(model, inputs, input_size, dtype, device, backward, kwargs, optimizer, amp, channels_last)


def _profile_on(
    model: nn.Module,
    inputs: tuple[Any, ...],
    input_size: InputSize | None,
    dtype: torch.dtype | str | None,
    device: torch.device | str | None,
    backward: bool,
    kwargs: dict[str, Any],
    optimizer: OptimizerSpec | None,
    amp: torch.dtype | None,
    channels_last: bool,
) -> Profile:
    """``profile()`` on one device (``None``: the model's own)."""
    if input_size is not None and not inputs:  # made on the CPU, so that on meta their values are known
        inputs, input_size = random_inputs(input_size, torch.float32, torch.device("cpu")), None
    backward = backward or optimizer is not None
    prepared = prepare(model, inputs, kwargs, input_size, dtype, device, channels_last, reuse_meta_copy=not backward)
    run_model, run_device = prepared.model, prepared.device
    values = _input_values((inputs, kwargs), (prepared.inputs, prepared.kwargs)) if run_device.type == "meta" else None
    if optimizer is not None and run_model is model:
        run_model = training_copy(model)
    step = steady_optimizer(run_model, optimizer) if optimizer is not None else None
    inputs, kwargs = prepared.inputs, prepared.kwargs

    # what is known of a lent meta copy, as made: the facts of its tree found after an earlier run on it
    derived = META_COPIES.derived(model, run_model)
    facts: _TreeFacts | None = derived.get("tree") if derived is not None else None
    modules = facts.modules if facts is not None else named_modules(run_model)
    names = {id(module): name for name, module in modules}
    state = ModelState(model, runs_itself=run_device == device_of(model))  # a copy elsewhere shares no tensor
    # a copy lent again, forward only: its modules followed through forwards set on them (no hooks' slower path)
    followed: Followed | None = None
    if derived is not None and facts is not None and not backward:
        if "followed" not in derived:
            derived["followed"] = Followed(modules) if followable([module for _, module in modules]) else None
        followed = derived["followed"]
    try:
        stack = ModuleStack(names, followed)
        on_meta = MetaFunctions(values) if values is not None else contextlib.nullcontext()
        with (
            stack,
            on_meta,
            CountingMode(stack, values) as mode,
            FusedCalls(mode),
            CountedAutocast(amp, run_device) as mixed,
        ):
            _set_training(run_model, modules, backward)
            # and its leaf modules replay their calls whole (counting/leaf_replay.py), from the run that learnt them
            leaves: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
            if derived is not None and stack.by_forwards and amp is None:
                leaves = LeafReplays(mode, derived)
            with torch.set_grad_enabled(backward), mixed.forward(), leaves:
                output = _forward(run_model, stack, inputs, kwargs, run_device)
            if backward:
                _backward(output, mode)
            if step is not None:
                counted_step(step, mode)
    finally:
        state.restore()
        unchanged = derived is not None and META_COPIES.returned(model, run_model)
    if facts is None or not unchanged:
        facts = _TreeFacts(run_model)  # walked after the run: a forward may add modules
        if unchanged and derived is not None:  # (unchanged: it was lent)
            derived["tree"] = facts
    result = _build_profile(run_model, facts, inputs, kwargs, run_device, backward, mode.records, stack)
    result.autocast = None if amp is None else dtype_name(amp)
    result.channels_last = channels_last
    result.training = training_step(result, optimizer_name(optimizer)) if optimizer is not None else None
    if values is not None and values.spread_picks:
        result.notes.append(
            f"on meta, {values.spread_picks} top-k/argmax picks among values that depend on the weights (as a "
            "mixture-of-experts router's) were taken as spread evenly over the choices: exact totals for experts "
            "of one size without a capacity limit; count on the cpu (device='cpu') for a real routing"
        )
    return result


def _set_training(model: nn.Module, modules: list[tuple[str, nn.Module]], mode: bool) -> None:
    """``model.train(mode)``; the flags set in one loop over ``model``'s ``modules`` when no class overrides
    ``train`` or ``__setattr__``, or makes ``training`` a property."""
    classes = {type(module) for _, module in modules}
    if any(
        cls.train is not nn.Module.train
        or cls.__setattr__ is not nn.Module.__setattr__
        or isinstance(getattr(cls, "training", None), property)
        for cls in classes
    ):
        model.train(mode)
        return
    for _, module in modules:
        module.__dict__["training"] = mode  # where nn.Module.__setattr__ puts a flag


def _input_values(given: Any, moved: Any) -> MetaValues:
    """The values of the inputs moved to meta from a device with data (the model's code may look at them)."""
    values = MetaValues(fallback=BUILT)
    for original, meta in zip(tensors_in(given), tensors_in(moved), strict=False):  # none given: input_size
        if meta.device.type == "meta" and original.device.type != "meta":
            values.seed(meta, original.detach().to("cpu", meta.dtype))
    return values


def _forward(
    model: nn.Module,
    stack: ModuleStack,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    device: torch.device,
) -> Any:
    try:
        with warnings.catch_warnings():
            # the module stack's hooks are global; a compiled module warns that they fire once more for it
            warnings.filterwarnings("ignore", message=r"Using `torch.compile\(module\)` when there are global hooks")
            return model(*inputs, **kwargs)
    except Exception as exc:
        raise forward_failure(model, stack, exc, device.type == "meta", "profile") from exc


def _backward(output: Any, mode: CountingMode) -> None:
    roots = [t for t in tensors_in(output) if t.requires_grad and t.is_floating_point()]
    if not roots:
        raise ProfilingError("backward=True, but no output of the model requires grad (are all weights frozen?)")
    mode.recording = False  # the seed gradients are our doing, not the model's
    seeds = [torch.ones_like(t) for t in roots]
    mode.recording = True
    torch.autograd.backward(roots, seeds)


class _TreeFacts:
    """What a profile says of a model's tree, whatever ran: its parameters, sizes and modules. Kept with a meta copy
    that is lent again unchanged (``META_COPIES.derived``)."""

    def __init__(self, model: nn.Module) -> None:
        tree = ModuleTree(model)
        self.modules = tree.modules  # as named_modules(model)
        self.params = count_params(tree)
        self.size_bytes = size_bytes(tree)
        self.size_if = size_if(tree)
        per_module = params_per_module(tree)
        # each module's name, class name, depth, parameters with its children's, and its own parameters
        self.rows = [
            (
                name,
                type(module).__name__,
                0 if name == "" else name.count(".") + 1,
                per_module[name],
                sum(p.numel() for p in module._parameters.values() if p is not None),
            )
            for name, module in tree.modules
        ]
        self.parents = {name.rpartition(".")[0] for name, _ in tree.modules if name}  # the modules with children

    @functools.cached_property
    def enclosing(self) -> dict[str, tuple[str, ...]]:
        """Each module's enclosing modules below the root, outermost first."""
        found = {}
        for name, _ in self.modules:
            parts = name.split(".") if name else []
            found[name] = tuple(".".join(parts[:i]) for i in range(1, len(parts)))
        return found


def _build_profile(
    model: nn.Module,
    facts: _TreeFacts,
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
        inputs=_input_specs(inputs, kwargs),
        device=str(device),
        backward=backward,
        params=facts.params,
        size_bytes=facts.size_bytes,
        size_if=dict(facts.size_if),
        macs=sum(r.cost.macs for r in counted),
        flops=sum(r.cost.flops for r in counted),
        memory_access=MemoryAccess(
            read=sum(r.cost.bytes_read for r in records), write=sum(r.cost.bytes_written for r in records)
        ),
        modules=_module_stats(facts, records, stack),
        operators=_operator_stats(counted),
        uncounted=[UncountedOp(op, n) for op, n in Counter(r.op for r in records if not r.counted).most_common()],
        records=records,
    )


def _input_specs(inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> list[TensorSpec]:
    """Shape and dtype of every input tensor, with the keyword it was passed as."""
    named: list[tuple[str | None, torch.Tensor]] = [(None, t) for t in tensors_in(inputs)]
    named += [(name, t) for name, value in kwargs.items() for t in tensors_in(value)]
    return [TensorSpec(tuple(t.shape), dtype_name(t.dtype), name) for name, t in named]


def _module_stats(facts: _TreeFacts, records: list[OpRecord], stack: ModuleStack) -> list[ModuleStats]:
    stats: dict[str, ModuleStats] = {}
    for name, kind, depth, params, own_params in facts.rows:
        stats[name] = ModuleStats(
            name=name,
            type=kind,
            depth=depth,
            params=params,
            own_params=own_params,
            calls=stack.calls.get(name, 0),
            output_shapes=list(stack.output_shapes.get(name, [])),
            user_formula=name in stack.user_formula,
        )
    by_path: dict[tuple[str, ...], CostTotals] = {}  # the ops under each stack of modules, summed first
    for record in records:
        summed = by_path.get(record.modules)
        if summed is None:
            summed = by_path[record.modules] = CostTotals()
        summed.merge(record.cost)
    containers = _containers(stats, facts)
    if containers:  # first: the sums below are handed on in place
        for path, summed in by_path.items():
            for container in {c for module in path for c in containers.get(module, ())}:
                stats[container].merge(summed)
    # a module's row sums the stacks it is on; each stack holds a module once, so that is the sum, over the stacks
    # that end in it, of the ops under that stack and every longer stack that starts with it
    for path, summed in _under_each_stack(by_path).items():
        stats[path[-1]].merge(summed)
    return list(stats.values())


def _under_each_stack(by_path: dict[tuple[str, ...], CostTotals]) -> dict[tuple[str, ...], CostTotals]:
    """For every stack of modules that ops ran under, and every outer part of one, the cost of the ops under it.
    ``by_path``: the cost of the ops under exactly each stack; each of its sums is handed to its outer part once,
    added in place."""
    by_depth: dict[int, dict[tuple[str, ...], CostTotals]] = {}
    for path, summed in by_path.items():
        if path:
            by_depth.setdefault(len(path), {})[path] = summed
    for depth in range(max(by_depth, default=0), 1, -1):
        outer = by_depth.setdefault(depth - 1, {})
        for path, summed in by_depth[depth].items() if depth in by_depth else ():
            known = outer.get(path[:-1])
            if known is None:
                known = outer[path[:-1]] = CostTotals()
            known.merge(summed)
    return {path: summed for paths in by_depth.values() for path, summed in paths.items()}


def _containers(stats: dict[str, ModuleStats], facts: _TreeFacts) -> dict[str, list[str]]:
    """For each module, its enclosing modules that are never called (``nn.ModuleList``, ``nn.ModuleDict``): a
    container's row sums what ran inside it, as a called module's row does."""
    uncalled = {name for name, s in stats.items() if s.calls == 0} & facts.parents  # one that holds modules
    enclosing: dict[str, list[str]] = {}
    if not uncalled:  # a model whose every module with children ran (most): nothing to find
        return enclosing
    for name, outer in facts.enclosing.items():
        found = [p for p in outer if p in uncalled]
        if found:
            enclosing[name] = found
    return enclosing


def _operator_stats(records: list[OpRecord]) -> list[OperatorStats]:
    by_op: dict[str, OperatorStats] = {}
    for record in records:
        stats = by_op.get(record.op)
        if stats is None:
            stats = by_op[record.op] = OperatorStats(record.op)
        stats.add(record.cost)
    return sorted(by_op.values(), key=lambda o: (o.flops, o.memory_access.total), reverse=True)


def counted_step(optimizer: torch.optim.Optimizer, mode: CountingMode) -> None:
    """``optimizer.step()`` under the counting mode, its ops recorded in the "optimizer" phase."""
    mode.phase = "optimizer"
    try:
        optimizer.step()
    finally:
        mode.phase = None


def training_step(profile: Profile, optimizer: str) -> TrainingStep:
    """The step's FLOPs by phase, from a profile counted with an optimizer."""
    flops = {"forward": 0, "backward": 0, "optimizer": 0}
    for record in profile.records:
        if record.counted:
            flops[record.phase] = flops.get(record.phase, 0) + record.cost.flops
    tokens = next((math.prod(s.shape) for s in profile.inputs if s.dtype in TOKEN_DTYPES and len(s.shape) == 2), None)
    return TrainingStep(
        optimizer, flops["forward"], flops["backward"], flops["optimizer"], profile.params.trainable, tokens
    )
