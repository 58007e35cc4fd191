"""``memory()``: run one inference or one training step with every storage's lifetime tracked, on an abstract
copy of the model (no memory allocated) or on a real device, and gather a ``MemoryProfile``."""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._pytree import tree_map

from torchcost.counting.failure import forward_failure
from torchcost.counting.module_stack import ModuleStack
from torchcost.emulate.on_meta import CudaChoices
from torchcost.errors import renamed
from torchcost.hardware import hardware
from torchcost.peak_memory.build import build, categories, peak_at
from torchcost.peak_memory.cuda_allocator import replay
from torchcost.peak_memory.cuda_libraries import CONTEXT_ALLOWANCE, add_cublas_workspaces, cublas_workspace_bytes
from torchcost.peak_memory.memory_profile import MemoryProfile
from torchcost.peak_memory.tracker import Lifetimes, LifetimeTracker
from torchcost.prepare import ModelState, as_dtype, device_of, meta_then_device, prepare
from torchcost.records import TensorSpec
from torchcost.step import (
    LossFn,
    OptimizerSpec,
    autocast_dtype,
    autocast_to,
    check_optimizer,
    checkpoint_blocks,
    compute_loss,
    optimizer_name,
    steady_optimizer,
    trainable,
    training_copy,
)
from torchcost.tensors import dtype_name, reachable_tensors, tensors_in

Labels = Mapping[str, Callable[[], list[torch.Tensor]]]  # extra category -> the tensors in it, read after the run

NOT_COUNTED = (
    "not counted: kernel workspaces other than BLAS operand copies, cuBLAS's, the fused attention's and CPU "
    "convolutions' buffers (cuDNN's, oneDNN's in backward)"
)


@dataclass(frozen=True)
class MemorySettings:
    """What to run: inference or a training step, and the what-ifs."""

    train: bool
    optimizer: OptimizerSpec | None
    loss: LossFn | None
    dtype: torch.dtype | None
    autocast: torch.dtype | None
    checkpoint: str | None


def memory(
    model: nn.Module,
    *inputs: Any,
    train: bool = False,
    optimizer: OptimizerSpec | None = None,
    loss: LossFn | None = None,
    dtype: torch.dtype | str | None = None,
    autocast: torch.dtype | str | None = None,
    checkpoint: str | None = None,
    device: torch.device | str | None = "auto",
    target: str | None = None,
    gpu: str | None = None,
    **kwargs: Any,
) -> MemoryProfile:
    """Peak memory of ``model(*inputs, **kwargs)``, or of one training step, tracked storage by storage.

    Args:
        model: any ``nn.Module``; left exactly as it was found (weights, grads, buffers, ``training`` flags).
        inputs, kwargs: example inputs, as the model takes them.
        train: run a training step: forward (training mode), ``loss(output)``, backward, and
            ``optimizer.step()`` when an optimizer is given. Otherwise one forward in eval mode under
            ``torch.no_grad()``.
        optimizer: ``"sgd"``, ``"sgd-momentum"``, ``"adam"``, ``"adamw"``, a factory taking the parameters, or an
            optimizer whose class and settings are used (on a copy). Implies ``train``. The step measured is a
            steady-state one: the optimizer state exists before it.
        loss: a function of the output returning a scalar; by default the sum of the outputs.
        dtype: run a copy of the model and the floating-point inputs in this dtype.
        autocast: mixed precision: ``"bf16"`` or ``"fp16"`` (``torch.autocast``) around forward and loss.
        checkpoint: recompute the blocks whose path matches this pattern in backward
            (``torch.utils.checkpoint``); e.g. ``"layers.*"``. Training only.
        device: ``"meta"``: an abstract copy (no memory allocated, no kernel run; tensors behave as CPU ones);
            ``"cpu"``/``"cuda"``: a real run on that device (training on a copy of the model); ``None``: the
            model's own device. ``"auto"``: meta, and the model's own device if the forward needs real values.
        target: the device kind the figures are for, ``"cpu"`` or ``"cuda"`` (the caching allocator's blocks,
            cuBLAS workspaces, multi-tensor optimizer kernels); by default the kind of the device run on or the
            model's.
        gpu: the GPU the CUDA figures are for, a spec-table name (``"h100"``, ``"l4"``) or ``"cuda"`` (this
            machine's); implies ``target="cuda"``. Its compute capability sets the cuBLAS workspace size; without
            it, the GPU run on, else the 32 MiB of Hopper and later.
    """
    settings = settings_for(train, optimizer, loss, dtype, autocast, checkpoint)
    capability = None
    if gpu is not None:
        capability, target = hardware(gpu).capability, "cuda"
    if device == "auto":
        return meta_then_device(
            model, lambda run_on: estimate(model, inputs, kwargs, settings, run_on, target, capability=capability)
        )
    return estimate(model, inputs, kwargs, settings, device, target, capability=capability)


