"""A GPT written as Megatron-LM writes it, for checking activation memory against Korthikanti et al. 2022
(Table 2): fp16 activations, dropout after the attention probabilities, the attention output and the MLP (1-byte
masks), the softmax output kept for backward, GeLU, LayerNorm; sequence-first tensors (s, b, h)."""

import torch
import torch.nn.functional as F
from torch import nn


class CoreAttention(nn.Module):
    """softmax(q k^T / sqrt(d)) v with dropout on the probabilities: the part selective recomputation redoes."""

    def __init__(self, heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = heads  # tensor parallelism divides it on the attention module, which owns the projections
        self.dropout = dropout

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
        s, b, h = q.shape
        d = h // heads
        q = q.reshape(s, b * heads, d).transpose(0, 1)  # (b a, s, d)
        k = k.reshape(s, b * heads, d).transpose(0, 1)
        v = v.reshape(s, b * heads, d).transpose(0, 1)
        scores = torch.bmm(q, k.transpose(1, 2)) * d**-0.5  # (b a, s, s)
        probs = F.dropout(torch.softmax(scores, dim=-1), self.dropout, self.training)
        context = torch.bmm(probs, v)  # (b a, s, d)
        return context.transpose(0, 1).reshape(s, b, h)


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = heads
        self.query_key_value = nn.Linear(hidden, 3 * hidden)  # column-parallel
        self.core_attention = CoreAttention(heads, dropout)
        self.dense = nn.Linear(hidden, hidden)  # row-parallel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.query_key_value(x).chunk(3, dim=-1)  # (s, b, h/t) each
        return self.dense(self.core_attention(q, k, v, self.num_heads))


class MLP(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense_h_to_4h = nn.Linear(hidden, 4 * hidden)
        self.dense_4h_to_h = nn.Linear(4 * hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))


class Block(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.input_layernorm = nn.LayerNorm(hidden)
        self.self_attention = Attention(hidden, heads, dropout)
        self.post_attention_layernorm = nn.LayerNorm(hidden)
        self.mlp = MLP(hidden)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + F.dropout(self.self_attention(self.input_layernorm(x)), self.dropout, self.training)
        return x + F.dropout(self.mlp(self.post_attention_layernorm(x)), self.dropout, self.training)


class GPT(nn.Module):
    """Token ids (b, s) -> logits (s, b, vocab); with ``labels``, the mean cross entropy."""

    def __init__(self, vocab: int, hidden: int, heads: int, layers: int, seq: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(seq, hidden)
        self.layers = nn.ModuleList(Block(hidden, heads) for _ in range(layers))
        self.final_layernorm = nn.LayerNorm(hidden)
        self.output_layer = nn.Linear(hidden, vocab, bias=False)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)).transpose(0, 1)  # (s, b, h)
        for layer in self.layers:
            x = layer(x)
        logits = self.output_layer(self.final_layernorm(x))
        if labels is None:
            return logits
        return F.cross_entropy(logits.float().flatten(0, 1), labels.transpose(0, 1).flatten())
