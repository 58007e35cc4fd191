"""Parameters, buffers and storage size, each shared (tied) tensor counted once.

Quantized weights count as the elements they stand for (a 4-bit 32 x 64 weight is 2,048 parameters) and their
size is the bytes actually stored: the inner tensors of a tensor subclass (torchao's ``Int8Tensor``: the int8
data, its scales and zero points), or the packed data and quantization state of bitsandbytes' ``Params4bit``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from torchcost.records import ParamCount

PLAIN = (torch.Tensor, nn.Parameter)  # tensors of these exact types hold their own data: no quantization state
# Bytes per element for the "what if" sizes; int4 packs two values per byte.
WHAT_IF_BYTES: dict[str, float] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int4": 0.5}


def logical_numel(t: torch.Tensor) -> int:
    """The elements a tensor stands for: those of the weight a packed 4-bit tensor encodes (bitsandbytes keeps
    its shape in ``quant_state.shape``), else its own."""
    if type(t) in PLAIN:
        return t.numel()
    state = getattr(t, "quant_state", None)
    shape = getattr(state, "shape", None)
    return math.prod(shape) if shape is not None else t.numel()


def stored_bytes(t: torch.Tensor) -> int:
    """Bytes a tensor stores: the sum over the inner tensors of a tensor subclass (``__tensor_flatten__``), the
    packed data plus the quantization state of a bitsandbytes tensor, else elements x element size."""
    if type(t) in PLAIN:
        return t.numel() * t.element_size()
    if _is_wrapper(t):
        names, _ = t.__tensor_flatten__()  # type: ignore[attr-defined]
        return sum(stored_bytes(getattr(t, name)) for name in names)
    own = t.numel() * t.element_size()
    state = getattr(t, "quant_state", None)
    return own + (_state_bytes(state) if state is not None else 0)


def _state_bytes(state: object, depth: int = 2) -> int:
    """Bytes of the tensors a quantization state holds (and its nested state, for double quantization)."""
    total = 0
    for value in vars(state).values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif depth and hasattr(value, "__dict__") and not isinstance(value, type):
            total += _state_bytes(value, depth - 1)
    return total


def is_weight(t: torch.Tensor) -> bool:
    """Floating-point, or a quantized stand-in for floating-point weights."""
    return t.is_floating_point() or (type(t) not in PLAIN and (hasattr(t, "quant_state") or _is_wrapper(t)))


def unique_tensors(tensors: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Drop repeats: the same tensor object, or (off the meta device) the same memory seen twice."""
    seen: set[object] = set()
    unique = []
    for t in tensors:
        if id(t) in seen:
            continue
        storage = _storage_key(t)
        if storage in seen:
            continue
        seen.add(id(t))
        seen.add(storage)
        unique.append(t)
    return unique


def _storage_key(t: torch.Tensor) -> object:
    """Where the tensor's data lives (the same memory reached twice is one tensor); its identity on meta, for
    lazy tensors and for subclasses without storage of their own."""
    if t.is_meta or is_lazy(t) or t.numel() == 0 or (type(t) not in PLAIN and _is_wrapper(t)):
        return id(t)
    return (t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride())


def _is_wrapper(t: torch.Tensor) -> bool:
    """A tensor subclass that holds its data in inner tensors (torchao's quantized tensors)."""
    return hasattr(t, "__tensor_flatten__")


class ModuleTree:
    """A model's module tree, walked once: what the counts of its parameters, buffers and sizes all read."""

    def __init__(self, root: nn.Module) -> None:
        self.paths = named_modules(root, remove_duplicate=False)  # a module shared by two parents: at both paths
        # each module once, at its first path: ``root.named_modules()``'s order (a shared module's subtree was
        # walked in full where it was first met)
        first: dict[int, tuple[str, nn.Module]] = {}
        for name, module in self.paths:
            first.setdefault(id(module), (name, module))
        self.modules = list(first.values())
        self._members: dict[str, list[torch.Tensor]] = {}

    def members(self, kind: str) -> list[torch.Tensor]:
        """Every parameter (``kind="_parameters"``) or buffer (``"_buffers"``) object once, in ``parameters()`` or
        ``buffers()`` order."""
        if kind not in self._members:
            found: dict[int, torch.Tensor] = {}
            for _, module in self.modules:
                for tensor in getattr(module, kind).values():
                    if tensor is not None:
                        found.setdefault(id(tensor), tensor)
            self._members[kind] = list(found.values())
        return self._members[kind]

    @functools.cached_property
    def stored(self) -> list[torch.Tensor]:
        """The parameters and buffers, each stored tensor once."""
        return unique_tensors([*self.members("_parameters"), *self.members("_buffers")])


