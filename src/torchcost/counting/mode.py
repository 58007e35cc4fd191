"""Counting at the ATen dispatch level: each op run as usual, its cost recorded with the module paths that the
module stack (``module_stack.py``) says enclose it."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch._decomp import decomposition_table
from torch._ops import OpOverload
from torch.utils._python_dispatch import TorchDispatchMode

from torchcost.counting import formulas
from torchcost.counting.module_stack import ModuleStack as ModuleStack  # re-exported: it was defined here
from torchcost.counting.registry import OpCall, family_of, find_formula, formula_changes
from torchcost.emulate.autocast import CPU_STAND_INS
from torchcost.emulate.meta_kernels import META_SHORTCUTS
from torchcost.emulate.meta_values import MetaValues, writes_or_picks
from torchcost.emulate.schema import returns_new_tensors, updates_self
from torchcost.records import OpCost, OpRecord, Shape
from torchcost.tensors import NO_TENSORS, dtype_names, shapes, tensor_bytes, tensors_in

Rule = Callable[[OpCall], OpCost]
# what a record says of an op call's tensors and cost: op, cost, input and output shapes, counted, input and
# output dtypes, family
Fixed = tuple[str, OpCost, tuple[Shape, ...], tuple[Shape, ...], bool, tuple[str, ...], tuple[str, ...], str]


TensorMeta = tuple[tuple[int, ...], tuple[int, ...], torch.dtype]
# what counting learns of an op's signature on meta: its outputs' specs ("self": its first argument), its cost, and,
# once it is recorded, what its record says of its tensors and cost
Learnt = list[Any]


def tensor_meta(out: Any) -> TensorMeta | tuple[TensorMeta, ...] | None:
    if isinstance(out, torch.Tensor):
        return (tuple(out.shape), out.stride(), out.dtype) if out.layout == torch.strided else None
    if isinstance(out, tuple) and all(isinstance(t, torch.Tensor) and t.layout == torch.strided for t in out):
        return tuple((tuple(t.shape), t.stride(), t.dtype) for t in out)
    return None


def pointwise_on_meta_key(op: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    """For a pointwise op whose tensor inputs all have one shape and are contiguous, what its output dtype
    can depend on (the op, the inputs' dtypes, the other arguments); None otherwise. Such an op's output
    has the inputs' shape and is contiguous, whatever the shape (TensorIterator's rule)."""
    if torch.Tag.pointwise not in op.tags:
        return None
    tensors = tensors_in((args, kwargs))
    if not tensors or any(t.shape != tensors[0].shape or not t.is_contiguous() for t in tensors):
        return None
    loose = [(t.dtype, t.dim() == 0) if isinstance(t, torch.Tensor) else t for t in args]  # 0-dim: promotion differs
    return _signature_key(op, loose, kwargs)


_META = torch.device("meta")  # made once: a device named by a string is parsed on every call


def empty_meta(spec: TensorMeta | tuple[TensorMeta, ...]) -> Any:
    if not isinstance(spec[-1], torch.dtype):  # several outputs (a 0-dim output's shape is the empty tuple)
        return tuple(empty_meta(part) for part in spec)
    shape, stride, dtype = spec
    return torch.empty_strided(shape, stride, dtype=dtype, device=_META)


def _crosses_meta(func: OpOverload, args: tuple[Any, ...], out: Any) -> bool:
    """A copy between meta and a device with data."""
    if func.overloadpacket not in _COPIES or not isinstance(out, torch.Tensor) or not args:
        return False
    source = args[1] if func.overloadpacket is torch.ops.aten.copy_ and len(args) > 1 else args[0]  # copy_(dst, src)
    if not isinstance(source, torch.Tensor) or source.dtype != out.dtype:  # a cast is work a CPU does too
        return False
    return (out.device.type == "meta") != (source.device.type == "meta")


_COPIES = (torch.ops.aten._to_copy, torch.ops.aten.copy_)


def _scalars_on_meta(tree: Any) -> Any:
    """CPU 0-dim tensors among meta tensors moved to meta (a value that a CUDA kernel takes from the host:
    ``masked_fill(x, mask, torch.tensor(v))``); the tree as it is when it has none."""

    def cpu_scalar(leaf: Any) -> bool:
        return isinstance(leaf, torch.Tensor) and leaf.device.type == "cpu" and not leaf.dim()

    found = tensors_in(tree)
    if not any(t.device.type == "meta" for t in found) or not any(map(cpu_scalar, found)):
        return tree
    return torch.utils._pytree.tree_map(lambda leaf: leaf.to("meta") if cpu_scalar(leaf) else leaf, tree)


def _free(call: OpCall) -> OpCost:
    return OpCost()


def _returns_tensors(op: OpOverload) -> bool:
    return any("Tensor" in str(ret.type) for ret in op._schema.returns)


def rule_for(op: OpOverload) -> Rule | None:
    """How an op is counted: its formula, a generic rule from its schema or tags, or None (decompose)."""
    formula = find_formula(op)
    if formula is not None:
        return formula
    if op.is_view or torch.Tag.inplace_view in op.tags or not _returns_tensors(op):
        # aliases (views, in-place restrides) and metadata queries move no data
        return _free
    if torch.Tag.pointwise in op.tags:
        return formulas.pointwise
    if torch.Tag.reduction in op.tags:
        return formulas.reduction
    return None


_INTS = {int}


def _walk(tree: Any, found: list[torch.Tensor], key: list[Any] | None) -> bool:
    """Append the tensors of an op's arguments to ``found`` and, unless ``key`` is None, what its outputs and cost
    can depend on (each tensor's shape, dtype and strides; each other argument's type and value; each container's
    type and length) to ``key``; whether every tensor is on meta. One flat list, not a tuple per container: this
    runs for every op."""
    on_meta = True
    for leaf in tree.values() if type(tree) is dict else tree:
        kind = type(leaf)
        if kind in NO_TENSORS:
            if key is not None:
                key.append((kind, leaf))
        elif isinstance(leaf, torch.Tensor):
            found.append(leaf)
            on_meta = on_meta and leaf.is_meta
            if key is not None:
                key.append((leaf.shape, leaf.dtype, leaf.stride() if leaf.layout == torch.strided else None))
        elif isinstance(leaf, list | tuple | dict):  # also named tuples, torch.Size, keyword dicts
            if key is not None:
                if (kind is list or kind is tuple) and {*map(type, leaf)} == _INTS:  # a size, a stride, padding
                    key.append((kind, tuple(leaf)))
                    continue
                key.append((kind, len(leaf), "items"))
            on_meta = _walk(leaf, found, key) and on_meta
        else:
            inside = tensors_in(leaf)  # another pytree node, or a value (a generator, a complex number)
            found += inside
            on_meta = on_meta and all(t.is_meta for t in inside)
            if key is not None:
                key.append((kind, leaf) if not inside else [kind])  # a list: no key (unhashable), no replay
    if key is not None and type(tree) is dict:
        key.append(("keywords", *tree))
    return on_meta


def _meta_device(device: Any) -> bool:
    return isinstance(device, torch.device) and device.type == "meta"


def _signature_key(func: OpOverload, args: Any, kwargs: Any) -> Hashable:
    """What an op's outputs and cost can depend on: the op, its arguments as ``_walk`` keys them, and the devices
    of their tensors; None when an argument cannot be a dictionary key."""
    found: list[torch.Tensor] = []
    parts: list[Any] = []
    _walk(args, found, parts)
    _walk(kwargs, found, parts)
    parts.append(tuple(t.device.type for t in found))
    key = (func, *parts)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _aliases(op: OpOverload) -> bool:
    """A view (``view``, ``t``, ``permute``, ``split``): outputs that alias an argument, which stays as it was."""
    return op.is_view and torch.Tag.inplace_view not in op.tags


def _replay_spec(replayable: str | None, args: tuple[Any, ...], out: Any) -> Any:
    """What a replay of an op's call makes (see ``_OpFacts.replayable``): "self", "view", its outputs' shapes,
    strides and dtypes, or None (no replay)."""
    if replayable == "self":
        return "self" if out is args[0] else None
    return "view" if replayable == "view" else tensor_meta(out)


class _OpFacts:
    """What the dispatch reads of an op on every call, from its schema and tags (once per op)."""

    __slots__ = ("copies", "family", "name", "plain", "recorded", "replayable", "rule")

    def __init__(self, func: OpOverload) -> None:
        self.rule = rule_for(func)
        self.family = family_of(func)  # the family its formula was registered with, or ""
        self.name = str(func.overloadpacket)  # its records' name ("aten.mm")
        # on meta, its outputs are a function of its signature: "new" tensors, or "self" (its first argument, in
        # place); or its cost and record are, and its outputs are views that it makes again each time ("view")
        self.replayable = (
            "new" if returns_new_tensors(func) else "self" if updates_self(func) else "view" if _aliases(func) else None
        )
        self.copies = func.overloadpacket in _COPIES  # may copy between meta and a device with data
        self.recorded = func.namespace != "profiler"  # the profiler's markers are not ops
        self.plain = not writes_or_picks(func)  # meta values: nothing to follow unless an argument is known


class Replays:
    """What counting learns of ops by their signatures, kept for the next profile in this process (a sweep, a
    comparison, a grid of batch sizes, a model whose blocks repeat): on meta, an op's outputs and cost, and what
    its record says of them; a decomposition's FLOPs and MACs; a pointwise op's output dtype; each op's formula and
    schema facts. All of it is a function of the op, its argument signature and the formulas, so it is forgotten
    when a formula is registered or removed, and when it holds more than ``MAX_SIGNATURES``."""

    MAX_SIGNATURES = 200_000

    def __init__(self) -> None:
        self._changes = -1
        self.clear()

    def clear(self) -> None:
        # (op, signature) -> (FLOPs, MACs) of a decomposition, or None when it had uncounted parts
        self.decomposed: dict[Hashable, tuple[int, int] | None] = {}
        # on meta, (op, signature with strides) -> the outputs' shapes, strides and dtypes, the op's cost, and what
        # its record says of its tensors and cost (found at its first record)
        self.on_meta: dict[Hashable, Learnt] = {}
        self.pointwise_dtype: dict[Hashable, torch.dtype] = {}  # pointwise_on_meta_key -> output dtype
        self.facts: dict[OpOverload, _OpFacts] = {}  # what the dispatch reads of each op on every call

    def current(self) -> Replays:
        """Itself, emptied first if the formulas changed since it learnt or it grew too large."""
        size = len(self.on_meta) + len(self.decomposed) + len(self.pointwise_dtype)
        if self._changes != formula_changes() or size > self.MAX_SIGNATURES:
            self.clear()
            self._changes = formula_changes()
        return self


REPLAYS = Replays()


class CountingMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Runs every ATen op as usual and records its cost and the enclosing module paths."""

    def __init__(self, modules: ModuleStack, values: MetaValues | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.modules = modules
        modules.emit = self._emit
        self.values = values  # on meta: the values of tensors that derive from real inputs alone
        self._value_runs = 0  # ops run on those values because their result depends on them
        self.records: list[OpRecord] = []
        self.recording = True
        self.phase: str | None = None  # a phase the caller names ("optimizer"); else forward or backward
        self._decomposing: list[list[OpCost | None]] = []
        learnt = REPLAYS.current()
        self._decomposed, self._on_meta = learnt.decomposed, learnt.on_meta
        self._pointwise_dtype, self._facts = learnt.pointwise_dtype, learnt.facts
        self.fused = ""  # the fused call the ops run now belong to (see counting/fused.py)
        # ops that did more than replay what was learnt of their signature and be recorded (meta values followed,
        # a value run, a kernel run unlearnt, a record not made), and while a list is given, the calls among them
        # that meta values followed: a leaf module's call is kept only if those are all it has (leaf_replay.py)
        self.unsettled = 0
        self.followed: list[tuple[OpOverload, tuple[Any, ...], dict[str, Any], Any]] | None = None  # when asked for

    def __torch_dispatch__(
        self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        facts = self._facts.get(func)
        if facts is None:
            facts = self._facts[func] = _OpFacts(func)
        # one walk of the arguments, shared by every stage below: their tensors and, on meta, the op's replay key
        inputs: list[torch.Tensor] = []
        parts: list[Any] | None = [] if facts.replayable else None
        on_meta = _walk(args, inputs, parts) & (not kwargs or _walk(kwargs, inputs, parts))
        if self.values is not None and not on_meta:
            moved = self.values.on_meta((args, kwargs), inputs)
            if moved[0] is not args or moved[1] is not kwargs:
                args, kwargs = moved
                inputs, parts = [], [] if facts.replayable else None
                on_meta = _walk(args, inputs, parts) & (not kwargs or _walk(kwargs, inputs, parts))
        # on meta, an op that makes new tensors is a function of its signature: its outputs (shapes, strides, dtypes,
        # no data) and its cost are computed once per signature and then replayed, which skips PyTorch's Python meta
        # kernels on every repeated layer; an in-place op returns its first argument, unchanged on meta; a view is
        # made again (it must alias its argument), its cost and record replayed
        made_on_meta = bool(inputs) or _meta_device(kwargs.get("device"))  # empty(..., device="meta") has no inputs
        meta_key = (func, *parts) if on_meta and made_on_meta and parts is not None else None
        try:
            learnt = self._on_meta.get(meta_key) if meta_key is not None else None
        except TypeError:  # an argument that cannot be a dictionary key (a symbolic size): no replay
            meta_key = learnt = None
        value_runs = self._value_runs
        if learnt is not None:
            spec, cost, _ = learnt
            out = (
                args[0] if spec == "self" else self._kernel(func, args, kwargs) if spec == "view" else empty_meta(spec)
            )
        else:
            out, cost = self._run(func, args, kwargs, inputs)
            spec = _replay_spec(facts.replayable, args, out)
            if meta_key is not None and spec is not None and self._value_runs == value_runs:
                self._on_meta[meta_key] = learnt = [spec, cost, None]
        if learnt is None:
            self.unsettled += 1
        values = self.values
        if (
            values is not None
            and self._value_runs == value_runs
            and not (facts.plain and values.none_known(inputs))
            and values.follow(func, args, kwargs, out, inputs, asked=facts.plain)
        ):
            self.unsettled += 1
            if self.followed is not None:
                self.followed.append((func, args, kwargs, out))
        if facts.copies and _crosses_meta(func, args, out):  # tolist(), or x[[0, 2]]'s index, on meta
            self.unsettled += 1
            return out  # a copy a CPU never makes
        if self._decomposing:
            self._decomposing[-1].append(cost)
        elif self.recording and not self.modules.opaque and facts.recorded:
            self._record(func, inputs, out, cost, learnt)
        else:
            self.unsettled += 1
        return out

    def _emit(self, record: OpRecord) -> None:
        if self.recording:
            self.records.append(record)

    def _run(
        self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], inputs: list[torch.Tensor]
    ) -> tuple[Any, OpCost | None]:
        facts = self._facts[func]
        rule = facts.rule
        if rule is None:
            return self._decompose(func, args, kwargs)
        out: Any = NotImplemented
        learn: Hashable = None
        positional = tensors_in(args) if kwargs and inputs else inputs  # without keywords, the inputs are these
        if positional and all(t.device.type == "meta" for t in positional):
            shortcut = META_SHORTCUTS.get(func)
            if shortcut is not None:
                out = shortcut(args, kwargs)
            if out is NotImplemented and facts.replayable == "new":
                learn = pointwise_on_meta_key(func, args, kwargs)
                if learn in self._pointwise_dtype:
                    shape = positional[0].shape
                    out, learn = torch.empty(shape, dtype=self._pointwise_dtype[learn], device="meta"), None
        if out is NotImplemented:
            out = self._kernel(func, args, kwargs)
        if learn is not None and isinstance(out, torch.Tensor) and out.is_contiguous():
            self._pointwise_dtype.update({learn: out.dtype} if out.shape == positional[0].shape else {})
        call = OpCall(func, args, kwargs, out)
        call.__dict__["inputs"] = inputs  # OpCall.inputs, cached: the tensors walked already
        return out, self._apply(rule, call)

    def _kernel(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the op; on meta, an op whose result depends on values (``item``, ``nonzero``) runs on the
        known values of its inputs; on the CPU, a CUDA kernel the CPU lacks runs as its stand-in."""
        try:
            return func(*args, **kwargs)
        except (RuntimeError, NotImplementedError):
            stand_in = CPU_STAND_INS.get(func)
            out = NotImplemented if stand_in is None else stand_in(args, kwargs)
            if out is not NotImplemented:
                return out
            out = NotImplemented if self.values is None else self.values.run(func, args, kwargs)
            if out is NotImplemented:
                raise
            self._value_runs += 1
            return out

    def _apply(self, rule: Rule, call: OpCall) -> OpCost | None:
        try:
            return rule(call)
        except Exception as exc:  # a broken formula must not break profiling: the op is listed as uncounted
            warnings.warn(f"torchcost: formula for {call.op} failed ({exc}); listed as uncounted", stacklevel=2)
            return None

    def _decompose(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, OpCost | None]:
        """Count an op with no formula by its decomposition: FLOPs and MACs of the parts, the memory access
        of the op itself (eager PyTorch runs it as one kernel). None when it cannot be decomposed.

        Counts depend only on the signature, so the decomposition runs once per signature; later calls run
        the op itself and reuse its counts."""
        args, kwargs = _scalars_on_meta((args, kwargs))
        key = _signature_key(func, args, kwargs)
        if key is not None and key in self._decomposed:
            try:
                out = self._kernel(func, args, kwargs)
            except NotImplementedError:  # no kernel for this device: run the decomposition again
                pass
            else:
                known = self._decomposed[key]
                call = OpCall(func, args, kwargs, out)
                return out, None if known is None else OpCost(*known, call.bytes_read(), call.bytes_written())
        out, cost = self._run_decomposition(func, args, kwargs)
        if key is not None:
            self._decomposed[key] = None if cost is None else (cost.flops, cost.macs)
        return self._kernel(func, args, kwargs) if out is NotImplemented else out, cost

    def _run_decomposition(
        self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, OpCost | None]:
        """The decomposition's output (NotImplemented when there is none) and the cost of its parts."""
        self._decomposing.append([])
        try:
            with self:
                out = func.decompose(*args, **kwargs)
                if out is NotImplemented and func in decomposition_table:
                    out = decomposition_table[func](*args, **kwargs)
        except Exception:
            out = NotImplemented
        parts = self._decomposing.pop()
        if out is NotImplemented or any(part is None for part in parts):
            return out, None
        call = OpCall(func, args, kwargs, out)
        flops = sum(part.flops for part in parts if part is not None)
        macs = sum(part.macs for part in parts if part is not None)
        return out, OpCost(flops, macs, call.bytes_read(), call.bytes_written())

    def _record(
        self, func: OpOverload, inputs: list[torch.Tensor], out: Any, cost: OpCost | None, learnt: Learnt | None
    ) -> None:
        """Record one op call. ``learnt``: what is known of the op's signature on meta, when its outputs are a
        function of it; what the record says of the op's tensors and cost is then made once per signature."""
        fixed = learnt[2] if learnt is not None else None
        if fixed is None:
            fixed = self._fixed_parts(func, inputs, out, cost)
            if learnt is not None:
                learnt[2] = fixed
        op, cost, input_shapes, output_shapes, counted, input_dtypes, output_dtypes, family = fixed
        backward = torch._C._current_graph_task_id() != -1
        phase = self.phase or ("backward" if backward else "forward")
        record = OpRecord.of(op, phase, self.modules.paths(backward), cost, input_shapes, output_shapes, counted, None,
                             input_dtypes, output_dtypes, self.fused, family)  # fmt: skip
        self.records.append(record)

    def _fixed_parts(self, func: OpOverload, inputs: list[torch.Tensor], out: Any, cost: OpCost | None) -> Fixed:
        counted = cost is not None
        outputs = tensors_in(out)
        if cost is None:  # FLOPs unknown; the bytes it moved are still known
            cost = OpCost(
                bytes_read=sum(tensor_bytes(t) for t in inputs), bytes_written=sum(tensor_bytes(t) for t in outputs)
            )
        facts = self._facts[func]
        shapes_in, shapes_out = shapes(inputs), shapes(outputs)
        dtypes_in, dtypes_out = dtype_names(inputs), dtype_names(outputs)
        return facts.name, cost, shapes_in, shapes_out, counted, dtypes_in, dtypes_out, facts.family
