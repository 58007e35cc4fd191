"""The one registry of per-operator formulas, and the call object each formula reads.

A formula is a small pure function ``(call: OpCall) -> OpCost``. Register it for one or more ATen ops::

    @register(aten.mm)
    def mm(call: OpCall) -> OpCost:
        a, b = call.arg(0), call.arg(1)  # (m, k), (k, n)
        m, k = a.shape
        return call.cost(macs=m * k * b.shape[1])

``call.cost(flops=..., macs=...)`` fills in the memory access by the default rule (bytes of every tensor
read plus every tensor written) and adds 2 FLOPs per MAC; a formula overrides the bytes where the rule is
wrong for its op (an embedding reads only the rows it gathers).

``register(..., family="matmul")`` also names the op's family where its formula is: every ``OpRecord`` of the op
carries it (``OpRecord.family``), and ``ops_in_family`` lists the ops of one, so no other module keeps a list.
Families read today: ``"matmul"`` (matrix products: dense, batched, quantized, grouped, an RNN's gates).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch._ops import OpOverload, OpOverloadPacket

from torchcost.records import OpCost
from torchcost.tensors import NO_TENSORS as NO_TENSORS
from torchcost.tensors import tensor_bytes, tensors_in

OpKey = OpOverload | OpOverloadPacket | str  # a str names an op of a library loaded later: "torchvision::nms"
Formula = Callable[["OpCall"], OpCost]
ModuleFormula = Callable[[nn.Module, tuple[Any, ...], Any], OpCost]  # (module, inputs, output) -> its cost

_FORMULAS: dict[OpKey, Formula] = {}
_MODULE_FORMULAS: dict[type[nn.Module], ModuleFormula] = {}
_FAMILIES: dict[OpKey, str] = {}  # op -> its family, for the ops registered with one
_changes = [0]  # how many times the formulas changed: what was learnt with older ones is stale (see mode.Replays)


class DuplicateFormulaError(ValueError):
    """Raised when an op already has a formula and ``override=True`` was not given."""


def register(*ops: OpKey, override: bool = False, family: str | None = None) -> Callable[[Formula], Formula]:
    """Register ``formula`` for each op (an overload such as ``aten.mm.default``, a packet ``aten.mm``, or the
    name ``"torchvision::nms"`` of an op whose library is loaded later), and with ``family`` the ops' family
    (``"matmul"``), which their records carry. An override without ``family`` keeps the op's family.

    Raises ``DuplicateFormulaError`` if an op already has one, unless ``override=True``.
    """

    for op in ops:
        if not isinstance(op, OpOverload | OpOverloadPacket | str):
            raise TypeError(f"register() takes ops such as torch.ops.aten.mm or names such as 'mylib::op', got {op!r}")
    if family is not None and not (isinstance(family, str) and family):
        raise TypeError(f"register() takes a family such as 'matmul', got {family!r}")

    def decorator(formula: Formula) -> Formula:
        for op in ops:
            if op in _FORMULAS and not override:
                raise DuplicateFormulaError(
                    f"{op} already has the formula {_FORMULAS[op].__qualname__}; pass override=True to replace it"
                )
            _FORMULAS[op] = formula
            _changes[0] += 1
            if family is not None:
                _FAMILIES[op] = family
        return formula

    return decorator


def unregister(*ops: OpKey | type[nn.Module]) -> None:
    """Remove the formulas of ``ops`` or module classes (a user formula registered for a test or an experiment)."""
    for op in ops:
        if isinstance(op, type):
            _MODULE_FORMULAS.pop(op, None)
        else:
            _FORMULAS.pop(op, None)
            _FAMILIES.pop(op, None)
            _changes[0] += 1


def register_module(*module_types: type[nn.Module], override: bool = False) -> Callable[[ModuleFormula], ModuleFormula]:
    """Register ``formula(module, inputs, output) -> OpCost`` for modules of these classes (and subclasses), as
    thop's ``custom_ops`` does: it replaces the count of every op the module's forward runs (a fused extension,
    say). The module stays in the tree, marked as counted by a user formula; its backward is counted as usual.
    """
    for module_type in module_types:
        if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
            raise TypeError(f"register_module() takes nn.Module classes, got {module_type!r}")

    def decorator(formula: ModuleFormula) -> ModuleFormula:
        for module_type in module_types:
            if module_type in _MODULE_FORMULAS and not override:
                known = _MODULE_FORMULAS[module_type].__qualname__
                raise DuplicateFormulaError(
                    f"{module_type.__name__} already has the formula {known}; pass override=True to replace it"
                )
            _MODULE_FORMULAS[module_type] = formula
        return formula

    return decorator


def find_module_formula(module: nn.Module) -> ModuleFormula | None:
    """The formula registered for the module's class or the nearest base class, or None."""
    if not _MODULE_FORMULAS:  # the usual case: none registered
        return None
    for cls in type(module).__mro__:
        formula = _MODULE_FORMULAS.get(cls)
        if formula is not None:
            return formula
    return None


