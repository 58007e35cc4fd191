"""Meta copies of a model kept for its next profile (a sweep, a comparison, a grid of batch sizes).

A copy on ``meta`` is a function of what ``copy.deepcopy`` reads of the model: each module's class and fields, the
containers the fields hold, and the shape, strides, dtype, device and ``requires_grad`` of each parameter and
buffer (meta keeps no values). A ``Snapshot``, taken while copying, keeps all of that: the live field tables and
containers, and the objects each held (the empty ones only have to stay empty), compared by identity in C. One of
the model and one of the copy (with its tensors' attributes): a copy is lent again only while the model is as it
was when it was copied, and while the copy is as it was made (a forward that caches a value on a module or a weight,
or adds a module, gets a fresh copy next time). A model that holds a value whose changes a snapshot cannot see (an
object of another class, a function with a closure, a tensor that is not a parameter or buffer, a tensor subclass,
a module copied by pickle's protocol) is copied every time, as are copies for a backward. A snapshot holds what it
saw: a layer replaced since stays in memory until the model's next profile, or until the model goes.
"""

from __future__ import annotations

import enum
import functools
import itertools
import operator
import types
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

_CONTAINERS = {dict, OrderedDict, list, set}  # mutable: a snapshot keeps a shallow copy of each
_VALUES = {type(None), bool, int, float, complex, str, bytes}
# deepcopy hands these on as they are, and nobody changes them in place
_SHARED = (type, types.FunctionType, types.BuiltinFunctionType, torch.dtype, torch.device, torch.layout,
           torch.memory_format, enum.Enum)  # fmt: skip
_TENSORS = (torch.Tensor, nn.Parameter)  # exactly these classes: a subclass may keep state a snapshot cannot see

TensorFacts = tuple[torch.Size, tuple[int, ...], torch.dtype, torch.device, bool]


def _facts(tensors: Iterable[torch.Tensor]) -> list[TensorFacts]:
    return [(t.shape, t.stride(), t.dtype, t.device, t.requires_grad) for t in tensors]


class Snapshot:
    """What a deep copy reads of a module tree (or what it made), kept to tell whether it changed since: the same
    objects in every table and container (identity, not ``==``: ``1`` and ``1.0`` are told apart), the same
    tables on the same modules of the same classes, and tensors of the same shapes, strides, dtypes, devices."""

    def __init__(
        self, modules: list[nn.Module], tensors: list[torch.Tensor], parts: list[Any], empty: list[Any]
    ) -> None:
        # the root is not kept (a model's snapshot must not keep the model alive); the tables of children, among
        # the parts, hold each module below it already
        self.below = modules[1:]
        self.classes = [type(m) for m in modules]
        self.tables = [m.__dict__ for m in modules]
        self.tensors = tensors
        self.facts = _facts(tensors)
        self.empty = empty  # the containers that were empty (most: hook tables), live
        self.maps = [part for part in parts if isinstance(part, dict)]  # live, and what they held
        self.keys = list(itertools.chain.from_iterable(self.maps))
        self.text_keys = all(type(key) is str for key in self.keys)  # as in every module's table: equal is as good
        self.values = list(itertools.chain.from_iterable(map(dict.values, self.maps)))
        self.lists = [part for part in parts if type(part) is list]
        self.lengths = list(map(len, self.lists))
        self.items = list(itertools.chain.from_iterable(self.lists))
        self.sets = [part for part in parts if type(part) is set]
        self.set_items = [part.copy() for part in self.sets]

    def unchanged(self, modules: list[nn.Module], tensors: list[torch.Tensor]) -> bool:
        """Whether ``modules`` and ``tensors`` (the tree walked now) are the tree as it was. Each test runs in C."""
        return (
            same_objects(tensors, self.tensors)
            and same_objects(list(map(_TABLE, modules)), self.tables)
            and list(map(type, modules)) == self.classes
            and not any(self.empty)
            and sum(map(len, self.maps)) == len(self.keys)
            and self._same_keys()
            and all(map(operator.is_, itertools.chain.from_iterable(map(dict.values, self.maps)), self.values))
            and list(map(len, self.lists)) == self.lengths
            and all(map(operator.is_, itertools.chain.from_iterable(self.lists), self.items))
            and self.sets == self.set_items
            and _facts(tensors) == self.facts
        )

    def _same_keys(self) -> bool:
        """The maps hold the same keys, in order: equal strings (compared in C, identity first), else the same
        objects (``1`` and ``1.0`` are equal keys that a loop over them tells apart)."""
        keys = itertools.chain.from_iterable(self.maps)
        return list(keys) == self.keys if self.text_keys else all(map(operator.is_, keys, self.keys))


