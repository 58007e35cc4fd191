"""What an op's schema says about its outputs: new tensors, or its first argument written in place."""

from __future__ import annotations

import functools

import torch
from torch._ops import OpOverload


def returns_new_tensors(op: OpOverload) -> bool:
    """The op returns only new tensors: no views, no in-place or ``out=`` writes, no lists or scalars."""
    schema = op._schema
    if op.is_view or any(a.alias_info is not None for a in schema.arguments):
        return False
    return bool(schema.returns) and all(r.alias_info is None and str(r.type) == "Tensor" for r in schema.returns)


@functools.cache
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
