"""The models bench/peers.py runs every tool on, each with its reference parameter and MAC counts.

Three suites:

- ``torchvision``: every classification model at its weights' crop size; the reference is the weights'
  published ``num_params`` and ``_ops`` (GMACs to 3 decimals; torchvision labels them GFLOPS).
- ``transformers``: BERT-base, GPT-2, a small Llama-style decoder and ViT-B/16 built from ``transformers``
  configs (random weights, nothing downloaded), against the analytic counts below.
- ``handmade``: small models that exercise the classic failures, with their exact counts worked out by hand.

MAC convention of every reference: one MAC per multiply-accumulate of a convolution, a matrix product
(``nn.Linear``, ``@``, ``einsum``, LSTM gates) and attention (scores Q K^T and the weighted sum with V);
bias adds, norms, activations and softmax are not MACs. Causal attention has two conventions, and each
causal model carries both: ``causal`` counts the (query, key) pairs a causal mask keeps, T(T+1)/2 per head,
as fused kernels compute them; ``full`` counts the whole T x T score matrix, as an unfused implementation
computes it (and then masks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Built = tuple[nn.Module, tuple[Any, ...], dict[str, Any]]

TOKENS = 128  # sequence length of the transformer cases (batch 1)


@dataclass
class Case:
    name: str
    suite: str
    params: int
    macs: int  # the reference; for torchvision, _ops x 10^9 (known to 3 decimals of GMACs)
    build: Callable[[], Built]
    macs_full: int | None = None  # causal models: MACs with the full T x T score matrix
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- torchvision


def torchvision_cases() -> list[Case]:
    import torchvision

    cases = []
    for name in torchvision.models.list_models(module=torchvision.models):
        meta = torchvision.models.get_model_weights(name).DEFAULT.meta
        cases.append(
            Case(
                name=name,
                suite="torchvision",
                params=int(meta["num_params"]),
                macs=round(float(meta["_ops"]) * 1e9),
                build=lambda name=name: _torchvision(name),
                extra={"gmacs_3dp": float(meta["_ops"])},
            )
        )
    return cases


def _torchvision(name: str) -> Built:
    from torchcost.sources import load_model

    loaded = load_model(f"torchvision:{name}", "cpu")
    assert loaded.input_sizes is not None
    return loaded.model, (torch.randn(loaded.input_sizes[0]),), {}


# ---------------------------------------------------------------------------------------------- transformers


def encoder_layer_macs(tokens: int, embed: int, ffn: int) -> int:
    """q, k, v, o projections 4·T·E²; feed-forward 2·T·E·F; attention scores and weighted sum 2·T²·E."""
    return 4 * tokens * embed * embed + 2 * tokens * embed * ffn + 2 * tokens * tokens * embed


def encoder_layer_params(embed: int, ffn: int) -> int:
    """q, k, v, o with biases; two layer norms; feed-forward with biases."""
    return 4 * (embed * embed + embed) + 2 * 2 * embed + (embed * ffn + ffn) + (ffn * embed + embed)


def bert_base() -> Case:
    """BertModel(BertConfig()) with its pooler, T tokens: 12 encoder layers + the pooler's E² on the CLS token."""
    vocab, positions, types, embed, ffn, layers = 30522, 512, 2, 768, 3072, 12
    params = (vocab + positions + types) * embed + 2 * embed  # embeddings and their layer norm
    params += layers * encoder_layer_params(embed, ffn) + embed * embed + embed  # + pooler
    macs = layers * encoder_layer_macs(TOKENS, embed, ffn) + embed * embed

    def build() -> Built:
        import transformers

        model = transformers.BertModel(transformers.BertConfig())
        return model, (torch.zeros(1, TOKENS, dtype=torch.long),), {}

    return Case("bert-base", "transformers", params, macs, build, notes="BertModel, 128 tokens, pooler on")


def gpt2() -> Case:
    """GPT2LMHeadModel(GPT2Config()): 12 causal layers and the LM head tied to the token embedding."""
    vocab, positions, embed, layers = 50257, 1024, 768, 12
    params = (vocab + positions) * embed + layers * encoder_layer_params(embed, 4 * embed) + 2 * embed
    dense = layers * (4 * TOKENS * embed * embed + 2 * TOKENS * embed * 4 * embed) + TOKENS * embed * vocab
    causal = layers * TOKENS * (TOKENS + 1) // 2 * 2 * embed
    full = layers * TOKENS * TOKENS * 2 * embed

    def build() -> Built:
        import transformers

        model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
        return model, (torch.zeros(1, TOKENS, dtype=torch.long),), {}

    return Case("gpt2", "transformers", params, dense + causal, build, macs_full=dense + full, notes="tied head")


