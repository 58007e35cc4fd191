"""Getting a model and its inputs ready to run: the device and dtype to run in, a copy when either differs
from the model's, example inputs from shapes, and the model state that running may change."""

from __future__ import annotations

import copy
import itertools
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import torch
from torch import nn
from torch.nn.parameter import is_lazy
from torch.utils._pytree import tree_map

from torchcost.errors import InputMismatchError, ProfilingError
from torchcost.meta_copies import META_COPIES, CopyWatch
from torchcost.params import ModuleTree, unique_parameters
from torchcost.units import SHORT_DTYPE_NAMES

T = TypeVar("T")
FallbackCheck = Callable[[ProfilingError], None]  # hears why meta failed; may refuse the fallback by raising

InputSize = Sequence[int] | Sequence[Sequence[int]]


@dataclass
class Prepared:
    model: nn.Module  # the user's model, or a copy on another device or dtype
    inputs: tuple[Any, ...]
    kwargs: dict[str, Any]
    device: torch.device
    dtype: torch.dtype | None


def prepare(
    model: nn.Module,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    input_size: InputSize | None,
    dtype: torch.dtype | str | None,
    device: torch.device | str | None,
    channels_last: bool = False,
    reuse_meta_copy: bool = False,
) -> Prepared:
    """Inputs and model on the run device and dtype (and with ``channels_last``, 4-D weights and floating-point
    inputs in that memory format); the user's model is copied, never moved. ``reuse_meta_copy``: a copy on meta
    may be one made for an earlier call, while neither the model nor it changed (``meta_copies.py``); the caller
    hands it back with ``META_COPIES.returned`` after running it."""
    if inputs and input_size is not None:
        raise ProfilingError("give either example inputs or input_size=, not both")
    run_dtype = as_dtype(dtype)
    on_meta = device is not None and checked_device(device).type == "meta"
    lent = META_COPIES.lend(model, (run_dtype, channels_last)) if reuse_meta_copy and on_meta else None
    if lent is not None:  # the model's tree need not be walked
        return _prepared(lent, inputs, kwargs, input_size, torch.device("meta"), run_dtype, channels_last)
    tree = ModuleTree(model)
    lazy = has_lazy_parameters(tree)
    if lazy:
        lazy_inputs = random_inputs(input_size, run_dtype or torch.float32, device_of(model)) if input_size else inputs
        model = initialized_copy(model, lazy_inputs, kwargs)
        tree = ModuleTree(model)
    tensors = [*tree.members("_parameters"), *tree.members("_buffers")]  # each once, as parameters(), buffers()
    model_device = _device_among(tensors)
    run_device = checked_device(device) if device is not None else model_device
    needs_copy = run_device != model_device or (run_dtype is not None and _dtype_of(model) != run_dtype)
    copying = needs_copy or channels_last
    run_model = model
    if copying and reuse_meta_copy and run_device.type == "meta" and not lazy:  # a lazy model's copy is new each time
        run_model = META_COPIES.copy(
            model,
            [module for _, module in tree.modules],
            tensors,
            (run_dtype, channels_last),
            lambda watch: copy_to(model, run_device, run_dtype, channels_last, tensors, watch),
        )
    elif copying:
        run_model = copy_to(model, run_device, run_dtype, channels_last, tensors)
    return _prepared(run_model, inputs, kwargs, input_size, run_device, run_dtype, channels_last)


def _prepared(
    model: nn.Module,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    input_size: InputSize | None,
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool,
) -> Prepared:
    """``model`` ready to run, with its inputs made or moved to ``device`` and ``dtype`` (and ``channels_last``)."""
    if input_size is not None:
        inputs = random_inputs(input_size, dtype or torch.float32, device)
    inputs, kwargs = move((inputs, kwargs), device, dtype)
    if channels_last:
        inputs, kwargs = tree_map(_channels_last, (inputs, kwargs))
    return Prepared(model, inputs, kwargs, device, dtype)


