"""Counting at the ATen dispatch level, with the module stack that attributes each op to module paths."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import Any

import torch
import torch.nn.functional as F
from torch._decomp import decomposition_table
from torch._ops import OpOverload
from torch.autograd.graph import register_multi_grad_hook
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from torchcost.counting import formulas
from torchcost.counting.registry import OpCall, find_formula, tensors_in
from torchcost.records import OpCost, OpRecord, Shape

Rule = Callable[[OpCall], OpCost]


def shapes_of(tree: Any) -> tuple[Shape, ...]:
    return tuple(tuple(t.shape) for t in tensors_in(tree))


def signature(tree: Any, strides: bool = False) -> Hashable:
    """What an op's FLOPs and MACs can depend on: tensor shapes and dtypes and the other arguments' values
    (with ``strides``, also what the layout of its outputs can depend on).

    Raises ``TypeError`` for an argument that cannot be a dictionary key (symbolic sizes, for one).
    """
    if isinstance(tree, torch.Tensor):
        layout = tree.stride() if strides and tree.layout == torch.strided else None
        return (tuple(tree.shape), tree.dtype, tree.device.type, layout)
    if isinstance(tree, list | tuple):
        return (type(tree).__name__, *(signature(leaf, strides) for leaf in tree))
    if isinstance(tree, dict):
        return ("dict", *((key, signature(leaf, strides)) for key, leaf in tree.items()))
    hash(tree)
    return (type(tree).__name__, tree)


TensorMeta = tuple[tuple[int, ...], tuple[int, ...], torch.dtype]


def returns_new_tensors(op: OpOverload) -> bool:
    """The op returns only new tensors: no views, no in-place or ``out=`` writes, no lists or scalars."""
    schema = op._schema
    if op.is_view or any(a.alias_info is not None for a in schema.arguments):
        return False
    return bool(schema.returns) and all(r.alias_info is None and str(r.type) == "Tensor" for r in schema.returns)


def updates_self(op: OpOverload) -> bool:
    """An in-place op that writes its first argument and returns it, leaving its shape alone (``relu_``,
    ``hardswish_``, ``add_``; not ``resize_``, ``set_`` or ``transpose_``)."""
    schema = op._schema
    if torch.Tag.inplace_view in op.tags or op.overloadpacket.__name__ in ("resize_", "resize_as_", "set_"):
        return False
    args, returns = schema.arguments, schema.returns
    if not args or len(returns) != 1 or returns[0].alias_info is None or args[0].alias_info is None:
        return False
    if not args[0].alias_info.is_write or any(a.alias_info is not None for a in args[1:]):
        return False
    return set(returns[0].alias_info.before_set) == set(args[0].alias_info.before_set)


def _tensor_meta(out: Any) -> TensorMeta | tuple[TensorMeta, ...] | None:
    if isinstance(out, torch.Tensor):
        return (tuple(out.shape), out.stride(), out.dtype) if out.layout == torch.strided else None
    if isinstance(out, tuple) and all(isinstance(t, torch.Tensor) and t.layout == torch.strided for t in out):
        return tuple((tuple(t.shape), t.stride(), t.dtype) for t in out)
    return None


def _batch_norm_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``native_batch_norm`` on meta: the output is shaped and strided as the input, plus the per-channel
    mean and inverse std (PyTorch's meta kernel is its Python decomposition, about 2 ms a call)."""
    x = args[0]
    if kwargs or x.dtype not in (torch.float32, torch.float64) or x.dim() < 2:
        return NotImplemented
    channels = x.shape[1]
    stats = torch.empty((channels,), dtype=x.dtype, device="meta")
    return torch.empty_like(x), stats, torch.empty_like(stats)


def _layer_norm_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``native_layer_norm`` on meta: the output as the input, the mean and 1/std with the normalised
    dimensions kept as 1 (float32 for 16-bit inputs)."""
    x, normalized = args[0], args[1]
    if kwargs or not x.is_contiguous() or x.dtype not in _FLOATS:
        return NotImplemented
    kept = tuple(x.shape[: x.dim() - len(normalized)]) + (1,) * len(normalized)
    stats_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    stats = torch.empty(kept, dtype=stats_dtype, device="meta")
    return torch.empty(x.shape, dtype=x.dtype, device="meta"), stats, torch.empty_like(stats)


def _addmm_on_meta(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``addmm(bias, m1, m2)`` on meta: a contiguous (m, n) result."""
    bias, m1, m2 = args[:3]
    if set(kwargs) - {"beta", "alpha"} or m1.dim() != 2 or m2.dim() != 2 or not m1.dtype == m2.dtype == bias.dtype:
        return NotImplemented
    return torch.empty((m1.shape[0], m2.shape[1]), dtype=m1.dtype, device="meta")


