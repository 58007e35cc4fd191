"""Wall time of a multi-GPU layout search: the 1-trillion-parameter GPT of Narayanan et al. 2021 (Table 1: hidden
25600, 160 heads, 128 layers, vocabulary 51200, sequence 2048) on 3072 GPUs, 3072 sequences per step, built on
meta as transformers' GPT-2 (the architecture Megatron-LM's GPT follows: pre-LayerNorm, GeLU, learned positions).

Run: .venv/bin/python bench/parallel_search_time.py [--gpus 3072] [--hardware a100-80gb]
Target (issue 25): under 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import transformers

from torchcost.hardware import hardware
from torchcost.multi_gpu.estimate import Training
from torchcost.multi_gpu.search import search


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpus", type=int, default=3072)
    parser.add_argument("--global-batch", type=int, default=3072)
    parser.add_argument("--hardware", default="a100-80gb")
    args = parser.parse_args()
    config = transformers.GPT2Config(
        n_embd=25600, n_head=160, n_layer=128, vocab_size=51200, n_positions=2048, bos_token_id=None, eos_token_id=None
    )
    start = time.perf_counter()
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config)
    built = time.perf_counter()
    result = search(model, args.gpus, args.global_batch, hardware(args.hardware), Training(seq_len=2048), top=5)
    done = time.perf_counter()
    params = sum(p.numel() for p in model.parameters())
    print(f"{params / 1e12:.3f} T parameters; {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    print(
        f"build {built - start:.1f} s, search {done - built:.1f} s over {result.tried} layouts "
        f"({result.too_big} too big, {sum(result.cannot_run.values())} cannot run)"
    )
    for estimate in result.ranked:
        print(
            f"  {estimate.layout.describe():60s} step {estimate.step.total_s:7.2f} s  MFU {estimate.mfu:.1%}  "
            f"memory {estimate.device_bytes / 1e9:5.1f} GB"
        )


if __name__ == "__main__":
    main()
