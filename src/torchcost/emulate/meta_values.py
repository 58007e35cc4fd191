"""The values of the tensors that depend only on the inputs, while a model runs on ``meta``.

Meta tensors have shapes and no data, so a forward that looks at a value (``if mask.all():``,
``lengths.max().item()``, ``offsets.tolist()``, ``torch.nonzero(ids == image_token)``) cannot run on them. Most
such values depend only on the example inputs (token ids, attention masks, positions), not on the weights.
``MetaValues`` keeps a real CPU copy of every meta tensor that derives from real inputs and constants alone, by
running each such op again on those copies (for outputs of up to ``MAX_ELEMENTS`` elements), so the model gets
the answers a CPU run would give. A value that depends on the weights stays unknown, and asking for it fails as
before (``profile(device="auto")`` then counts on the model's own device); ops that only move elements (``cat``,
views) keep the known elements of a tensor known beside the unknown ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch._ops import OpOverload
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_map
from torch.utils.weak import WeakTensorKeyDictionary

from torchcost.emulate.schema import updates_self
from torchcost.errors import renamed
from torchcost.tensors import NO_TENSORS, tensors_in

MAX_ELEMENTS = 1 << 22  # outputs larger than this (16 MB of fp32) are not computed: their values stay unknown
BUILD_MAX_ELEMENTS = 1 << 16  # while a model is built on meta: its buffers, not its weights
_CPU = torch.device("cpu")


def is_meta(tensor: Any) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.device.type == "meta"


class MetaValues:
    """Real values (CPU tensors) of meta tensors computed from real inputs and constants only."""

    def __init__(self, max_elements: int = MAX_ELEMENTS, fallback: MetaValues | None = None) -> None:
        self.max_elements = max_elements
        self.fallback = fallback  # asked for the values this store does not know (those of a model's buffers)
        self._values = WeakTensorKeyDictionary()
        self._unknown: set[StorageWeakRef] = set()  # meta storages written by an op we could not compute
        self._partial = WeakTensorKeyDictionary()  # meta -> (value, mask of the known elements), see _follow_parts
        # ids of every tensor ever given a value or known elements: most tensors asked about (weights, activations)
        # are not among them, an answer a set gives at once where the weak dictionaries hash a weak reference
        self._ids: set[int] = set()
        self.spread_picks = 0  # top-k / argmax picks among unknown values given even-spread values (see follow)
        # the id sets of this store and of every store it falls back to
        self._id_sets: tuple[set[int], ...] = (self._ids, *(fallback._id_sets if fallback is not None else ()))

    def seed(self, meta: torch.Tensor, value: torch.Tensor) -> None:
        """``meta`` holds ``value`` (an input moved to meta, say)."""
        self._unknown.discard(_storage(meta))
        self._values[meta] = value
        self._ids.add(id(meta))

    def get(self, tensor: torch.Tensor) -> torch.Tensor | None:
        """The value of a meta tensor if it is known; a tensor with data is its own value."""
        if not is_meta(tensor):
            return tensor
        value: torch.Tensor | None = None
        if self._may_know(id(tensor)):  # most tensors (weights, activations): not, the answer from sets of ids
            value = self._values.get(tensor) if id(tensor) in self._ids else None  # type: ignore[no-untyped-call]
            if value is None and self.fallback is not None:
                value = self.fallback.get(tensor)
            if value is not None and _storage(tensor) in self._unknown:
                value = None
        return value if value is not None else _no_elements(tensor)

    def _may_know(self, key: int) -> bool:
        """Whether this store or one it falls back to was ever given a tensor with this id."""
        return any(key in ids for ids in self._id_sets)

    def compute(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``func`` run on the values of its meta arguments (on the CPU); NotImplemented if one is unknown."""
        tensors = tensors_in((args, kwargs))
        if any(self.get(t) is None for t in tensors):
            return NotImplemented

        def real(leaf: Any) -> Any:
            return self.get(leaf) if isinstance(leaf, torch.Tensor) else _off_meta(leaf)

        try:
            return func(*_map_leaves(real, args), **_map_leaves(real, kwargs))
        except Exception:
            return NotImplemented

    def follow(
        self,
        func: OpOverload,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        out: Any,
        inputs: list[torch.Tensor] | None = None,
        asked: bool = False,
    ) -> bool:
        """Keep the values of ``out`` (the op's meta result) when they can be computed; mark tensors the op
        wrote as unknown when they cannot. ``inputs``: the argument tensors, when the caller has them already;
        ``asked``: the caller asked ``none_known`` of them already, and heard no. Whether what the store knows
        may have changed (False: certainly not)."""
        inputs = tensors_in((args, kwargs)) if inputs is None else inputs
        if not inputs and isinstance(out, torch.Tensor):  # a creation op (empty, zeros, arange): the usual one
            return self._follow_creation(func, args, kwargs, out)
        # most ops of a model: an argument's value is unknown, and there are no known elements to move
        if not asked and not writes_or_picks(func) and self.none_known(inputs):  # that answer from sets of ids alone
            return False
        if self._unknown_result(func, inputs):
            self._mark_written(func, args, kwargs)
            self._spread(func, args, kwargs, out)
            return True
        outputs = [t for t in tensors_in(out) if is_meta(t)]
        too_large = sum(t.numel() for t in outputs) > self.max_elements and not func.is_view  # a view is free
        if not outputs or too_large:
            computed: Any = NotImplemented
        else:
            computed = self.compute(func, args, kwargs)
        if computed is NotImplemented:
            self._mark_written(func, args, kwargs)
            self._spread(func, args, kwargs, out)
            if outputs and not too_large:
                self._follow_parts(func, args, kwargs, outputs)
            return True
        for meta, value in zip(outputs, [t for t in tensors_in(computed)], strict=False):
            if meta.shape == value.shape and meta.dtype == value.dtype:
                self.seed(meta, value)
        return True

    def _follow_creation(
        self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor
    ) -> bool:
        """``follow`` for an op with no tensor argument and one tensor result: its values come from its arguments
        alone, computed on the CPU. Whether they were kept."""
        if not is_meta(out) or not 0 < out.numel() <= self.max_elements:  # no elements: get() knows them already
            return False
        try:
            value = func(*_map_leaves(_off_meta, args), **_map_leaves(_off_meta, kwargs))
        except Exception:
            return False
        if isinstance(value, torch.Tensor) and value.shape == out.shape and value.dtype == out.dtype:
            self.seed(out, value)
            return True
        return False

    def none_known(self, tensors: list[torch.Tensor]) -> bool:
        """Some meta argument has elements, and no store was ever given any of the meta arguments: the result is
        unknown and no known element moves (``_unknown_result``'s answer, from sets of ids). For an op that
        neither writes in place nor picks (``writes_or_picks``), ``follow`` then has nothing to do: a caller
        that knows the op may skip the call. This runs for every op of a model."""
        ids = [id(tensor) for tensor in tensors if tensor.is_meta]
        if not ids:
            return False
        for known in self._id_sets:
            if not known.isdisjoint(ids):
                return False
        for tensor in tensors:  # noqa: SIM110 (a loop: 0.6 µs against 1.1 with generators, for three tensors)
            if tensor.is_meta and tensor.numel():
                return True
        return False

    def _unknown_result(self, func: OpOverload, tensors: list[torch.Tensor]) -> bool:
        """Whether an op on these arguments has no value to compute (a meta argument is unknown) and no known
        elements to move (it combines elements, or none of its meta arguments is even partly known)."""
        if _moves_elements(func):
            metas = [tensor for tensor in tensors if is_meta(tensor)]
            return bool(metas) and not any(self._partly_known(tensor) for tensor in metas)
        return any(self.get(tensor) is None for tensor in tensors if is_meta(tensor))  # to the first unknown

    def _mark_written(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """The storages an op of unknown result wrote in place hold unknown values from now on."""
        for index, name in _writes(func):
            value = args[index] if index < len(args) else kwargs.get(name)
            for tensor in tensors_in(value):
                if is_meta(tensor):
                    self._unknown.add(_storage(tensor))

    def _follow_parts(
        self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], outputs: list[torch.Tensor]
    ) -> None:
        """Ops that only move elements (``cat``, views, casts) keep the values of the elements that are known: the
        validity channel that GLM-5-Next's indexer concatenates to its keys, and splits off again, stays known.
        Each element's value and whether it is known go through the op side by side."""
        if not _moves_elements(func):  # first: this runs for every op of unknown result
            return
        metas = [t for t in tensors_in((args, kwargs)) if is_meta(t)]
        if not any(self._partly_known(t) for t in metas):
            return
        parts = {id(t): self._part(t) for t in metas}

        def run(which: int) -> list[torch.Tensor]:  # the op on the values (0) or on the masks (1)
            def leaf(x: Any) -> Any:
                return parts[id(x)][which] if isinstance(x, torch.Tensor) and id(x) in parts else _off_meta(x)

            return tensors_in(func(*tree_map(leaf, args), **tree_map(leaf, kwargs)))

        try:
            with _disable_current_modes():
                values, masks = run(0), run(1)
        except Exception:
            return
        for meta, value, mask in zip(outputs, values, masks, strict=False):
            known = mask.bool()
            if meta.shape != value.shape or not known.any():
                continue
            if known.all():
                self.seed(meta, value)
            else:
                self._partial[meta] = (value, known)
                self._ids.add(id(meta))

    def _partly_known(self, tensor: torch.Tensor) -> bool:
        if not self._may_know(id(tensor)):  # most tensors: the answer from sets of ids
            return False
        if self.get(tensor) is not None:
            return True
        return id(tensor) in self._ids and tensor in self._partial and _storage(tensor) not in self._unknown

    def _part(self, tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A meta tensor as its values (zero where unknown) and the mask of the known ones, in the tensor's dtype
        (for ops whose tensors must share one)."""
        value = self.get(tensor)
        if value is not None:
            return value, torch.ones((), dtype=tensor.dtype).expand(tensor.shape)
        if self._partly_known(tensor):
            value, known = self._partial[tensor]
            return value, known.to(tensor.dtype)
        zeros = torch.zeros((), dtype=tensor.dtype).expand(tensor.shape)
        return zeros, zeros

    def _spread(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """The positions that ``topk``, ``argmax`` or ``max(dim)`` pick among values that depend on the weights (a
        mixture-of-experts router's choice of experts) are given values spread evenly: row r picks
        ``(r * k + j) % n`` for its j-th of k picks among n. The work of the experts then sums to what any
        choice gives when the experts are alike and no capacity limit drops tokens, and the code that
        looks at the choices (``nonzero``, per-expert loops) runs on meta."""
        packet = func.overloadpacket
        if packet not in SPREAD_PICKS or not args or not is_meta(args[0]):
            return
        if not any(argument.name == "dim" for argument in func._schema.arguments):  # max() of all the values
            return
        picks = out if packet is _ATEN.argmax else out[1] if isinstance(out, tuple | list) else None
        if not isinstance(picks, torch.Tensor) or not is_meta(picks) or picks.numel() > self.max_elements:
            return
        dim = args[SPREAD_PICKS[packet]] if len(args) > SPREAD_PICKS[packet] else kwargs.get("dim", -1)
        if dim is None or args[0].dim() == 0:
            return
        dim = dim % args[0].dim()
        choices = args[0].shape[dim]
        kept = picks.dim() == args[0].dim()  # topk, or keepdim=True: the picks keep the dimension
        k = picks.shape[dim] if kept else 1
        rows = picks.numel() // max(k, 1)
        value = (torch.arange(rows).unsqueeze(-1) * k + torch.arange(k)) % max(choices, 1)
        shape = [*(picks.shape[i] for i in range(picks.dim()) if not (kept and i == dim)), k]
        value = value.reshape(shape).movedim(-1, dim) if kept else value.reshape(picks.shape)
        self.seed(picks, value.to(picks.dtype).contiguous())
        self.spread_picks += 1

    def run(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """An op whose result depends on values (``item``, ``nonzero``, a copy to the CPU for ``tolist``):
        computed on the values, its tensors returned as meta tensors with those values (or as they are when
        the op leaves meta); NotImplemented if a value is unknown."""
        computed = self.compute(func, args, kwargs)
        if computed is NotImplemented:
            return self._shaped_by_known(func, args, kwargs)
        leaves_meta = "device" in kwargs and torch.device(kwargs["device"]).type != "meta"
        if leaves_meta or not isinstance(computed, torch.Tensor | tuple | list):
            return computed  # a Python number from item(), or a tensor copied off meta

        def to_meta(leaf: Any) -> Any:
            if not isinstance(leaf, torch.Tensor) or leaf.device.type != "cpu":
                return leaf
            meta = torch.empty_strided(leaf.shape, leaf.stride(), dtype=leaf.dtype, device="meta")
            self.seed(meta, leaf)
            return meta

        return tree_map(to_meta, computed)

    def on_meta(self, tree: Any, tensors: list[torch.Tensor] | None = None) -> Any:
        """Tensors the model made on the CPU (no device given) that meet meta activations, moved to meta with their
        values: on a CPU run both are on the CPU. One-element tensors stay: PyTorch mixes those with any device.
        ``tensors``: the tree's tensors, when the caller has them already."""
        if not _mixes_devices(tensors_in(tree) if tensors is None else tensors):
            return tree

        def to_meta(leaf: Any) -> Any:
            if not isinstance(leaf, torch.Tensor) or is_meta(leaf) or leaf.dim() == 0:
                return leaf
            meta = torch.empty_strided(leaf.shape, leaf.stride(), dtype=leaf.dtype, device="meta")
            self.seed(meta, leaf)
            return meta

        with _disable_current_modes():
            return tree_map(to_meta, tree)

    def _shaped_by_known(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """An op whose output shape depends only on values that are known (``hidden[mask]`` with the mask made
        from the token ids): meta tensors of that shape, without values; NotImplemented otherwise.

        Out of place, the op runs on the CPU with each unknown tensor standing in as zeros of its shape (that
        take no memory); in place, its first argument keeps its shape."""
        shaped_by = SHAPED_BY.get(func.overloadpacket)
        if shaped_by is None or len(args) <= shaped_by:
            return NotImplemented
        if any(self.get(t) is None for t in tensors_in(args[shaped_by])):
            return NotImplemented
        if updates_self(func):
            return args[0]

        def stand_in(leaf: Any) -> Any:
            return self._part(leaf)[0] if is_meta(leaf) else leaf

        try:
            with _disable_current_modes():
                out = func(*tree_map(stand_in, args), **tree_map(stand_in, kwargs))
        except Exception:
            return NotImplemented
        return tree_map(lambda t: torch.empty_like(t, device="meta") if isinstance(t, torch.Tensor) else t, out)


# Ops that pick positions among values (the argument position of their ``dim``; see MetaValues._spread).
SPREAD_PICKS: dict[Any, int] = {torch.ops.aten.topk: 2, torch.ops.aten.argmax: 1, torch.ops.aten.max: 1}

# Ops whose output shape depends on the values of one argument only (its position): a boolean mask, the
# repeats; the other tensors may be unknown.
_ATEN = torch.ops.aten
SHAPED_BY: dict[Any, int] = {
    _ATEN.index: 1,
    _ATEN.index_put: 1,
    _ATEN.index_put_: 1,
    _ATEN._index_put_impl_: 1,
    _ATEN.masked_select: 1,
    _ATEN.masked_scatter: 1,
    _ATEN.masked_scatter_: 1,
    _ATEN.repeat_interleave: 1,
}


# Ops that move elements without combining them: a known element stays known (see MetaValues._follow_parts).
MOVES_ELEMENTS = {
    getattr(_ATEN, name)
    for name in (
        "cat", "slice", "select", "split", "split_with_sizes", "unbind", "narrow", "view", "_unsafe_view",
        "reshape", "expand", "permute", "transpose", "t", "squeeze", "unsqueeze", "clone", "alias", "_to_copy",
    )
}  # fmt: skip


def _no_elements(tensor: torch.Tensor) -> torch.Tensor | None:
    """The value of a tensor with no elements (batch norm's reserve, an empty slice), which nothing can make
    unknown; None for any other tensor."""
    if tensor.numel() or tensor.layout != torch.strided or tensor.is_quantized:
        return None
    return torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype)


def _map_leaves(fn: Callable[[Any], Any], tree: Any) -> Any:
    """``tree_map``, with an op's usual arguments (tuples, lists and dicts of tensors and numbers) walked
    directly: pytree's generic walk costs more than the ops whose values are computed."""
    kind = type(tree)
    if kind is tuple or kind is list:
        return kind(_map_leaves(fn, leaf) for leaf in tree)
    if kind is dict:
        return {key: _map_leaves(fn, leaf) for key, leaf in tree.items()}
    if kind in NO_TENSORS or isinstance(tree, torch.Tensor):
        return fn(tree)
    return tree_map(fn, tree)


def _off_meta(leaf: Any) -> Any:
    """A ``device="meta"`` argument as the CPU, where the values are computed."""
    return _CPU if isinstance(leaf, torch.device) and leaf.type == "meta" else leaf


def _mixes_devices(tensors: list[torch.Tensor]) -> bool:
    """Meta tensors and tensors with data of more than one dimension among the arguments."""
    return any(is_meta(t) for t in tensors) and any(not is_meta(t) and t.dim() > 0 for t in tensors)


def _storage(tensor: torch.Tensor) -> StorageWeakRef:
    return StorageWeakRef(tensor.untyped_storage())  # type: ignore[no-untyped-call]


@functools.cache
def _moves_elements(func: OpOverload) -> bool:
    return func.overloadpacket in MOVES_ELEMENTS


@functools.cache
def writes_or_picks(func: OpOverload) -> bool:
    """Whether an op writes an argument in place or picks positions (``_mark_written`` and ``_spread`` have work)."""
    return bool(_writes(func)) or func.overloadpacket in SPREAD_PICKS


@functools.cache
def _writes(func: OpOverload) -> tuple[tuple[int, str], ...]:
    """The positions and names of the arguments an op writes in place (``out=`` included)."""
    return tuple(
        (index, argument.name)
        for index, argument in enumerate(func._schema.arguments)
        if argument.alias_info is not None and argument.alias_info.is_write
    )


# The values of small tensors made while models are built on meta (their buffers: positions, rotary
# frequencies, merge sizes), kept for as long as those tensors live; every store falls back to it.
BUILT = MetaValues(BUILD_MAX_ELEMENTS)


def __getattr__(name: str) -> Any:
    """The code that runs on meta with these values moved to ``torchcost.emulate.on_meta``; its names answer here
    with a DeprecationWarning, for one release."""
    if name not in ("MetaFunctions", "FollowValues", "values_while_building"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from torchcost.emulate import on_meta  # imported on use: it imports this module

    return renamed(__name__, {name: getattr(on_meta, name)})(name)