def copy_to(
    model: nn.Module,
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool = False,
    tensors: list[torch.Tensor] | None = None,
    watch: CopyWatch | None = None,
) -> nn.Module:
    """A deep copy of ``model`` on ``device`` (and ``dtype``; 4-D weights and buffers in ``torch.channels_last``
    with ``channels_last``), tied weights still tied. ``tensors``: its parameters and buffers, when the caller
    has them already. ``watch``: told what the copy read and made, for snapshots of both (``meta_copies.py``).

    Each parameter and buffer is converted once, before copying, so moving to ``meta`` allocates nothing.
    """
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(model.parameters(), model.buffers()) if tensors is None else tensors:
        cast = dtype if dtype is not None and tensor.is_floating_point() else None
        moved = tensor.detach().to(device=device, dtype=cast)
        if channels_last and moved.dim() == 4:  # what model.to(memory_format=torch.channels_last) converts
            moved = moved.contiguous(memory_format=torch.channels_last)
        if isinstance(tensor, nn.Parameter):
            moved = nn.Parameter(moved, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = moved
    with warnings.catch_warnings():
        # an exported program's graph keeps fake tensors in its node metadata, and copying one warns
        warnings.filterwarnings("ignore", message="Accessing the data pointer of FakeTensor")
        # torch 2.11 warns when its own tree specs (an unflattened program's) are copied
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        copied = _copy_module(model, memo, watch)
    if watch is not None:
        watch.copies = memo
    return copied


# What copy.deepcopy consults on a class. A module class that defines none of these beyond nn.Module's, or only
# its own __setstate__ (nn.Conv2d keeps one for old checkpoints), is copied field by field: the same result as
# deepcopy, which makes a new instance, deep-copies the fields and hands them to __setstate__, without pickle's
# protocol for every module.
_COPY_PROTOCOL = ("__deepcopy__", "__copy__", "__reduce_ex__", "__reduce__", "__getstate__")
_ATOMIC = (type(None), bool, int, float, str)  # deepcopy returns these as they are


def _plain_module_class(cls: type) -> bool:
    plain = _PLAIN_CLASSES.get(cls)
    if plain is None:
        plain = _PLAIN_CLASSES[cls] = "__slots__" not in vars(cls) and all(
            getattr(cls, name, None) is getattr(nn.Module, name, None) for name in _COPY_PROTOCOL
        )
    return plain


_PLAIN_CLASSES: dict[type, bool] = {}  # found once per class


_EMPTY_CONTAINERS = (dict, OrderedDict, set)


def _copy_module(module: nn.Module, memo: dict[int, Any], watch: CopyWatch | None = None) -> nn.Module:
    """``copy.deepcopy(module, memo)``, a module tree at a time: its children copied the same way, its parameters
    and buffers taken from ``memo`` (converted already), every other field deep-copied. ``watch`` hears each
    table and container read and the one made of it, and each value deep-copied."""
    if id(module) in memo:
        copied: nn.Module = memo[id(module)]
        return copied
    cls = type(module)
    if not _plain_module_class(cls):
        if watch is not None:
            watch.whole = False  # pickle's protocol reads what it likes
        return copy.deepcopy(module, memo)
    new = cls.__new__(cls)
    memo[id(module)] = new
    state = {}
    for key, read in module.__dict__.items():
        kind = type(read)
        deep = False
        if kind in _ATOMIC or (kind is tuple and all(type(item) in _ATOMIC for item in read)):
            value = read  # flags, sizes, names: deepcopy returns them as they are
        elif kind in _EMPTY_CONTAINERS and not read:  # the many empty hook dicts and sets
            value = kind()
        elif key == "_modules":
            value = kind((n, None if m is None else _copy_module(m, memo, watch)) for n, m in read.items())
        elif key in ("_parameters", "_buffers") and kind in (dict, OrderedDict):
            value = kind((n, memo[id(t)] if id(t) in memo else copy.deepcopy(t, memo)) for n, t in read.items())
        else:
            value, deep = copy.deepcopy(read, memo), True
        if watch is not None and (deep or value is not read):  # a deep copy may be the value itself (a function)
            watch.copied(read, value, deep)
        state[key] = value
    if cls.__setstate__ is nn.Module.__setstate__:
        new.__dict__.update(state)
    else:
        new.__setstate__(state)  # type: ignore[no-untyped-call]
        if watch is not None and new.__dict__.keys() != state.keys():
            watch.whole = False  # fields the class made itself, unseen
    if watch is not None:
        watch.copied(module.__dict__, new.__dict__)
    return new


def _channels_last(leaf: Any) -> Any:
    """A 4-D floating-point tensor (a batch of images) in ``torch.channels_last``; anything else as it is."""
    if isinstance(leaf, torch.Tensor) and leaf.dim() == 4 and leaf.is_floating_point():
        return leaf.detach().contiguous(memory_format=torch.channels_last).requires_grad_(leaf.requires_grad)
    return leaf


def has_lazy_parameters(tree: ModuleTree) -> bool:
    """``nn.LazyLinear`` and friends learn their weight shapes from the first input."""
    return any(isinstance(p, nn.parameter.UninitializedParameter) for p in tree.members("_parameters"))


def initialized_copy(model: nn.Module, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> nn.Module:
    """A copy of a model with lazy modules, initialised by one forward on the example inputs (not counted);
    the user's model stays uninitialised. The forward runs where the model's parameters are (a model built on
    meta is initialised on meta), and its lazy parameters take their shapes there."""
    copied = copy.deepcopy(model)
    inputs, kwargs = move((inputs, kwargs), device_of(copied), None)
    with torch.no_grad():
        copied(*inputs, **kwargs)
    return copied


# The floating-point dtypes by short name ("fp32", "fp16", "bf16").
FLOATING_DTYPES = {
    short: getattr(torch, name) for name, short in SHORT_DTYPE_NAMES.items() if short in ("fp32", "fp16", "bf16")
}


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ProfilingError(f"unknown dtype {dtype!r}; use a torch dtype name such as float32, float16, bfloat16")
    return resolved


def checked_device(device: torch.device | str) -> torch.device:
    """``device`` as a ``torch.device``, refused in one line when torch does not know it or it is not here."""
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ProfilingError(f"unknown device {str(device)!r}; use meta, cpu or cuda") from None
    missing = (resolved.type == "cuda" and not torch.cuda.is_available()) or (
        resolved.type == "mps" and not torch.backends.mps.is_available()
    )
    if missing:
        raise ProfilingError(f"device {str(device)!r}: no {resolved.type} device is available here; use meta or cpu")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ProfilingError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer that is not lazy (cpu when it has none)."""
    return _device_among(itertools.chain(model.parameters(), model.buffers()))


def _device_among(tensors: Iterable[torch.Tensor]) -> torch.device:
    """The device of the first tensor that is not lazy (cpu when there is none)."""
    return next((t.device for t in tensors if not is_lazy(t)), torch.device("cpu"))


@overload
def meta_then(
    fallback: str, run: Callable[[str], T], before_fallback: FallbackCheck | None = None, mismatch_too: bool = False
) -> T: ...


@overload
def meta_then(
    fallback: None,
    run: Callable[[str | None], T],
    before_fallback: FallbackCheck | None = None,
    mismatch_too: bool = False,
) -> T: ...


def meta_then(
    fallback: Any, run: Callable[[Any], T], before_fallback: FallbackCheck | None = None, mismatch_too: bool = False
) -> T:
    """``run("meta")``, and ``run(fallback)`` when that failed for lack of real values: not for inputs that do not
    fit (``InputMismatchError``: any device would fail the same way), unless ``mismatch_too`` asks for the fallback
    device's own words. ``before_fallback`` hears the meta failure first, and may refuse the fallback by raising."""
    try:
        return run("meta")
    except ProfilingError as exc:
        if isinstance(exc, InputMismatchError) and not mismatch_too:
            raise
        if before_fallback is not None:
            before_fallback(exc)
    return run(fallback)


def meta_then_device(model: nn.Module, run: Callable[[str | None], T]) -> T:
    """``meta_then`` with the model's own device (``run(None)``) as the fallback, unless the model has no data to
    run on."""

    def needs_data(exc: ProfilingError) -> None:
        if device_of(model).type == "meta":
            raise exc

    return meta_then(None, run, needs_data)


def _dtype_of(model: nn.Module) -> torch.dtype | None:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def random_inputs(input_size: InputSize, dtype: torch.dtype, device: torch.device) -> tuple[Any, ...]:
    """Random tensors of these shapes (zeros for integer dtypes), the same on every run: drawn from their own
    generator, so that making them leaves the global random stream alone."""
    sizes = [input_size] if input_size and isinstance(input_size[0], int) else list(input_size)
    generator = torch.Generator().manual_seed(0)
    made = []
    for size in sizes or [()]:
        shape = tuple(int(s) for s in size)  # type: ignore[attr-defined]
        if not shape or min(shape) < 1:
            raise ProfilingError(f"input_size {shape} is not a shape of positive sizes such as (1, 3, 224, 224)")
        if dtype.is_floating_point or dtype.is_complex:
            made.append(torch.randn(shape, dtype=dtype, generator=generator).to(device))
        else:
            made.append(torch.zeros(shape, dtype=dtype, device=device))
    return tuple(made)


def move(tree: Any, device: torch.device, dtype: torch.dtype | None) -> Any:
    """Tensors on ``device`` (floating-point ones cast to ``dtype``); on meta with the same strides, so that a
    slice or a transposed input is counted as the CPU counts it (``.to("meta")`` makes gapped layouts dense)."""

    def move_leaf(leaf: Any) -> Any:
        if not isinstance(leaf, torch.Tensor):
            return leaf
        cast = dtype if dtype is not None and leaf.is_floating_point() else None
        if device.type == "meta" and leaf.device.type != "meta" and leaf.layout == torch.strided:
            moved = torch.empty_strided(leaf.shape, leaf.stride(), dtype=cast or leaf.dtype, device="meta")
            return moved.requires_grad_(leaf.requires_grad)
        return leaf.to(device=device, dtype=cast)

    return tree_map(move_leaf, tree)


def with_batch(tree: Any, batch: int) -> Any:
    """The same inputs with a batch of ``batch`` along dim 0 (the first sample repeated)."""

    def resize(leaf: Any) -> Any:
        if not isinstance(leaf, torch.Tensor) or leaf.dim() == 0:
            return leaf
        return leaf[:1].repeat(batch, *[1] * (leaf.dim() - 1))

    return tree_map(resize, tree)


class ModelState:
    """What running a model can change: training flags, grads, (in training mode) buffers, and the random
    number generators (dropout draws from them: a user who profiles in the middle of a seeded run keeps it)."""

    def __init__(self, model: nn.Module, runs_itself: bool = True) -> None:
        """``runs_itself=False``: what runs is a copy on another device, which shares no tensor with ``model``;
        only the random number generators are kept then, as nothing of ``model`` can change."""
        tree = ModuleTree(model) if runs_itself else None
        self.training = [(m, m.training) for _, m in tree.modules] if tree else []
        self.grads = [(p, p.grad) for p in unique_parameters(tree)] if tree else []
        for param, _ in self.grads:  # backward would accumulate into them in place
            param.grad = None
        buffers = tree.members("_buffers") if tree else []
        self.buffers = [(b, b.detach().clone()) for b in buffers if not is_lazy(b)]
        self.cpu_rng = torch.get_rng_state()
        on_cuda = torch.cuda.is_initialized() or device_of(model).type == "cuda"  # type: ignore[no-untyped-call]
        self.cuda_rng = torch.cuda.get_rng_state_all() if on_cuda else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        for module, training in self.training:
            module.training = training
        for param, grad in self.grads:
            param.grad = grad
        with torch.no_grad():
            for buffer, saved in self.buffers:
                if buffer.device.type != "meta":
                    buffer.copy_(saved)
