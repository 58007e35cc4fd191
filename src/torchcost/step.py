"""The pieces of a training step, shared by ``memory(train=True)`` and ``profile(optimizer=...)``: the optimizer
(by name or factory) in its steady state, the loss, activation checkpointing per block, and autocast."""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from torchcost.errors import renamed
from torchcost.prepare import FLOATING_DTYPES
from torchcost.tensors import tensors_in

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
OptimizerSpec = str | OptimizerFactory | torch.optim.Optimizer
LossFn = Callable[[Any], torch.Tensor]

# PyTorch's defaults, but for a learning rate (SGD has none) and momentum where the name says so.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, **kw: torch.optim.SGD(params, lr=1e-3, **kw),
    "sgd-momentum": lambda params, **kw: torch.optim.SGD(params, lr=1e-3, momentum=0.9, **kw),
    "adam": lambda params, **kw: torch.optim.Adam(params, **kw),
    "adamw": lambda params, **kw: torch.optim.AdamW(params, **kw),
}


def training_copy(model: nn.Module) -> nn.Module:
    """A deep copy to train (a step changes the weights), without gradients."""
    trained = copy.deepcopy(model)
    trained.zero_grad(set_to_none=True)
    return trained


def trainable(model: nn.Module) -> list[nn.Parameter]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters (none requires grad): nothing to train; "
            "unfreeze some, or leave train off"
        )
    return params


def optimizer_name(spec: OptimizerSpec) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, torch.optim.Optimizer):
        return type(spec).__name__
    name = getattr(spec, "__name__", type(spec).__name__)
    return "custom" if name == "<lambda>" else str(name)


def check_optimizer(spec: OptimizerSpec | None) -> None:
    if isinstance(spec, str) and spec not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {spec!r}; use one of {', '.join(OPTIMIZERS)}, or pass a factory")


def make_optimizer(spec: OptimizerSpec, model: nn.Module, foreach: bool | None = None) -> torch.optim.Optimizer:
    """The optimizer over ``model``'s trainable parameters. A name takes PyTorch's implementation choice,
    unless ``foreach`` forces the multi-tensor one (as PyTorch picks on CUDA). An optimizer instance gives
    its class and settings only: the instance itself is never touched."""
    check_optimizer(spec)
    params = trainable(model)
    if isinstance(spec, str):
        return OPTIMIZERS[spec](params, **({"foreach": True} if foreach else {}))
    if isinstance(spec, torch.optim.Optimizer):
        accepted = inspect.signature(type(spec)).parameters
        return type(spec)(params, **{k: v for k, v in spec.defaults.items() if k in accepted})
    made = spec(params)
    if not isinstance(made, torch.optim.Optimizer):
        raise ValueError(f"the optimizer factory returned {type(made).__name__}, not a torch.optim.Optimizer")
    return made


def steady_state(optimizer: torch.optim.Optimizer) -> None:
    """Create the optimizer's state as a first step does (zero gradients in), then drop the gradients, so the
    measured step is a steady-state one. The warm-up step uses multi-tensor kernels where the optimizer has
    them (fewer calls; the state is the same). Changes the parameters it optimizes (weight decay): use a copy."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    chosen = [group.get("foreach") for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        if "foreach" in group and not group.get("fused"):
            group["foreach"] = True
    with torch.no_grad():
        for param in params:
            param.grad = torch.zeros_like(param)
        optimizer.step()
    for group, foreach in zip(optimizer.param_groups, chosen, strict=True):
        if "foreach" in group:
            group["foreach"] = foreach
    optimizer.zero_grad(set_to_none=True)


def steady_optimizer(model: nn.Module, spec: OptimizerSpec, foreach: bool | None = None) -> torch.optim.Optimizer:
    """The optimizer over ``model`` (a copy: its weights change), its state made before anything is counted
    (``make_optimizer`` then ``steady_state``)."""
    made = make_optimizer(spec, model, foreach=foreach)
    steady_state(made)
    return made


def default_loss(output: Any) -> torch.Tensor:
    """The sum of every floating-point output that requires grad."""
    roots = [t for t in tensors_in(output) if t.requires_grad and t.is_floating_point()]
    if not roots:
        raise ValueError("no output of the model requires grad, so there is nothing to backpropagate")
    total = roots[0].sum()
    for root in roots[1:]:
        total = total + root.sum()
    return total


def compute_loss(loss: LossFn | None, output: Any) -> torch.Tensor:
    value = (loss or default_loss)(output)
    if not isinstance(value, torch.Tensor) or value.numel() != 1 or not value.requires_grad:
        what = f"a tensor of shape {list(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        grad = "" if not isinstance(value, torch.Tensor) or value.requires_grad else " that does not require grad"
        raise ValueError(
            f"loss(output) returned {what}{grad}; it must return a scalar tensor that depends on the output "
            "(e.g. reduce it with .mean())"
        )
    return value


def checkpoint_blocks(model: nn.Module, pattern: str, preserve_rng_state: bool = True) -> list[str]:
    """Run each module whose path matches ``pattern`` (fnmatch; ``layers.*`` also matches ``model.layers.3``)
    under ``torch.utils.checkpoint``: its activations are recomputed in backward instead of kept. Only the
    outermost matches are wrapped. Changes ``model``: use a copy. Returns the wrapped paths."""
    wrapped: list[str] = []
    for name, module in model.named_modules():
        if not name or not (fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, "*." + pattern)):
            continue
        if any(name.startswith(outer + ".") for outer in wrapped):
            continue
        module.forward = functools.partial(_checkpointed, module.forward, preserve_rng_state)
        wrapped.append(name)
    if not wrapped:
        examples = ", ".join(name for name, _ in list(model.named_modules())[1:6])
        raise ValueError(f"no module path matches checkpoint pattern {pattern!r}; paths look like: {examples}")
    return wrapped


def _checkpointed(forward: Callable[..., Any], preserve_rng_state: bool, *args: Any, **kwargs: Any) -> Any:
    return checkpoint(forward, *args, use_reentrant=False, preserve_rng_state=preserve_rng_state, **kwargs)


def autocast_dtype(autocast: torch.dtype | str | None) -> torch.dtype | None:
    """The dtype ``autocast`` names ("bf16", "fp16", torch.bfloat16...); refused in one line unless 16-bit."""
    if autocast is None or autocast in (torch.bfloat16, torch.float16):
        return autocast
    named = (FLOATING_DTYPES.get(autocast) or getattr(torch, autocast, None)) if isinstance(autocast, str) else None
    if isinstance(named, torch.dtype) and named in (torch.bfloat16, torch.float16):
        return named
    raise ValueError(f"unknown autocast dtype {autocast!r}; use bf16 or fp16")


@contextlib.contextmanager
def autocast_to(dtype: torch.dtype | None, device_type: str) -> Iterator[None]:
    """``torch.autocast`` to ``dtype`` on ``device_type``; nothing when ``dtype`` is None."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type, dtype=dtype):
        yield


__getattr__ = renamed(
    __name__,
    {
        "AUTOCAST_DTYPES": (
            {key: FLOATING_DTYPES[key] for key in ("bf16", "fp16")}
            | {"bfloat16": torch.bfloat16, "float16": torch.float16},
            "torchcost.prepare.FLOATING_DTYPES (and torch's own names)",
        )
    },
)
