import pytest
import torch
import torch.nn.functional as F

from tests.conftest import count, only
from torchcost.counting.formulas.conv import conv_macs

# MACs = output elements x (C_in / groups) x kernel elements; transposed: input elements x (C_out / groups) x kernel
CASES = [
    # x shape, w shape, kwargs, expected MACs
    ((2, 3, 8, 8), (4, 3, 3, 3), {"padding": 1}, 2 * 4 * 8 * 8 * 3 * 9),  # 512 outputs x 27 = 13824
    ((1, 4, 5, 5), (6, 2, 3, 3), {"groups": 2}, 1 * 6 * 3 * 3 * 2 * 9),  # 54 outputs x 18 = 972
    ((1, 8, 6, 6), (8, 1, 3, 3), {"groups": 8, "stride": 2, "padding": 1}, 8 * 3 * 3 * 9),  # depthwise: 648
    ((1, 2, 7, 7), (3, 2, 3, 3), {"dilation": 2}, 3 * 3 * 3 * 18),  # 7 - 2*2 = 3 per side: 27 x 18 = 486
]


@pytest.mark.parametrize(("x_shape", "w_shape", "kwargs", "macs"), CASES)
def test_conv2d_macs(x_shape, w_shape, kwargs, macs):
    x, w = torch.randn(x_shape), torch.randn(w_shape)
    cost = only(count(F.conv2d, x, w, **kwargs), "aten.convolution")
    assert cost.macs == macs
    assert cost.flops == 2 * macs  # no bias


def test_conv2d_bias_and_bytes():
    x, w, b = torch.randn(2, 3, 8, 8), torch.randn(4, 3, 3, 3), torch.randn(4)
    cost = only(count(F.conv2d, x, w, b, padding=1), "aten.convolution")
    assert cost.flops == 2 * 13824 + 512  # one bias add per output element (2*4*8*8 = 512)
    assert cost.bytes_read == (2 * 3 * 64 + 4 * 27 + 4) * 4  # x 384, w 108, b 4 floats = 1984 bytes
    assert cost.bytes_written == 512 * 4


def test_conv1d_and_conv3d():
    cost = only(count(F.conv1d, torch.randn(1, 2, 10), torch.randn(5, 2, 3)), "aten.convolution")
    assert cost.macs == 5 * 8 * 2 * 3  # 40 outputs x 6 = 240
    cost = only(count(F.conv3d, torch.randn(1, 2, 4, 4, 4), torch.randn(3, 2, 2, 2, 2)), "aten.convolution")
    assert cost.macs == 3 * 27 * 2 * 8  # 81 outputs x 16 = 1296


def test_transposed_conv():
    x, w = torch.randn(1, 4, 3, 3), torch.randn(4, 2, 2, 2)  # (C_in, C_out / groups, kH, kW)
    cost = only(count(F.conv_transpose2d, x, w, stride=2), "aten.convolution")
    # 36 input elements x 2 output channels x 4 kernel positions = 288; equally 72 outputs x 4 inputs each
    assert cost.macs == 288


def test_conv_macs_formula():
    assert conv_macs(torch.Size([1, 3, 4, 4]), torch.Size([2, 3, 1, 1]), torch.Size([1, 2, 4, 4]), False) == 96


def test_conv_backward():
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)

    def forward_backward():
        F.conv2d(x, w).sum().backward()

    records = count(forward_backward)
    forward = only(records, "aten.convolution").macs
    assert forward == 3 * 3 * 3 * 18  # 27 outputs x 18 = 486
    assert only(records, "aten.convolution_backward").macs == 2 * forward  # grad input + grad weight