_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# Shape-only implementations of common ops whose meta kernels are slow Python (a layer norm's takes about
# 1.5 ms, an addmm's 0.3 ms), checked against PyTorch's in tests/counting. Each returns NotImplemented for
# the cases it does not cover, which then run PyTorch's meta kernel.
META_SHORTCUTS: dict[OpOverload, Callable[[tuple[Any, ...], dict[str, Any]], Any]] = {
    torch.ops.aten.native_batch_norm.default: _batch_norm_on_meta,
    torch.ops.aten.native_layer_norm.default: _layer_norm_on_meta,
    torch.ops.aten.addmm.default: _addmm_on_meta,
}


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
    try:
        return (op, signature(loose), signature(kwargs))
    except TypeError:
        return None


def _empty_meta(spec: TensorMeta | tuple[TensorMeta, ...]) -> Any:
    if isinstance(spec[0], tuple) and isinstance(spec[0][0], tuple):
        return tuple(_empty_meta(part) for part in spec)
    shape, stride, dtype = spec
    return torch.empty_strided(shape, stride, dtype=dtype, device="meta")


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


class ModuleStack:
    """Which of the model's modules are running, in forward and in backward, from global module hooks.

    Nothing is registered on the model itself; the hooks are removed on exit. In backward, a module is
    entered when the gradients of its outputs arrive and left when those of its inputs are computed
    (the approach of ``torch.utils.module_tracker``).
    """

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names  # id(module) -> dotted path ("" for the root)
        self.forward: list[str] = []
        self.forward_inputs: list[tuple[Shape, ...]] = []
        self.backward: list[str] = []
        self.calls: dict[str, int] = {}
        self.output_shapes: dict[str, list[Shape]] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> ModuleStack:
        self._handles = [
            register_module_forward_pre_hook(self._enter_forward),
            register_module_forward_hook(self._leave_forward),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def current(self) -> tuple[str, ...]:
        in_backward = torch._C._current_graph_task_id() != -1
        return tuple(dict.fromkeys(self.backward if in_backward else self.forward))

    def _enter_forward(self, module: torch.nn.Module, args: Any) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        self.forward.append(name)
        self.forward_inputs.append(shapes_of(args))
        self.calls[name] = self.calls.get(name, 0) + 1
        self._on_gradients(args, lambda: self._remove(self.backward, name))

    def _leave_forward(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        index = len(self.forward) - 1 - self.forward[::-1].index(name)
        del self.forward[index], self.forward_inputs[index]
        self.output_shapes.setdefault(name, list(shapes_of(output)))
        self._on_gradients(output, lambda: self.backward.append(name))

    def _on_gradients(self, tree: Any, action: Callable[[], None]) -> None:
        tensors = [t for t in tensors_in(tree) if t.requires_grad]
        if tensors and torch.is_grad_enabled():
            self._handles.append(register_multi_grad_hook(tensors, lambda grad: action(), mode="any"))

    @staticmethod
    def _remove(stack: list[str], name: str) -> None:
        if name in stack:
            del stack[len(stack) - 1 - stack[::-1].index(name)]


class CountingMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Runs every ATen op as usual and records its cost and the enclosing module paths."""

    def __init__(self, modules: ModuleStack) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.modules = modules
        self.records: list[OpRecord] = []
        self.recording = True
        self.phase: str | None = None  # a phase the caller names ("optimizer"); else forward or backward
        self._rules: dict[OpOverload, Rule | None] = {}
        self._decomposing: list[list[OpCost | None]] = []
        # (op, signature) -> (FLOPs, MACs) of a decomposition, or None when it had uncounted parts
        self._decomposed: dict[Hashable, tuple[int, int] | None] = {}
        # on meta, (op, signature with strides) -> the outputs' shapes, strides and dtypes, and the op's cost
        self._on_meta: dict[Hashable, tuple[Any, OpCost | None]] = {}
        self._replayable: dict[OpOverload, str | None] = {}  # "new" tensors, "self" (in place), or None
        self._pointwise_dtype: dict[Hashable, torch.dtype] = {}  # pointwise_on_meta_key -> output dtype

    def __torch_dispatch__(
        self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func not in self._rules:
            self._rules[func] = rule_for(func)
            self._replayable[func] = "new" if returns_new_tensors(func) else "self" if updates_self(func) else None
        meta_key = self._meta_key(func, args, kwargs)
        if meta_key is not None and meta_key in self._on_meta:
            spec, cost = self._on_meta[meta_key]
            out = args[0] if spec == "self" else _empty_meta(spec)
        else:
            out, cost = self._run(func, args, kwargs)
            in_place = self._replayable[func] == "self"
            spec = ("self" if out is args[0] else None) if in_place else _tensor_meta(out)
            if meta_key is not None and spec is not None:
                self._on_meta[meta_key] = (spec, cost)
        if self._decomposing:
            self._decomposing[-1].append(cost)
        elif self.recording and func.namespace != "profiler":  # record_function markers are not ops
            self._record(func, args, kwargs, out, cost)
        return out

    def _run(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, OpCost | None]:
        rule = self._rules[func]
        if rule is None:
            return self._decompose(func, args, kwargs)
        out: Any = NotImplemented
        learn: Hashable = None
        if tensors_in(args) and all(t.device.type == "meta" for t in tensors_in(args)):
            shortcut = META_SHORTCUTS.get(func)
            if shortcut is not None:
                out = shortcut(args, kwargs)
            elif self._replayable[func] == "new":
                learn = pointwise_on_meta_key(func, args, kwargs)
                if learn in self._pointwise_dtype:
                    shape = tensors_in(args)[0].shape
                    out, learn = torch.empty(shape, dtype=self._pointwise_dtype[learn], device="meta"), None
        if out is NotImplemented:
            out = func(*args, **kwargs)
        if learn is not None and isinstance(out, torch.Tensor) and out.is_contiguous():
            self._pointwise_dtype.update({learn: out.dtype} if out.shape == tensors_in(args)[0].shape else {})
        return out, self._apply(rule, OpCall(func, args, kwargs, out))

    def _meta_key(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        """On meta, an op that makes new tensors is a function of its signature: its outputs (shapes,
        strides, dtypes, no data) and its cost are computed once per signature and then replayed, which
        skips PyTorch's Python meta kernels on every repeated layer. An in-place op returns its first
        argument, unchanged on meta."""
        if not self._replayable[func]:
            return None
        tensors = tensors_in((args, kwargs))
        if not tensors or any(t.device.type != "meta" for t in tensors):
            return None
        try:
            return (func, signature((args, kwargs), strides=True))
        except TypeError:
            return None

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
        try:
            key: Hashable = (func, signature((args, kwargs)))
        except TypeError:
            key = None
        if key is not None and key in self._decomposed:
            try:
                out = func(*args, **kwargs)
            except NotImplementedError:  # no kernel for this device: run the decomposition again
                pass
            else:
                known = self._decomposed[key]
                call = OpCall(func, args, kwargs, out)
                return out, None if known is None else OpCost(*known, call.bytes_read(), call.bytes_written())
        out, cost = self._run_decomposition(func, args, kwargs)
        if key is not None:
            self._decomposed[key] = None if cost is None else (cost.flops, cost.macs)
        return func(*args, **kwargs) if out is NotImplemented else out, cost

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
        self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, cost: OpCost | None
    ) -> None:
        counted = cost is not None
        if cost is None:  # FLOPs unknown; the bytes it moved are still known
            call = OpCall(func, args, kwargs, out)
            cost = OpCost(bytes_read=call.bytes_read(), bytes_written=call.bytes_written())
        in_backward = torch._C._current_graph_task_id() != -1
        self.records.append(
            OpRecord(
                op=str(func.overloadpacket),
                phase=self.phase or ("backward" if in_backward else "forward"),
                modules=self.modules.current,
                cost=cost,
                input_shapes=shapes_of((args, kwargs)),
                output_shapes=shapes_of(out),
                counted=counted,
            )
        )


class FusedAttentionOnMeta(TorchFunctionMode):
    """Count attention on ``meta`` as a CPU runs it.

    On meta tensors PyTorch picks the unfused math reference of ``scaled_dot_product_attention`` (it writes
    the whole score matrix and computes masked scores), while a CPU runs a fused flash kernel that skips
    the blocks a causal mask hides. This mode sends meta calls to that kernel's shape-only implementation,
    so counting on meta gives the CPU's counts.
    """

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and args and args[0].device.type == "meta":
            return _flash_attention_for_cpu(*args, **kwargs)
        return func(*args, **kwargs)


def _flash_attention_for_cpu(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    if attn_mask is not None and attn_mask.dtype == torch.bool:  # as the CPU path converts it
        blocked = torch.zeros(attn_mask.shape, dtype=query.dtype, device=query.device)
        attn_mask = blocked.masked_fill(attn_mask.logical_not(), float("-inf"))
    out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        query, key, value, dropout_p, is_causal, attn_mask=attn_mask, scale=scale
    )
    return out[0]  # type: ignore[no-any-return]
