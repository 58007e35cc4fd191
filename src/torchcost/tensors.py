"""Walking trees of tensors: the tensors in an op's arguments or a model's output, their shapes and dtype names,
those an object reaches through its attributes (a KV cache), and the bytes a tensor really refers to. Ground
floor: imports only torch."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import SUPPORTED_NODES, tree_leaves


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of the elements a tensor really refers to: a broadcast (stride-0) dimension is stored once."""
    if t.layout != torch.strided:
        return t.numel() * t.element_size()
    elements = math.prod(size for size, stride in zip(t.shape, t.stride(), strict=True) if stride != 0)
    return elements * t.element_size()


def tensors_in(tree: Any) -> list[torch.Tensor]:
    """The tensors in a tree of tuples, lists, dicts and other pytree nodes, in pytree order."""
    found: list[torch.Tensor] = []
    _collect(tree, found)
    return found


# Argument types that hold no tensor, skipped at once: most of an op's arguments (strides, padding, flags).
NO_TENSORS = frozenset(
    {int, float, bool, str, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format}
)


def _collect(tree: Any, found: list[torch.Tensor]) -> None:
    # plain containers walked directly: pytree's generic walk costs more than many ops' formulas
    if type(tree) in NO_TENSORS:
        return
    if isinstance(tree, torch.Tensor):
        found.append(tree)
    elif isinstance(tree, tuple | list):  # named tuples and torch.return_types too
        for leaf in tree:
            if type(leaf) not in NO_TENSORS:
                _collect(leaf, found)
    elif isinstance(tree, dict):
        for leaf in tree.values():
            _collect(leaf, found)
    elif type(tree) in SUPPORTED_NODES:
        found.extend(leaf for leaf in tree_leaves(tree) if isinstance(leaf, torch.Tensor))


def reachable_tensors(tree: Any, depth: int = 6) -> list[torch.Tensor]:
    """Every tensor reachable from ``tree`` through containers and object attributes (a KV cache object in
    a model's output, for one)."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    if depth == 0 or tree is None or isinstance(tree, str | int | float | bool | nn.Module):
        return []
    if isinstance(tree, dict):
        children: list[Any] = list(tree.values())
    elif isinstance(tree, list | tuple | set):
        children = list(tree)
    elif hasattr(tree, "__dict__"):
        children = list(vars(tree).values())
    else:
        return []
    return [t for child in children for t in reachable_tensors(child, depth - 1)]


def shapes(tensors: list[torch.Tensor]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(t.shape) for t in tensors)


@functools.cache
def dtype_name(dtype: torch.dtype) -> str:
    """``"float32"``: a dtype's name without ``torch.``."""
    return str(dtype).removeprefix("torch.")


def dtype_names(tensors: list[torch.Tensor]) -> tuple[str, ...]:
    return tuple(dtype_name(t.dtype) for t in tensors)


def shapes_of(tree: Any) -> tuple[tuple[int, ...], ...]:
    if type(tree) is tuple and len(tree) == 1 and isinstance(tree[0], torch.Tensor):  # a module's usual input
        return (tuple(tree[0].shape),)
    return shapes(tensors_in(tree))


def dtypes_of(tree: Any) -> tuple[str, ...]:
    return dtype_names(tensors_in(tree))
