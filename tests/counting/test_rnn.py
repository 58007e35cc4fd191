import pytest
import torch
from torch import nn

from tests.conftest import count, total

# T = 5 steps, B = 2, I = 16, H = 32. MACs per step and batch element: gates x H x (I + H).
LSTM_MACS = 10 * 4 * 32 * 48  # 61440
LSTM_FLOPS = 2 * LSTM_MACS + 10 * 21 * 32  # + 21 pointwise FLOPs per hidden unit per step = 129600


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_lstm_fused_and_unfused_agree(device):
    lstm = nn.LSTM(16, 32, batch_first=True, device=device)
    with torch.no_grad():
        cost = total(count(lstm, torch.randn(2, 5, 16, device=device)))
    assert (cost.macs, cost.flops) == (LSTM_MACS, LSTM_FLOPS)


def test_gru():
    gru = nn.GRU(16, 32)
    with torch.no_grad():
        assert total(count(gru, torch.randn(5, 2, 16))).macs == 10 * 3 * 32 * 48  # 46080


def test_lstm_two_layers_bidirectional():
    lstm = nn.LSTM(16, 32, num_layers=2, bidirectional=True)
    with torch.no_grad():
        macs = total(count(lstm, torch.randn(5, 2, 16))).macs
    # layer 1: 2 directions x 10 x 4*32*(16+32); layer 2 input is 64 wide: 2 x 10 x 4*32*(64+32)
    assert macs == 2 * 10 * 128 * 48 + 2 * 10 * 128 * 96