def settings_for(
    train: bool,
    optimizer: OptimizerSpec | None,
    loss: LossFn | None,
    dtype: torch.dtype | str | None,
    autocast: torch.dtype | str | None,
    checkpoint: str | None,
) -> MemorySettings:
    check_optimizer(optimizer)
    train = train or optimizer is not None
    if checkpoint is not None and not train:
        raise ValueError("checkpoint= applies to a training step: pass train=True (--train)")
    if loss is not None and not train:
        raise ValueError("loss= applies to a training step: pass train=True (--train)")
    return MemorySettings(train, optimizer, loss, as_dtype(dtype), autocast_dtype(autocast), checkpoint)


def estimate(
    model: nn.Module,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    settings: MemorySettings,
    device: torch.device | str | None,
    target: str | None = None,
    labels: Labels | None = None,
    capability: tuple[int, int] | None = None,
) -> MemoryProfile:
    """One tracked run; ``labels`` puts the storages of some tensors alive after the run in their own category
    (``torchcost llm`` keeps the KV cache apart this way); ``capability`` is the CUDA compute capability the
    figures are for (None: the GPU run on, else unknown)."""
    abstract = device is not None and torch.device(device).type == "meta"
    run_on = torch.device("cpu") if abstract else torch.device(device) if device is not None else device_of(model)
    kind = target or ("cuda" if (device_of(model) if abstract else run_on).type == "cuda" else "cpu")
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"unknown target {kind!r}; use cpu or cuda")
    with contextlib.ExitStack() as scope:
        if abstract:
            fake = FakeTensorMode(allow_non_fake_inputs=True)
            run_model = fake_copy(model, fake, settings.dtype)
            inputs, kwargs = to_fake((inputs, kwargs), fake, settings.dtype)
            scope.enter_context(fake)
        else:
            prepared = prepare(model, inputs, kwargs, None, settings.dtype, device)
            run_model, inputs, kwargs = prepared.model, prepared.inputs, prepared.kwargs
            if settings.train and run_model is model:
                run_model = training_copy(model)
            if run_model is model:
                scope.callback(ModelState(model).restore)
        tracker = _run(run_model, inputs, kwargs, settings, abstract, run_on.type, kind, labels or {})
    reserved = None
    if kind == "cuda":
        if capability is None and run_on.type == "cuda":
            capability = torch.cuda.get_device_capability(run_on)
        reserved = _through_allocator(tracker.seen, capability)
    kinds = categories(tracker.seen)
    built = build(tracker.seen, kinds, run_model)
    return MemoryProfile(
        model=type(model).__name__,
        inputs=[TensorSpec(tuple(t.shape), dtype_name(t.dtype)) for t in tensors_in((inputs, kwargs))],
        device="meta" if abstract else str(run_on),
        target=kind,
        train=settings.train,
        optimizer=None if settings.optimizer is None else optimizer_name(settings.optimizer),
        dtype=None if settings.dtype is None else dtype_name(settings.dtype),
        autocast=None if settings.autocast is None else dtype_name(settings.autocast),
        checkpoint=settings.checkpoint,
        peak_bytes=built.peak.total,
        breakdown=dict(built.peak.bytes),
        peak_at=peak_at(built.peak),
        phase_peaks=built.phase_peaks,
        timeline=built.timeline,
        modules=built.modules,
        notes=_notes(settings, abstract, kind, capability),
        reserved_bytes=reserved,
        context_bytes=CONTEXT_ALLOWANCE if kind == "cuda" else None,
    )


def _through_allocator(seen: Lifetimes, capability: tuple[int, int] | None) -> int:
    """Make the tracked bytes what the CUDA caching allocator hands out, cuBLAS workspaces included, in a
    steady-state step; the bytes it reserves."""
    add_cublas_workspaces(seen, cublas_workspace_bytes(capability))
    replayed = replay(seen)
    for life, nbytes in zip(seen.lives, replayed.blocks, strict=True):
        life.nbytes = nbytes
    seen.steps = [replace(call, workspace=nbytes) for call, nbytes in zip(seen.steps, replayed.workspaces, strict=True)]
    return replayed.reserved


def _run(
    model: nn.Module,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    settings: MemorySettings,
    abstract: bool,
    device_type: str,
    target: str,
    labels: Labels,
) -> LifetimeTracker:
    optimizer = None
    if settings.train:
        trainable(model)
        if settings.checkpoint is not None:
            checkpoint_blocks(model, settings.checkpoint, preserve_rng_state=not abstract)
        if settings.optimizer is not None:
            foreach = abstract and target == "cuda"  # PyTorch's choice on CUDA, which a fake CPU tensor would not get
            optimizer = steady_optimizer(model, settings.optimizer, foreach=foreach)
    model.train(settings.train)
    names = {id(module): name for name, module in model.named_modules()}
    stack = ModuleStack(names)
    tracker = LifetimeTracker(stack, None if abstract else device_type, workspaces=target)
    _track_state(tracker, model, inputs, kwargs, optimizer, host_steps=target == "cuda")
    cuda_kernels = CudaChoices() if abstract and target == "cuda" else contextlib.nullcontext()
    with stack, tracker, cuda_kernels:
        with torch.set_grad_enabled(settings.train), autocast_to(settings.autocast, device_type):
            output = _forward(model, stack, inputs, kwargs, abstract)
            loss = compute_loss(settings.loss, output) if settings.train else None
        if loss is not None:
            tracker.seen.backward_from = len(tracker.seen.steps) + 1
            tracker.phase = "backward"  # the seed gradient too
            torch.autograd.backward([loss])
            tracker.label([p.grad for p in model.parameters() if p.grad is not None], "gradients")
            if optimizer is not None:
                tracker.phase = "optimizer"
                optimizer.step()
        for category, tensors in labels.items():
            tracker.label(tensors(), category)
        tracker.label(reachable_tensors((output, loss)), "inputs_outputs")
        tracker.stop()
    return tracker


