"""Ops that move or create data without arithmetic: 0 FLOPs, memory access by the default rule unless
written out here. Views and reshapes (ops whose schema says they alias their input) are free and handled by
the counting mode itself.
"""

from __future__ import annotations

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost
from torchcost.tensors import tensor_bytes, tensors_in

aten = torch.ops.aten

_DATA_MOVEMENT = [
    "cat",
    "stack",
    "clone",
    "_to_copy",
    "contiguous",
    "constant_pad_nd",
    "reflection_pad1d",
    "reflection_pad2d",
    "reflection_pad3d",
    "replication_pad1d",
    "replication_pad2d",
    "replication_pad3d",
    "repeat",
    "repeat_interleave",
    "roll",
    "flip",
    "tril",
    "triu",
    "pixel_shuffle",
    "pixel_unshuffle",
    "channel_shuffle",
    "native_channel_shuffle",
    "narrow_copy",
    "slice_scatter",
    "select_scatter",
    "diagonal_scatter",
    "split_with_sizes_copy",
    "unbind_copy",
    "masked_scatter",
    "index_put",
    "index_put_",
    "_index_put_impl_",
    "scatter",
    "scatter_",
    "index_copy",
    "index_copy_",
    "fill",
    "zeros",
    "zeros_like",
    "ones",
    "ones_like",
    "full",
    "full_like",
    "empty",
    "empty_like",
    "empty_strided",
    "empty_permuted",
    "new_zeros",
    "new_ones",
    "new_full",
    "new_empty",
    "new_empty_strided",
    "arange",
    "linspace",
    "eye",
    "scalar_tensor",
    "randn",
    "randn_like",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randperm",
    "normal",
    "lift_fresh_copy",
    "resize_",
    "set_",
    "detach_",
    "_unsafe_view",
    "unsafe_split",
    "unsafe_split_with_sizes",
    "unsafe_chunk",
    "_local_scalar_dense",
    "nonzero",
    "_pin_memory",
    "expand_copy",
    "permute_copy",
    "view_copy",
    "t_copy",
    "transpose_copy",
]

_FREE = {
    "empty",
    "empty_like",
    "empty_strided",
    "empty_permuted",
    "new_empty",
    "new_empty_strided",
    "_unsafe_view",
    "unsafe_split",
    "unsafe_split_with_sizes",
    "unsafe_chunk",
    "resize_",
    "set_",
    "detach_",
    "lift_fresh_copy",
    "scalar_tensor",  # a 0-dim constant, as PyTorch wraps a Python number (free as lift_fresh is on the CPU)
}  # allocation or aliasing only: nothing read or written


@register(*ops_named(aten, _DATA_MOVEMENT))
def data_movement(call: OpCall) -> OpCost:
    if call.op.overloadpacket.__name__ in _FREE:
        return call.cost(bytes_read=0, bytes_written=0)
    return call.cost()


@register(*ops_named(aten, ["fill_", "zero_", "normal_", "uniform_", "random_"]))
def overwrite(call: OpCall) -> OpCost:
    # self.fill_(value) and in-place initialisers write every element of self without reading it: the same cost
    # as self.copy_(value), which meta runs for x[i] = 3 where the CPU runs fill_
    read = sum(tensor_bytes(t) for t in tensors_in((call.args[1:], call.kwargs)))
    return call.cost(bytes_read=read)


@register(aten.copy_)
def copy_(call: OpCall) -> OpCost:
    # dst.copy_(src): reads src, writes dst (dst's old contents are not read)
    return call.cost(bytes_read=tensor_bytes(call.arg(1)), bytes_written=tensor_bytes(call.arg(0)))


def gathered(call: OpCall, *index_args: int) -> OpCost:
    """A gather reads only the rows it picks (the size of its output) and its indices, not the whole source."""
    indices = 0
    for i in index_args:
        index = call.arg(i)
        tensors = index if isinstance(index, list | tuple) else [index]
        indices += sum(tensor_bytes(t) for t in tensors if isinstance(t, torch.Tensor))
    written = call.bytes_written()
    return call.cost(bytes_read=written + indices, bytes_written=written)


@register(aten.embedding)
def embedding(call: OpCall) -> OpCost:
    return gathered(call, 1)  # embedding(weight, indices)


@register(aten.index_select, aten.gather)
def index_select(call: OpCall) -> OpCost:
    return gathered(call, 2)  # index_select(self, dim, index)


@register(aten.index)
def index(call: OpCall) -> OpCost:
    return gathered(call, 1)  # index(self, indices: list[Tensor?])


@register(aten.embedding_dense_backward)
def embedding_backward(call: OpCall) -> OpCost:
    # every output gradient row is added into the weight gradient
    return call.cost(flops=call.arg(0).numel())


@register(aten.scatter_add, aten.scatter_add_, aten.index_add, aten.index_add_, aten.scatter_reduce)
def scatter_add(call: OpCall) -> OpCost:
    # one add per source element: scatter_add(self, dim, index, src), index_add(self, dim, index, source)
    return call.cost(flops=call.arg(3).numel())
