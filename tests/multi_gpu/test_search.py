import json

import pytest
import torch

from torchcost.cli import main
from torchcost.hardware import hardware
from torchcost.multi_gpu.estimate import Training
from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.search import candidates, search

transformers = pytest.importorskip("transformers")


def test_candidates_of_8_gpus():
    found = list(candidates(gpus=8, layers=4, global_batch=16, node_gpus=8, base=Layout(zero=1)))
    # (tp, pp): (1,1) (1,2) (1,4) (2,1) (2,2) (2,4) (4,1) (4,2) (8,1): pp divides both 8/tp and the 4 layers.
    # Microbatch sizes 1, 2, 4 where dp x size divides 16: all three but for dp 8 (size 4: 32 does not divide 16).
    # 8 * 3 + 2 = 26 layouts. Interleaved (vpp 2, 4 where pp x vpp divides the 4 layers and pp the microbatches):
    # only pp 2 with vpp 2, at (tp, dp) (1, 4) for sizes 1, 2 (4 and 2 microbatches; size 4 leaves 1), (2, 2) and
    # (4, 1) for all three sizes: 8 more. 34 layouts, each with and without full recomputation
    assert len(found) == 68
    assert sum(layout.vpp == 2 for layout in found) == 16 and all(layout.vpp in (1, 2) for layout in found)
    assert all(layout.gpus == 8 and layout.global_batch == 16 and layout.zero == 1 for layout in found)
    assert all(layout.sp == (layout.tp > 1) for layout in found)


def test_search_ranks_what_fits_fastest_first():
    config = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=96, num_attention_heads=8, num_key_value_heads=4, num_hidden_layers=4
    )
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    result = search(model, 8, 16, hardware("h100-sxm"), Training(seq_len=32), top=5)
    steps = [estimate.step.total_s for estimate in result.ranked]
    assert len(steps) == 5 and steps == sorted(steps)
    assert all(estimate.fits for estimate in result.ranked)
    # tp 8 would split the 4 key-value heads in halves: those 6 layouts cannot run, and say why
    assert result.cannot_run == {
        "tp 8 does not divide the 4 heads of LlamaForCausalLM (config num_key_value_heads); give a tp that divides 4": 6
    }


def test_cli_one_layout_as_json(capsys):
    args = ["train", "gpt2", "--gpus", "8", "--tp", "2", "--sp", "--global-batch", "16", "--seq-len", "128"]
    assert main([*args, "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layout"]["dp"] == 4  # 8 GPUs / tp 2
    assert data["layout"]["microbatches"] == 4  # 16 sequences / (dp 4 x microbatch 1)
    assert data["memory"]["total_bytes"] > data["memory"]["activation_bytes"] > 0
    assert {c["name"] for c in data["step"]["collectives"]} >= {"tensor-parallel all-gather", "weight all-gather"}


def test_cli_prints_memory_and_step(capsys):
    assert main(["train", "gpt2", "--tp", "2", "--seq-len", "128", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Training GPT2LMHeadModel on 2 x NVIDIA H100 SXM5 80GB: dp 1, tp 2, pp 1, zero 1" in printed
    assert "optimizer state" in printed and "tensor-parallel collectives" in printed and "MFU" in printed


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gpus", "2", "--ep", "2"], "GPT2LMHeadModel has no experts to split"),
        (["--ep", "2"], "ep 2 must divide dp 1: expert parallelism splits the data-parallel ranks"),
        (["--gpus", "6", "--tp", "4"], "--gpus 6 is not a multiple of --tp x --pp x --cp = 4"),
        (["--cp", "3"], "a sequence of 64 does not split into 2 x cp = 6 equal chunks"),
        (["--search", "--gpus", "8"], "--search needs --gpus and --global-batch"),
        (["--pp", "5"], "the model's 12 layers do not split into pp x vpp = 5 equal stages"),
    ],
)
def test_cli_refuses_in_one_line(capsys, flags, message):
    assert main(["train", "gpt2", "--seq-len", "64", *flags]) == 2
    assert message in capsys.readouterr().err
