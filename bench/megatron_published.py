"""A published Megatron-LM step against torchcost's estimate of it: the 1-trillion-parameter GPT of Narayanan et
al. 2021 ("Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", abstract and
Table 1): hidden 25600, 160 heads, 128 layers, vocabulary 51200, sequence 2048, batch 3072 on 3072 A100 80GB
GPUs with tensor parallel 8 and pipeline parallel 64 (data parallel 6), activations recomputed, at 502
petaFLOP/s in all. The paper counts FLOPs per iteration as 96 B s l h^2 (1 + s / 6h + V / 16lh) (its
equation 3, recomputation included), so its step took that / 502e15 seconds. Nothing was fitted to this run.

Run: .venv/bin/python bench/megatron_published.py
"""

from __future__ import annotations

import torch
import transformers

from torchcost.multi_gpu.estimate import Training, parallel
from torchcost.multi_gpu.layout import Layout

B, S, L, H, V, HEADS = 3072, 2048, 128, 25600, 51200, 160
PUBLISHED_FLOP_PER_S = 502e15


def published_step_s() -> float:
    flops = 96 * B * S * L * H**2 * (1 + S / (6 * H) + V / (16 * L * H))
    return flops / PUBLISHED_FLOP_PER_S


def main() -> None:
    config = transformers.GPT2Config(
        n_embd=H, n_head=HEADS, n_layer=L, vocab_size=V, n_positions=S, bos_token_id=None, eos_token_id=None
    )
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config)
    layout = Layout(dp=6, tp=8, pp=64, zero=0, microbatch=1, microbatches=B // 6, recompute="full")
    estimate = parallel(model, layout, "a100-80gb", Training(seq_len=S))
    published = published_step_s()
    step = estimate.step
    print(f"published step {published:.1f} s; torchcost {step.total_s:.1f} s ({step.total_s / published:.2f}x)")
    print(
        f"  compute {step.compute_s:.1f} s (recompute {step.recompute_s:.1f}), TP comm {step.tp_comm_s:.1f} s, "
        f"bubble {step.bubble_s:.1f} s, pipeline sends {step.pp_comm_s:.2f} s, DP exposed {step.dp_exposed_s:.2f} s"
    )
    print(
        f"  memory per GPU {(estimate.memory.total_bytes + estimate.context_bytes) / 1e9:.1f} GB, "
        f"MFU {estimate.mfu:.1%}"
    )


if __name__ == "__main__":
    main()