_TABLE = operator.attrgetter("__dict__")


def same_objects(objects: list[Any], before: list[Any]) -> bool:
    """The same objects, in order (identity, compared in C)."""
    return len(objects) == len(before) and all(map(operator.is_, objects, before))


class CopyWatch:
    """What a copy (``prepare.copy_to``) reads of a module tree and what it makes, for a snapshot of each: the field
    tables and containers it reads and, in the same order, the new ones it makes (the empty ones apart); the values
    it deep-copies (walked later, as they may hold anything); whether every module was copied that way (not by
    pickle's protocol)."""

    def __init__(self) -> None:
        self.read: list[Any] = []
        self.made: list[Any] = []
        self.empty: list[Any] = []
        self.made_empty: list[Any] = []
        self.deep: list[tuple[Any, Any]] = []  # (value read, its deep copy)
        self.whole = True
        self.copies: dict[int, Any] = {}  # id of what was read -> its copy

    def copied(self, read: Any, made: Any, deep: bool = False) -> None:
        """A table or container ``read`` was copied as ``made``: by ``copy.deepcopy`` when ``deep``."""
        if deep:
            self.deep.append((read, made))
        elif read:
            self.read.append(read)
            self.made.append(made)
        else:
            self.empty.append(read)
            self.made_empty.append(made)

    def snapshots(self, modules: list[nn.Module], tensors: list[torch.Tensor]) -> tuple[Snapshot, Snapshot] | None:
        """Snapshots of the tree copied (``modules``, each once, the root first; ``tensors``, its parameters and
        buffers) and of the copy, or None when a change to one of their values could go unseen."""
        if not self.whole or any(type(t) not in _TENSORS or t.layout != torch.strided for t in tensors):
            return None
        copied_modules = [self.copies[id(m)] for m in modules]
        copied_tensors = [self.copies[id(t)] for t in tensors]
        # the roots are not among the known: a value that holds a model's root would keep the model alive
        read = _parts([value for value, _ in self.deep], {id(x) for x in (*modules[1:], *tensors)})
        made = _parts([value for _, value in self.deep], {id(x) for x in (*copied_modules[1:], *copied_tensors)})
        if read is None or made is None:
            return None
        attributes = [t.__dict__ for t in copied_tensors]  # what a forward may cache on a weight
        return (
            Snapshot(modules, tensors, self.read + read, self.empty),
            Snapshot(copied_modules, copied_tensors, self.made + made + attributes, self.made_empty),
        )


def _parts(values: list[Any], known: set[int]) -> list[Any] | None:
    """Every container in ``values``, or None when a value is one whose changes the containers would not show. They
    show changes to plain values, ``_SHARED`` objects, the tree's own modules and tensors (``known``), and
    containers and partials of those. A loop over a stack, the usual items settled where they are met."""
    parts: list[Any] = []
    seen: set[int] = set()  # containers met already (a table that holds itself)
    pending: list[Any] = list(values)
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind in _CONTAINERS:
            if id(value) in seen:
                continue
            seen.add(id(value))
            parts.append(value)
            if kind is dict or kind is OrderedDict:
                if not all(type(key) in _VALUES for key in value):
                    return None
                value = value.values()
        elif kind is tuple or kind is torch.Size:
            pass
        elif kind is functools.partial:
            pending.append(value.__dict__)
            value = (value.func, value.args, value.keywords)
        elif kind is types.FunctionType and value.__closure__:  # its cells may hold anything, the model too
            return None
        elif id(value) in known or isinstance(value, _SHARED):
            continue
        else:
            return None
        for item in value:
            kind = type(item)
            if kind in _VALUES or id(item) in known:
                continue
            if kind in _CONTAINERS and not item and id(item) not in seen:
                seen.add(id(item))
                parts.append(item)
            else:
                pending.append(item)
    return parts