LLAMA_SMALL = {
    "vocab_size": 32000,
    "hidden_size": 512,
    "intermediate_size": 1376,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,  # grouped-query attention, 4 query heads per key/value head
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}


def llama_small() -> Case:
    """LlamaForCausalLM, 4 layers, 512 wide, GQA 8/2 heads, SwiGLU 1376, untied head.

    Per layer: q and o T·E·E each; k and v T·E·(Hk·d) each; gate, up, down 3·T·E·F; causal attention 2·E
    per (query, key) pair (H·d = E). Head T·E·V. Params: embedding and head V·E each, two RMS norms E per
    layer and a final one.
    """
    c = LLAMA_SMALL
    vocab, embed, ffn, layers = c["vocab_size"], c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    kv = embed // c["num_attention_heads"] * c["num_key_value_heads"]
    per_layer_params = 2 * embed * embed + 2 * embed * kv + 3 * embed * ffn + 2 * embed
    params = 2 * vocab * embed + layers * per_layer_params + embed
    dense = layers * TOKENS * (2 * embed * embed + 2 * embed * kv + 3 * embed * ffn) + TOKENS * embed * vocab
    causal = layers * TOKENS * (TOKENS + 1) // 2 * 2 * embed
    full = layers * TOKENS * TOKENS * 2 * embed

    def build() -> Built:
        import transformers

        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA_SMALL))
        return model, (torch.zeros(1, TOKENS, dtype=torch.long),), {}

    return Case("llama-small", "transformers", params, dense + causal, build, macs_full=dense + full, notes="GQA")


def vit_base() -> Case:
    """ViTModel(ViTConfig(), add_pooling_layer=False) on 224x224: a 16x16 patch conv, CLS + 196 tokens,
    12 encoder layers, a final layer norm."""
    embed, ffn, layers, patches, patch_in = 768, 3072, 12, 196, 3 * 16 * 16
    tokens = patches + 1
    params = patch_in * embed + embed + embed + tokens * embed  # patch conv, CLS token, positions
    params += layers * encoder_layer_params(embed, ffn) + 2 * embed
    macs = patches * embed * patch_in + layers * encoder_layer_macs(tokens, embed, ffn)

    def build() -> Built:
        import transformers

        model = transformers.ViTModel(transformers.ViTConfig(), add_pooling_layer=False)
        return model, (torch.randn(1, 3, 224, 224),), {}

    return Case("vit-base (transformers)", "transformers", params, macs, build, notes="197 tokens")


def transformer_cases() -> list[Case]:
    return [bert_base(), gpt2(), llama_small(), vit_base()]


# -------------------------------------------------------------------------------------------------- handmade