def _track_state(
    tracker: LifetimeTracker,
    model: nn.Module,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    optimizer: torch.optim.Optimizer | None,
    host_steps: bool = False,
) -> None:
    """What exists before the run: parameters, buffers (and other tensors the modules hold), the inputs, the
    optimizer state; with ``host_steps``, less the optimizers' step counts, which PyTorch keeps on the host for
    a CUDA model unless the optimizer is capturable or fused (``_init_group`` in ``torch/optim/adam.py``)."""
    tracker.track(list(model.parameters()), "parameters")
    held = [value for module in model.modules() for value in vars(module).values() if isinstance(value, torch.Tensor)]
    tracker.track([*model.buffers(), *held], "buffers")
    tracker.track(tensors_in((inputs, kwargs)), "inputs_outputs")
    if optimizer is not None:
        state = [
            value
            for values in optimizer.state.values()
            for key, value in values.items()
            if isinstance(value, torch.Tensor) and not (host_steps and key == "step" and value.dim() == 0)
        ]
        tracker.track(state, "optimizer_state")


def _forward(
    model: nn.Module, stack: ModuleStack, inputs: tuple[Any, ...], kwargs: dict[str, Any], abstract: bool
) -> Any:
    try:
        return model(*inputs, **kwargs)
    except Exception as exc:
        raise forward_failure(model, stack, exc, abstract, "memory") from exc


def fake_copy(model: nn.Module, mode: FakeTensorMode, dtype: torch.dtype | None) -> nn.Module:
    """A deep copy of ``model`` whose parameters and buffers are fake CPU tensors (shapes, strides and dtypes
    only), tied weights still tied."""
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        fake = _fake(tensor, mode, dtype)
        memo[id(tensor)] = nn.Parameter(fake, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else fake
    return copy.deepcopy(model, memo)


def to_fake(tree: Any, mode: FakeTensorMode, dtype: torch.dtype | None) -> Any:
    return tree_map(lambda leaf: _fake(leaf, mode, dtype) if isinstance(leaf, torch.Tensor) else leaf, tree)


def _fake(tensor: torch.Tensor, mode: FakeTensorMode, dtype: torch.dtype | None) -> torch.Tensor:
    cast = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
    with mode:
        fake = torch.empty_strided(tuple(tensor.shape), tensor.stride(), dtype=cast, device="cpu")
    return fake.requires_grad_(tensor.requires_grad) if tensor.is_floating_point() else fake


def _notes(settings: MemorySettings, abstract: bool, target: str, capability: tuple[int, int] | None) -> list[str]:
    notes = []
    if settings.train and settings.optimizer is not None:
        notes.append(
            "steady-state training step: the optimizer state exists before it (as from the second step on); "
            "gradients start empty (zero_grad(set_to_none=True))"
        )
    elif settings.train:
        notes.append("forward and backward only: no optimizer step (give an optimizer to add one)")
    if settings.train:
        notes.append("the output and the loss stay referenced until the step ends, as in a usual training loop")
    if abstract:
        notes.append("counted on meta: fake CPU tensors, no memory allocated and no kernel run")
    if target == "cuda":
        notes.append(
            "for CUDA: every allocation replayed through PyTorch's caching allocator in a steady-state step (512-byte "
            "rounding, 2 MiB and 20 MiB segments, blocks not split when the rest is small): allocated bytes as "
            "torch.cuda.max_memory_allocated() counts them, reserved as max_memory_reserved()"
        )
        workspace = cublas_workspace_bytes(capability)
        gpu = (
            "compute capability unknown"
            if capability is None
            else f"compute capability {capability[0]}.{capability[1]}"
        )
        notes.append(f"cuBLAS workspaces: {workspace:,} bytes per thread that calls cuBLAS ({gpu})")
        notes.append(
            f"what nvidia-smi shows adds the CUDA context to the reserved bytes: an allowance of "
            f"{CONTEXT_ALLOWANCE >> 20} MiB, not measured"
        )
    if target == "cuda" and abstract and isinstance(settings.optimizer, str):
        notes.append("the optimizer runs its multi-tensor (foreach) kernels, as PyTorch picks on CUDA")
    notes.append(NOT_COUNTED)
    return notes


__getattr__ = renamed(__name__, {"Settings": MemorySettings})
