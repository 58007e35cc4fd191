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


class Attend(nn.Module):
    """Scaled dot-product attention of its three inputs, then a projection of the output's head dim."""

    def __init__(self, value_dim: int, **options):
        super().__init__()
        self.options = options
        self.out = nn.Linear(value_dim, 8)

    def forward(self, q, k, v, mask=None):
        return self.out(F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **self.options))


# (query shape, key shape, value shape, options, mask shape and dtype): meta must run what the CPU runs
SDPA_VARIANTS = [
    ((1, 4, 16, 192), (1, 4, 16, 192), (1, 4, 16, 128), {"is_causal": True}, None),  # DeepSeek MLA: Ev != E
    ((1, 4, 16, 192), (1, 4, 16, 192), (1, 4, 16, 128), {}, None),
    ((2, 4, 16, 64), (2, 2, 16, 64), (2, 2, 16, 64), {"is_causal": True, "enable_gqa": True}, None),
    ((2, 4, 8, 16), (2, 4, 8, 16), (2, 4, 8, 16), {}, ((8, 8), torch.bool)),
    ((2, 4, 8, 16), (2, 4, 12, 16), (2, 4, 12, 16), {}, ((2, 1, 8, 12), torch.float32)),
    ((2, 4, 8, 16), (2, 4, 12, 16), (2, 4, 12, 24), {}, ((2, 1, 8, 12), torch.bool)),
]


@pytest.mark.parametrize(("q", "k", "v", "options", "mask"), SDPA_VARIANTS)
def test_sdpa_counts_the_same_on_meta_as_on_cpu(q, k, v, options, mask):
    import torchcost

    model = Attend(v[-1], **options)
    inputs = [torch.randn(shape) for shape in (q, k, v)]
    if mask is not None:
        shape, dtype = mask
        inputs.append(torch.ones(shape, dtype=dtype).tril() if dtype == torch.bool else torch.randn(shape))
    on_cpu = torchcost.profile(model, *inputs, device="cpu")
    on_meta = torchcost.profile(model, *inputs, device="meta")
    assert (on_meta.macs, on_meta.flops, on_meta.memory_access) == (on_cpu.macs, on_cpu.flops, on_cpu.memory_access)
    assert on_meta.modules[0].output_shapes == on_cpu.modules[0].output_shapes == [(*q[:-1], 8)]


def test_mla_attention_with_a_narrower_value_head():
    # CPU's flash kernel needs equal head dims, so Ev != E runs the math path: the full 16 x 16 score matrix
    # (causal masking applied to scores, no blocks skipped). 4 heads x 256 pairs x (192 + 128) = 327,680 MACs.
    import torchcost

    q = torch.randn(1, 4, 16, 192)
    p = torchcost.profile(Attend(128, is_causal=True), q, q, torch.randn(1, 4, 16, 128), device="meta")
    attention = sum(o.macs for o in p.operators if o.op == "aten.bmm")
    assert attention == 4 * 256 * (192 + 128)
