"""Parameters, buffers and storage size, each shared (tied) tensor counted once."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from torchcost.records import ParamCount

# Bytes per element for the "what if" sizes; int4 packs two values per byte.
WHAT_IF_BYTES: dict[str, float] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int4": 0.5}


def unique_tensors(tensors: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Drop repeats: the same tensor object, or (off the meta device) the same memory seen twice."""
    seen: set[object] = set()
    unique = []
    for t in tensors:
        keys: list[object] = [id(t)]
        if t.device.type != "meta" and t.numel() > 0:
            keys.append((t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride()))
        if any(key in seen for key in keys):
            continue
        seen.update(keys)
        unique.append(t)
    return unique


def _storage_key(t: torch.Tensor) -> object:
    if t.device.type != "meta" and t.numel() > 0:
        return (t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride())
    return id(t)


def params_per_module(model: nn.Module) -> dict[str, int]:
    """Parameters of every module and its children (each shared tensor once per module), in one pass.

    The same numbers as ``unique_parameters(module)`` summed for each module, without walking every
    subtree again: each tensor is added once to every module above any of its owners.
    """
    totals = {name: 0 for name, _ in model.named_modules()}
    above: dict[object, tuple[int, set[str]]] = {}  # storage key -> (elements, modules that contain it)
    for name, module in model.named_modules(remove_duplicate=False):
        for param in module._parameters.values():
            if param is None:
                continue
            parts = name.split(".") if name else []
            ancestors = {".".join(parts[:depth]) for depth in range(len(parts) + 1)}
            elements, seen = above.setdefault(_storage_key(param), (param.numel(), set()))
            seen.update(ancestors)
    for elements, modules in above.values():
        for name in modules:
            if name in totals:
                totals[name] += elements
    return totals


def unique_parameters(module: nn.Module) -> list[nn.Parameter]:
    return unique_tensors(module.parameters())  # type: ignore[return-value]


def count_params(module: nn.Module) -> ParamCount:
    """Total, trainable and frozen parameters, and buffer elements, of a module and its children."""
    params = unique_parameters(module)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    buffers = sum(b.numel() for b in unique_tensors(module.buffers()))
    unshared = sum(p.numel() for _, p in module.named_parameters(remove_duplicate=False))
    return ParamCount(total, trainable, total - trainable, buffers, shared=unshared - total)


def size_bytes(module: nn.Module) -> int:
    """Bytes to store the parameters and buffers at their real dtypes."""
    tensors = unique_tensors([*module.parameters(), *module.buffers()])
    return sum(t.numel() * t.element_size() for t in tensors)


def size_if(module: nn.Module) -> dict[str, int]:
    """Storage size if every floating-point parameter and buffer were stored at another precision.

    Integer buffers (such as BatchNorm's ``num_batches_tracked``) keep their real size.
    """
    tensors = unique_tensors([*module.parameters(), *module.buffers()])
    floating = sum(t.numel() for t in tensors if t.is_floating_point())
    fixed = sum(t.numel() * t.element_size() for t in tensors if not t.is_floating_point())
    return {name: math.ceil(floating * width) + fixed for name, width in WHAT_IF_BYTES.items()}