class _Lent:
    """A model's meta copy, with what it was made from and what it was made as."""

    def __init__(self, key: Any, copy: nn.Module, source: Snapshot, made: Snapshot, modules: list[nn.Module]) -> None:
        self.key = key
        self.copy = copy
        self.source = source
        self.made = made
        self.modules = modules  # the copy's
        self.flags = [module.training for module in self.modules]  # a run sets its own
        self.derived: dict[str, Any] = {}  # what callers found of the copy as made (see MetaCopies.derived)
        self.running = False  # lent and not returned yet


class MetaCopies:
    """The meta copies of the last ``MAX_MODELS`` models profiled forward-only more than once, each kept while neither
    the model nor the copy changes (held weakly: a model's copy goes when the model does). A model's first profile
    keeps nothing. Snapshots of a model and its copy, taken while copying, add about half a copy (densenet121: 2.6 ms
    to a 5.0 ms copy) to its second profile; checking both costs about a quarter of a copy (1.7 ms against 6.4 ms,
    measured together), and the model's tree is not walked."""

    MAX_MODELS = 4

    def __init__(self) -> None:
        self._lent: weakref.WeakKeyDictionary[nn.Module, _Lent] = weakref.WeakKeyDictionary()
        self._profiled: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def copy(
        self,
        model: nn.Module,
        modules: list[nn.Module],
        tensors: list[torch.Tensor],
        key: Any,
        make: Callable[[CopyWatch | None], nn.Module],
    ) -> nn.Module:
        """The meta copy of ``model`` (its tree now: ``modules``, ``tensors``) made with settings ``key``: the one
        made before if nothing changed since, else a new one from ``make`` (told what to watch, or None)."""
        lent = self._lent.get(model)
        if lent is not None and lent.running:  # a profile in another thread runs it: a copy of one's own
            return make(None)
        kept = self.lend(model, key)
        if kept is not None:
            return kept
        self._lent.pop(model, None)
        if model not in self._profiled:  # most models are profiled once: watched from their second profile on
            self._profiled.add(model)
            return make(None)
        watch = CopyWatch()
        copy = make(watch)
        snapshots = watch.snapshots(modules, tensors)
        if snapshots is not None:
            while len(self._lent) >= self.MAX_MODELS:
                del self._lent[next(iter(self._lent))]
            self._lent[model] = lent = _Lent(key, copy, *snapshots, [watch.copies[id(m)] for m in modules])
            lent.running = True
        return copy

    def lend(self, model: nn.Module, key: Any) -> nn.Module | None:
        """The copy of ``model`` made before with settings ``key``, if neither changed since and no run holds it;
        None otherwise. Found without walking the model's tree: a snapshot holds every module below the root, and
        every parameter and buffer, and while it is unchanged, the walk would find those."""
        lent = self._lent.get(model)
        if lent is None or lent.running or lent.key != key:
            return None
        if not lent.source.unchanged([model, *lent.source.below], lent.source.tensors):
            return None
        lent.running = True
        return lent.copy

    def derived(self, model: nn.Module, copy: nn.Module) -> dict[str, Any] | None:
        """When ``copy`` is ``model``'s lent copy: a table for what a caller finds of it as it was made, kept while
        the copy is (None otherwise). A caller hands the copy back first (``returned``), and keeps a finding only
        if the copy was kept."""
        lent = self._lent.get(model)
        return lent.derived if lent is not None and lent.copy is copy else None

    def returned(self, model: nn.Module, copy: nn.Module) -> bool:
        """After a run on ``copy``: it is kept for ``model``'s next profile only if the run left it as it was made
        (its training flags, which each run sets, put back). Whether it was kept."""
        lent = self._lent.get(model)
        if lent is None or lent.copy is not copy:
            return False
        lent.running = False
        for module, flag in zip(lent.modules, lent.flags, strict=True):
            module.__dict__["training"] = flag  # the copy's own field, as nn.Module.__setattr__ would set it
        if not lent.made.unchanged(lent.modules, lent.made.tensors):
            del self._lent[model]
            return False
        return True

    def clear(self) -> None:
        self._lent.clear()
        self._profiled.clear()


META_COPIES = MetaCopies()
