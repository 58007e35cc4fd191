"""Property: counting on meta gives the CPU's numbers (MACs, FLOPs, bytes read and written, uncounted calls), for
random ops, dtypes, shapes and arguments drawn from PyTorch's own OpInfo database (the sample inputs its test suite
runs every op on). Each drawn op runs through ``torchcost.profile`` on the CPU and on meta.
"""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import torchcost
from torchcost import ProfilingError

pytest.importorskip("expecttest")  # torch.testing's OpInfo database needs it

DTYPES = (torch.float32, torch.float64, torch.bfloat16)
# sparse outputs have no meta layout to compare; x.to("cpu", copy=True) on meta is taken for tolist()'s copy, which
# a CPU run does not make (see counting/mode.py), so meta leaves it out
SKIPPED = {"to_sparse", "sparse.sampled_addmm", "sparse.mm", "to"}
if torch.torch_version.TorchVersion(torch.__version__) < "2.14":
    # before 2.14 the CPU's quantile checks that q lies in [0, 1] with tensor ops (ge, le, all) that meta skips
    SKIPPED |= {"quantile", "nanquantile"}


@functools.cache
def op_infos() -> list:
    """PyTorch's OpInfo database, imported when the test runs: importing it turns PyTorch's global backend flags
    off and wraps TorchScript calls, which this puts back so that the other tests see PyTorch as users do."""
    script_calls = torch._C.ScriptFunction.__call__, torch._C.ScriptMethod.__call__
    from torch.testing._internal.common_methods_invocations import op_db

    torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
    torch._C.ScriptFunction.__call__, torch._C.ScriptMethod.__call__ = script_calls
    return [op for op in op_db if op.name not in SKIPPED and any(d in op.supported_dtypes("cpu") for d in DTYPES)]


class Calls(nn.Module):
    """A module around one function and its keyword arguments (``dtype=``, ``device=``: the op's, not profile's)."""

    def __init__(self, function, kwargs):
        super().__init__()
        self.function, self.kwargs = function, kwargs

    def forward(self, *args):
        return self.function(*args, **self.kwargs)


def counts(p: torchcost.Profile) -> tuple[int, ...]:
    return p.macs, p.flops, p.memory_access.read, p.memory_access.write, sum(u.count for u in p.uncounted)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.data())
def test_meta_counts_equal_cpu_counts(data):
    op = data.draw(st.sampled_from(op_infos()), label="op")
    dtype = data.draw(st.sampled_from([d for d in DTYPES if d in op.supported_dtypes("cpu")]), label="dtype")
    samples = list(op.sample_inputs("cpu", dtype, requires_grad=False))
    assume(samples)
    sample = data.draw(st.sampled_from(samples), label="sample")
    model, args = Calls(op.op, sample.kwargs), (sample.input, *sample.args)
    try:
        on_cpu = torchcost.profile(model, *args, device="cpu")
    except ProfilingError:
        assume(False)  # a sample PyTorch's test suite expects to fail, or to need another device
    try:
        on_meta = torchcost.profile(model, *args, device="meta")
    except ProfilingError as error:
        assert "needs real data" in str(error)  # a result that depends on the values (nonzero, unique): said so
        return
    assert counts(on_meta) == counts(on_cpu), f"{op.name} {dtype}: {sample}"