class Functional(nn.Module):
    """Parameters used through F.conv2d and F.linear, never through nn.Conv2d / nn.Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_weight = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.fc_weight = nn.Parameter(torch.randn(10, 8))
        self.fc_bias = nn.Parameter(torch.randn(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.adaptive_avg_pool2d(F.relu(F.conv2d(x, self.conv_weight, padding=1)), 1).flatten(1)  # (B, 8)
        return F.linear(y, self.fc_weight, self.fc_bias)


class MatmulOperator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(128, 256))
        self.w2 = nn.Parameter(torch.randn(256, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.w1).relu() @ self.w2  # (1, 64, 128) -> (1, 64, 256) -> (1, 64, 32)


class Einsum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(64, 4, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.einsum("bld,dhe->blhe", x, self.w)  # (2, 16, 4, 32)
        return torch.einsum("blhe,bmhe->bhlm", h, h)  # (2, 4, 16, 16)


class SelfAttentionSDPA(nn.Module):
    def __init__(self, embed: int = 256, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(embed, 3 * embed, bias=False)
        self.out = nn.Linear(embed, embed, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, e = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, T, d)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, t, e))


class SelfAttentionMHA(nn.Module):
    def __init__(self, embed: int = 256, heads: int = 4) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(embed, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


class TiedEmbedding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(1000, 64)
        self.mix = nn.Linear(64, 64)
        self.head = nn.Linear(64, 1000, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.mix(self.embed(ids)))


def frozen_mlp() -> nn.Module:
    model = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 10))
    model[0].requires_grad_(False)
    return model


class Separable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False)
        self.pointwise = nn.Conv2d(64, 128, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class KeywordInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(64, 64)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.proj(x)
        return y if mask is None else y * mask


class DictInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(32, 16)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.conv(batch["image"]).mean((2, 3)) + self.fc(batch["features"])


class LastLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(64, 128, num_layers=2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]


def _case(name: str, params: int, macs: int, factory: Callable[[], nn.Module], *args: Any, **kwargs: Any) -> Case:
    return Case(name, "handmade", params, macs, lambda: (factory(), args, kwargs))


def handmade_cases() -> list[Case]:
    """Each count is worked out in the comment beside it."""
    torch.manual_seed(0)
    return [
        # conv 8 out x 32x32 positions x 3 in x 9 = 221,184; linear 8 x 10 = 80. Params 216 + 80 + 10
        _case("functional F.conv2d/F.linear", 306, 221_264, Functional, torch.randn(1, 3, 32, 32)),
        # 64 x 128 x 256 = 2,097,152; 64 x 256 x 32 = 524,288. Params 32,768 + 8,192
        _case("matmul @", 40_960, 2_621_440, MatmulOperator, torch.randn(1, 64, 128)),
        # 2·16 rows x 64 x (4·32) = 262,144; 2·4 heads x 16 x 16 x 32 = 65,536. Params 64·4·32
        _case("einsum", 8_192, 327_680, Einsum, torch.randn(2, 16, 64)),
        # qkv 128 x 256 x 768 = 25,165,824; scores + weighted sum 4 heads x 128 x 128 x (64 + 64) = 8,388,608;
        # out 128 x 256 x 256 = 8,388,608. Params 256·768 + 256·256
        _case("attention F.sdpa", 262_144, 41_943_040, SelfAttentionSDPA, torch.randn(1, 128, 256)),
        # the same projections and attention, with biases: params 3·256·256 + 768 + 256·256 + 256
        _case("attention nn.MultiheadAttention", 263_168, 41_943_040, SelfAttentionMHA, torch.randn(1, 128, 256)),
        # embedding 1000·64 shared with the head (counted once) + mix 64·64 + 64. MACs: mix 32 x 64 x 64 =
        # 131,072; head 32 x 64 x 1000 = 2,048,000
        _case("tied weights", 68_160, 2_179_072, TiedEmbedding, torch.zeros(1, 32, dtype=torch.long)),
        # 128·256 + 256 (frozen) + 256·10 + 10 = 35,594; 4 x 128 x 256 + 4 x 256 x 10 = 141,312
        _case("frozen layers", 35_594, 141_312, frozen_mlp, torch.randn(4, 128)),
        # 64 out x 28x28 x (32/4 in) x 9 = 3,612,672. Params 64·8·9 + 64
        _case("grouped conv", 4_672, 3_612_672, lambda: nn.Conv2d(32, 64, 3, padding=1, groups=4), _img(32, 28)),
        # depthwise 64 x 56x56 x 9 = 1,806,336; pointwise 128 x 56x56 x 64 = 25,690,112. Params 576 + 8,192 + 128
        _case("depthwise + pointwise conv", 8_896, 27_496_448, Separable, _img(64, 56)),
        # input elements 64 x 16x16 x (32 out) x 4x4 = 8,388,608. Params 64·32·16 + 32
        _case("transposed conv", 32_800, 8_388_608, lambda: nn.ConvTranspose2d(64, 32, 4, 2, 1), _img(64, 16)),
        # 2 x 10 x 64 x 64 = 81,920. Params 64·64 + 64
        _case("kwargs input", 4_160, 81_920, KeywordInputs, torch.randn(2, 10, 64), mask=torch.ones(2, 10, 64)),
        # conv 16 x 16x16 x 27 = 110,592; linear 32 x 16 = 512. Params 432 + 16 + 512 + 16
        _case("dict input", 976, 111_104, DictInputs, {"image": _img(3, 16), "features": torch.randn(1, 32)}),
        # per step 4 gates x 128 x (in + 128): layer 1 20 x 4 x 128 x 192 = 1,966,080; layer 2 20 x 4 x 128 x 256
        # = 2,621,440. Params 4·128·(64 + 128) + 2·4·128 = 99,328; 4·128·256 + 1,024 = 132,096
        _case("LSTM", 231_424, 4_587_520, LastLSTM, torch.randn(1, 20, 64)),
    ]


def _img(channels: int, side: int) -> torch.Tensor:
    return torch.randn(1, channels, side, side)


def all_cases() -> dict[str, Case]:
    cases = [*handmade_cases(), *transformer_cases(), *torchvision_cases()]
    return {case.name: case for case in cases}
