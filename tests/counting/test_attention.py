import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import count, total
from torchcost.counting.formulas.attention import attended_pairs


@pytest.mark.parametrize(
    ("queries", "keys", "causal", "pairs"),
    [
        (8, 8, False, 64),
        (8, 8, True, 36),  # 1 + 2 + ... + 8
        (3, 5, True, 6),  # query i sees keys 0..i: 1 + 2 + 3
        (5, 3, True, 12),  # 1 + 2 + 3 + 3 + 3
    ],
)
def test_attended_pairs(queries, keys, causal, pairs):
    assert attended_pairs(queries, keys, causal) == pairs


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_sdpa(device):
    q = torch.randn(2, 4, 8, 16, device=device)  # (B, H, L, E)
    # B*H = 8 heads of 64 pairs, E + Ev = 32 MACs per pair
    cost = total(count(F.scaled_dot_product_attention, q, q, q))
    assert cost.macs == 8 * 64 * 32  # 16384


def test_sdpa_causal_cpu_kernel():
    q = torch.randn(2, 4, 8, 16)
    records = count(F.scaled_dot_product_attention, q, q, q, is_causal=True)
    assert [r.op for r in records] == ["aten._scaled_dot_product_flash_attention_for_cpu"]
    cost = records[0].cost
    assert cost.macs == 8 * 36 * 32  # 9216
    assert cost.flops == 2 * 9216 + 5 * 8 * 36  # softmax: 5 FLOPs per computed score
    assert cost.bytes_read == 3 * 2 * 4 * 8 * 16 * 4  # q, k, v


def test_grouped_query_attention_counts_query_heads():
    q, kv = torch.randn(1, 4, 8, 16), torch.randn(1, 2, 8, 16)
    cost = total(count(F.scaled_dot_product_attention, q, kv, kv, enable_gqa=True))
    assert cost.macs == 4 * 64 * 32  # 8192: every query head attends, whatever the key heads


def test_sdpa_backward():
    q = torch.randn(1, 2, 4, 8, requires_grad=True)

    def forward_backward():
        F.scaled_dot_product_attention(q, q, q).sum().backward()

    records = count(forward_backward)
    backward = [r for r in records if r.op.endswith("attention_for_cpu_backward")]
    assert len(backward) == 1
    assert backward[0].cost.macs == 2 * 16 * (3 * 8 + 2 * 8)  # B*H*pairs x (3E + 2Ev) = 1280


# Self-attention, E = 16, H = 4, B = 2, L = 5: in-projection 2*15*16*16 = 7680, out-projection 2*5*16*16 = 2560,
# scores and weighted sum 2*5*5*2*16 = 1600.
MHA_MACS = 7680 + 2560 + 1600


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_multi_head_attention(device):
    mha = nn.MultiheadAttention(16, 4, batch_first=True, device=device).eval()
    x = torch.randn(2, 5, 16, device=device)
    with torch.no_grad():
        records = count(mha, x, x, x)
    assert total(records).macs == MHA_MACS
    if device == "cpu":
        assert [r.op for r in records] == ["aten._native_multi_head_attention"]


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_transformer_encoder_layer(device):
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, device=device).eval()
    with torch.no_grad():
        records = count(layer, torch.randn(2, 5, 16, device=device))
    assert total(records).macs == MHA_MACS + 2 * 10 * 16 * 32  # feed-forward: 10 tokens x 16 x 32, twice