def tree_of(module: nn.Module | ModuleTree) -> ModuleTree:
    return module if isinstance(module, ModuleTree) else ModuleTree(module)


def params_per_module(module: nn.Module | ModuleTree) -> dict[str, int]:
    """Parameters of every module and its children (each shared tensor once per module), in one pass.

    The same numbers as ``unique_parameters(module)`` summed for each module, without walking every
    subtree again: each tensor is added once to every module above any of its owners.
    """
    tree = tree_of(module)
    totals = {name: 0 for name, _ in tree.modules}
    above: dict[object, tuple[int, set[str]]] = {}  # storage key -> (elements, modules that contain it)
    ancestors: dict[str, tuple[str, ...]] = {}  # each path's modules from the root down: its parent's, then itself
    for name, child in tree.paths:  # a parent's path before its children's
        ancestors[name] = (*ancestors[name.rpartition(".")[0]], name) if name else ("",)
        for param in child._parameters.values():
            if param is not None:
                elements, seen = above.setdefault(_storage_key(param), (logical_numel(param), set()))
                seen.update(ancestors[name])
    for elements, modules in above.values():
        for name in modules:
            if name in totals:
                totals[name] += elements
    return totals


def named_modules(root: nn.Module, remove_duplicate: bool = True) -> list[tuple[str, nn.Module]]:
    """``root.named_modules()`` as a list, in its order (depth first, each module before its children; each
    module object once unless ``remove_duplicate=False``), walked with a list instead of nested generators:
    several times faster on trees of hundreds of modules."""
    found: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    pending: list[tuple[str, nn.Module]] = [("", root)]
    while pending:
        name, module = pending.pop()
        if remove_duplicate:
            if id(module) in seen:
                continue
            seen.add(id(module))
        found.append((name, module))
        children = [
            (f"{name}.{key}" if name else key, child) for key, child in module._modules.items() if child is not None
        ]
        pending.extend(reversed(children))
    return found


def members(module: nn.Module | ModuleTree, kind: str) -> list[torch.Tensor]:
    """``module.parameters()`` (``kind="_parameters"``) or ``module.buffers()`` (``"_buffers"``) as a list, in
    the same order, each tensor object once: read from each module's own table, without the prefixed names
    ``named_parameters`` builds for every member at every depth."""
    return tree_of(module).members(kind)


def unique_parameters(module: nn.Module | ModuleTree) -> list[nn.Parameter]:
    return unique_tensors(members(module, "_parameters"))  # type: ignore[return-value]


def count_params(module: nn.Module | ModuleTree) -> ParamCount:
    """Total, trainable and frozen parameters, and buffer elements, of a module and its children."""
    tree = tree_of(module)
    params = unique_parameters(tree)
    trainable = sum(logical_numel(p) for p in params if p.requires_grad)
    total = sum(logical_numel(p) for p in params)
    buffers = sum(b.numel() for b in unique_tensors(members(tree, "_buffers")))
    unshared = sum(logical_numel(p) for _, child in tree.paths for p in child._parameters.values() if p is not None)
    return ParamCount(total, trainable, total - trainable, buffers, shared=unshared - total)


def size_bytes(module: nn.Module | ModuleTree) -> int:
    """Bytes to store the parameters and buffers at their real dtypes."""
    return sum(stored_bytes(t) for t in tree_of(module).stored)


def size_if(module: nn.Module | ModuleTree) -> dict[str, int]:
    """Storage size if every floating-point parameter and buffer were stored at another precision.

    Integer buffers (such as BatchNorm's ``num_batches_tracked``) keep their real size.
    """
    tensors = tree_of(module).stored
    floating = sum(logical_numel(t) for t in tensors if is_weight(t))
    fixed = sum(stored_bytes(t) for t in tensors if not is_weight(t))
    return {name: math.ceil(floating * width) + fixed for name, width in WHAT_IF_BYTES.items()}