def find_formula(op: OpOverload) -> Formula | None:
    """The formula registered for this exact overload, else for its packet, else for its name, else None."""
    return _FORMULAS.get(op) or _FORMULAS.get(op.overloadpacket) or _FORMULAS.get(op._schema.name)


def formula_changes() -> int:
    """A number that grows whenever an op's formula is registered or removed."""
    return _changes[0]


def family_of(op: OpOverload) -> str:
    """The family registered for this overload, its packet or its name ("matmul"), or "" when it has none."""
    return _FAMILIES.get(op) or _FAMILIES.get(op.overloadpacket) or _FAMILIES.get(op._schema.name) or ""


def ops_in_family(family: str) -> frozenset[str]:
    """The ops registered with ``family``, named as their records name them ("aten.mm", "bitsandbytes.gemm_4bit")."""
    return frozenset(_record_name(op) for op, tagged in _FAMILIES.items() if tagged == family)


def _record_name(op: OpKey) -> str:
    if isinstance(op, OpOverload):
        return str(op.overloadpacket)
    return str(op) if isinstance(op, OpOverloadPacket) else op.replace("::", ".")


def registered_ops() -> list[str]:
    return sorted(str(op) for op in _FORMULAS)


@dataclass(frozen=True)
class OpCall:
    """One dispatched ATen call: the op, its arguments as passed, and what it returned."""

    op: OpOverload
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out: Any

    def arg(self, index: int, default: Any = None) -> Any:
        """Argument ``index`` of the op's schema, whether it was passed by position or by name."""
        if index < len(self.args):
            return self.args[index]
        name = self.op._schema.arguments[index].name
        return self.kwargs.get(name, default)

    def named(self, name: str, default: Any = None) -> Any:
        """The argument called ``name`` in the op's schema, or ``default`` when it has none or was omitted."""
        for index, argument in enumerate(self.op._schema.arguments):
            if argument.name == name:
                return self.kwargs.get(name, default) if argument.kwarg_only else self.arg(index, default)
        return default

    @functools.cached_property
    def inputs(self) -> list[torch.Tensor]:
        """The argument tensors, in pytree order (walked once per call)."""
        return tensors_in((self.args, self.kwargs))

    @functools.cached_property
    def outputs(self) -> list[torch.Tensor]:
        """The returned tensors (walked once per call)."""
        return tensors_in(self.out)

    @property
    def output(self) -> torch.Tensor:
        """The first output tensor."""
        return self.outputs[0]

    def bytes_read(self) -> int:
        return sum(tensor_bytes(t) for t in self.inputs)

    def bytes_written(self) -> int:
        return sum(tensor_bytes(t) for t in self.outputs)

    def cost(
        self,
        *,
        macs: int = 0,
        flops: int = 0,
        bytes_read: int | None = None,
        bytes_written: int | None = None,
    ) -> OpCost:
        """An ``OpCost`` with FLOPs = 2 x MACs + ``flops`` and, unless given, the default memory access."""
        return OpCost(
            flops=2 * macs + flops,
            macs=macs,
            bytes_read=self.bytes_read() if bytes_read is None else bytes_read,
            bytes_written=self.bytes_written() if bytes_written is None else bytes_written,
        )


def ops_named(namespace: Any, names: Iterable[str]) -> list[OpOverloadPacket]:
    """The packets among ``names`` that this PyTorch build has (private kernels come and go)."""
    return [getattr(namespace, name) for name in names if hasattr(namespace, name)]
