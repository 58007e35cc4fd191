"""MACs of convolutions and matrix products against a brute-force reference: a naive loop that performs every
multiply-accumulate one at a time and counts them, on random small shapes and arguments (hypothesis). The loop's
result is checked against PyTorch's, so it is a real convolution (or product), not a restatement of the formula.
"""

import itertools

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import count, total

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def naive_conv2d(x, w, stride, padding, dilation, groups):
    """Every (output element, input channel of its group, kernel position) product, one at a time; padded
    positions multiply a zero, as the count's convention (and the kernels' arithmetic) has it."""
    batch, _, height, width = x.shape
    out_channels, per_group, kh, kw = w.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    oh = (height + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = torch.zeros(batch, out_channels, oh, ow, dtype=torch.float64)
    macs = 0
    outs_per_group = out_channels // groups
    for n, o, i, j in itertools.product(range(batch), range(out_channels), range(oh), range(ow)):
        group = o // outs_per_group
        for c, u, v in itertools.product(range(per_group), range(kh), range(kw)):
            pixel = padded[n, group * per_group + c, i * stride + u * dilation, j * stride + v * dilation]
            out[n, o, i, j] += pixel * w[o, c, u, v]
            macs += 1
    return out, macs


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel, stride, dilation, padding = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(0, 2)),
    )
    size = draw(st.integers(dilation * (kernel - 1) + 1, 6))
    return (
        draw(st.integers(1, 2)),
        channels,
        size,
        draw(st.integers(dilation * (kernel - 1) + 1, 6)),
        out_channels,
        kernel,
        stride,
        padding,
        dilation,
        groups,
    )


@SETTINGS
@given(conv_cases())
def test_conv2d_macs_equal_a_naive_loops(case):
    batch, channels, height, width, out_channels, kernel, stride, padding, dilation, groups = case
    x = torch.randn(batch, channels, height, width, dtype=torch.float64)
    w = torch.randn(out_channels, channels // groups, kernel, kernel, dtype=torch.float64)
    reference, macs = naive_conv2d(x, w, stride, padding, dilation, groups)
    assert torch.allclose(reference, F.conv2d(x, w, None, stride, padding, dilation, groups))
    for device in ("cpu", "meta"):
        on = x.to(device), w.to(device)
        assert total(count(F.conv2d, *on, None, stride, padding, dilation, groups)).macs == macs


def naive_matmul(a, b):
    """(..., m, k) x (..., k, n) with broadcast batch dimensions, one multiply-accumulate at a time."""
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a, b = a.expand(*batch, *a.shape[-2:]), b.expand(*batch, *b.shape[-2:])
    out = torch.zeros(*batch, a.shape[-2], b.shape[-1], dtype=torch.float64)
    macs = 0
    for index in itertools.product(*(range(d) for d in batch)):
        for i, j, p in itertools.product(range(a.shape[-2]), range(b.shape[-1]), range(a.shape[-1])):
            out[(*index, i, j)] += a[(*index, i, p)] * b[(*index, p, j)]
            macs += 1
    return out, macs


@st.composite
def matmul_cases(draw):
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    b_batch = [draw(st.sampled_from([d, 1])) for d in batch]  # broadcast some batch dimensions
    return (*batch, m, k), (*b_batch, k, n)


@SETTINGS
@given(matmul_cases())
def test_matmul_macs_equal_a_naive_loops(shapes):
    a, b = (torch.randn(shape, dtype=torch.float64) for shape in shapes)
    reference, macs = naive_matmul(a, b)
    assert torch.allclose(reference, a @ b)
    for device in ("cpu", "meta"):
        assert total(count(torch.matmul, a.to(device), b.to(device))).macs == macs
