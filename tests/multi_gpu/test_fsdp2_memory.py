"""Memory per rank under FSDP against PyTorch's own FSDPMemTracker on a fake process group (fsdp2_peak.py):
small Llamas in fp32 with AdamW, the tracker's peak of a steady step. Target (issue 25): within 5%.

The first two cases shaped the moments rank_memory.py takes the peak over (the last layer's backward, with the
root's weights and two layers gathered); the last two were run once after that, as they were kept apart."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchcost.multi_gpu.estimate import Training, parallel
from torchcost.multi_gpu.layout import Layout

transformers = pytest.importorskip("transformers")
ROOT = Path(__file__).parents[2]
TORCH = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])


@pytest.mark.parametrize(
    "case",
    [
        (256, 512, 4, 1024, 8, 2, 128),  # hidden, ffn, layers, vocab, ranks, microbatch, sequence (shaped the model)
        (384, 1024, 6, 4096, 4, 1, 256),  # (shaped the model)
        (512, 1536, 8, 8192, 8, 2, 128),  # held out: -4.0% when first run
        (256, 768, 3, 32000, 2, 4, 64),  # held out, the vocabulary outweighing the layers: +0.1%
    ],
)
def test_peak_per_rank_within_five_percent_of_fsdp2(case):
    if not torch.distributed.is_available():
        pytest.skip("this torch has no torch.distributed")
    if TORCH < (2, 14):  # on 2.11, the first case peaks in the optimizer: 38,959,644 bytes of "OptState" for
        # 2,885,888 bytes of moments
        pytest.skip("before torch 2.14, FSDPMemTracker finds the step's peak in the optimizer's state")
    command = [sys.executable, "-m", "tests.multi_gpu.fsdp2_peak", *map(str, case)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    measured = json.loads(run.stdout.strip().splitlines()[-1])["Total"]
    hidden, ffn, layers, vocab, ranks, microbatch, seq = case
    config = transformers.LlamaConfig(
        hidden_size=hidden, intermediate_size=ffn, num_attention_heads=8, num_key_value_heads=4,
        num_hidden_layers=layers, vocab_size=vocab, tie_word_embeddings=False,
    )  # fmt: skip
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    layout = Layout(dp=ranks, zero=3, microbatch=microbatch)
    estimate = parallel(model, layout, training=Training(seq_len=seq, dtype=torch.float32))
    assert estimate.memory.total_bytes == pytest.approx(measured, rel=0.05)
