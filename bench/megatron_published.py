"""Published Megatron-LM training steps on A100s against torchcost's estimates of them. Nothing was fitted to these
runs: the A100's matrix-product share comes from a single-GPU matmul benchmark (``predict/gpu.py``, ``GA100``).

The cases:
- Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models"), Table 5: four GPTs
  (22B, 175B, 530B, 1T) on 8 to 512 A100 80GB GPUs, each with full recomputation and with sequence parallelism
  plus selective recomputation, timed per iteration. Their layouts (Table 3: tensor parallel 8, the pipeline
  sizes and batches; microbatch 1, 4 for 22B; interleaving 3 for 175B and 530B) are as Calculon's validation
  files give them (github.com/calculon-ai/calculon, ``validation/*.json``).
- Narayanan et al. 2021 ("Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM"),
  Table 1's 1T row: 3072 GPUs, tensor parallel 8, pipeline 64, data parallel 6, batch 3072, at 502 petaFLOP/s.
  The paper counts 96 B s l h^2 (1 + s / 6h + V / 16lh) FLOPs per iteration (its equation 3), so the step took
  that / 502e15 seconds.

Every model is the GPT block as Megatron-LM writes it (``tests/multi_gpu/megatron_gpt.py``: fp16, attention
computed unfused with the s x s scores, dropout), vocabulary 51200, sequence 2048, built on meta.

Run: .venv/bin/python bench/megatron_published.py
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.multi_gpu.megatron_gpt import GPT

from torchcost.multi_gpu.estimate import Training, parallel
from torchcost.multi_gpu.layout import Layout

VOCAB, SEQ = 51200, 2048


@dataclass(frozen=True)
class Run:
    name: str
    hidden: int
    heads: int
    layers: int
    pp: int
    dp: int
    batch: int
    microbatch: int
    vpp: int
    recompute: str  # "full", or "selective" with sequence parallelism
    published_s: float
    source: str


KORTHIKANTI = "Korthikanti 2022, Table 5"
RUNS = [
    Run("22B", 6144, 64, 48, 1, 1, 4, 4, 1, "full", 1.42, KORTHIKANTI),
    Run("22B", 6144, 64, 48, 1, 1, 4, 4, 1, "selective", 1.10, KORTHIKANTI),
    Run("175B", 12288, 96, 96, 8, 1, 64, 1, 3, "full", 18.13, KORTHIKANTI),
    Run("175B", 12288, 96, 96, 8, 1, 64, 1, 3, "selective", 13.75, KORTHIKANTI),
    Run("530B", 20480, 128, 105, 35, 1, 280, 1, 3, "full", 49.05, KORTHIKANTI),
    Run("530B", 20480, 128, 105, 35, 1, 280, 1, 3, "selective", 37.83, KORTHIKANTI),
    Run("1T", 25600, 160, 128, 64, 1, 512, 1, 1, "full", 94.42, KORTHIKANTI),
    Run("1T", 25600, 160, 128, 64, 1, 512, 1, 1, "selective", 71.49, KORTHIKANTI),
]


def narayanan_1t() -> Run:
    b, s, layers, h, v = 3072, SEQ, 128, 25600, VOCAB
    flops = 96 * b * s * layers * h**2 * (1 + s / (6 * h) + v / (16 * layers * h))
    return Run("1T", h, 160, layers, 64, 6, b, 1, 1, "full", flops / 502e15, "Narayanan 2021, Table 1")


def main() -> None:
    print("run | layout | published s | torchcost s | ratio | kernels (recompute) | TP comm | bubble")
    errors = []
    for run in [*RUNS, narayanan_1t()]:
        with torch.device("meta"):
            model = GPT(VOCAB, run.hidden, run.heads, run.layers, SEQ)
        selective = run.recompute == "selective"
        microbatches = run.batch // (run.dp * run.microbatch)
        layout = Layout(
            dp=run.dp, tp=8, pp=run.pp, sp=selective, microbatch=run.microbatch, microbatches=microbatches,
            vpp=run.vpp, recompute=run.recompute,
        )  # fmt: skip
        step = parallel(model, layout, "a100-80gb", Training(seq_len=SEQ, dtype=torch.float16)).step
        ratio = step.total_s / run.published_s
        errors.append(abs(ratio - 1))
        shape = f"tp 8 pp {run.pp}" + (f" vpp {run.vpp}" if run.vpp > 1 else "") + f" dp {run.dp}"
        mode = "sp + selective" if selective else "full recompute"
        print(
            f"{run.name} {mode} ({run.source}) | {shape}, batch {run.batch} | {run.published_s:.2f} | "
            f"{step.total_s:.2f} | {ratio:.3f} | {step.compute_s:.2f} ({step.recompute_s:.2f}) | "
            f"{step.tp_comm_s:.2f} | {step.bubble_s:.2f}",
            flush=True,
        )
    print(f"mean |error| {sum(errors) / len(errors):.1%}, max {max(errors):.1%} over {len(errors)} runs")


if __name__ == "__main__":
    main()
