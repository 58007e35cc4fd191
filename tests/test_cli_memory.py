"""torchcost memory and profile --optimizer on the command line: JSON, tables, HTML, one-line errors."""

import json

import pytest

from torchcost.cli import main

pytest.importorskip("torchvision")

FROZEN = """
import torch
from torch import nn

INPUT_SIZE = (2, 8)


def frozen():
    return nn.Linear(8, 4).requires_grad_(False)
"""


def test_memory_json_is_the_memory_profile(capsys):
    args = ["memory", "torchvision:resnet18", "--input-size", "2,3,64,64", "--optimizer", "adamw", "--json", "-"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "torchvision:resnet18" and data["train"] and data["optimizer"] == "adamw"
    assert data["peak_bytes"] == sum(data["breakdown"].values())
    assert data["breakdown"]["parameters"] == 46_758_048  # 11,689,512 fp32 parameters
    assert data["breakdown"]["optimizer_state"] == 2 * 46_758_048 + 4 * 62  # and a step count per tensor (62)
    assert data["device"] == "meta" and data["target"] == "cpu"
    assert {point["phase"] for point in data["timeline"]} == {"start", "forward", "backward", "optimizer"}


def test_memory_table_fit_and_max_batch(capsys, tmp_path):
    page = tmp_path / "memory.html"
    args = ["memory", "torchvision:resnet18", "--input-size", "1,3,64,64", "--hardware", "l4", "--max-batch"]
    assert main([*args, "--train", "--html", str(page)]) == 0
    out = capsys.readouterr().out
    for text in ("alive at the peak", "activations saved for backward", "peak after", "fits in NVIDIA L4 24GB"):
        assert text in out
    assert "largest batch: " in out and "against NVIDIA L4 24GB's 24.00 GB" in out and "no optimizer step" in out
    assert "chart-memory" in page.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--optimizer", "lamb"], "unknown optimizer 'lamb'; use one of sgd, sgd-momentum, adam, adamw"),
        (["--max-batch"], "--max-batch needs a device with known memory: add --hardware NAME"),
        (["--checkpoint", "layer*"], "checkpoint= applies to a training step"),
        (["--train", "--checkpoint", "blocks.*"], "no module path matches checkpoint pattern 'blocks.*'"),
        (["--amp", "int4"], "unknown autocast dtype 'int4'"),
    ],
)
def test_memory_bad_input_is_one_line(capsys, args, message):
    assert main(["memory", "torchvision:resnet18", "--input-size", "1,3,32,32", *args]) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines on narrow terminals
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_a_model_that_does_not_train(capsys, tmp_path):
    source = tmp_path / "frozen.py"
    source.write_text(FROZEN)
    assert main(["memory", f"{source}:frozen", "--train"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Linear has no trainable parameters (none requires grad)" in err


def test_profile_optimizer_adds_the_training_step(capsys):
    args = ["profile", "torchvision:resnet18", "--input-size", "2,3,64,64", "--optimizer", "sgd", "--hardware", "l4"]
    assert main([*args, "--json", "-"]) == 0
    training = json.loads(capsys.readouterr().out)["training"]
    assert training["optimizer_flops"] == 11_689_512  # SGD: one add per parameter
    assert training["step_source"] == "predicted on NVIDIA L4 24GB" and 0 < training["mfu"] < 1
    assert main([*args, "--brief"]) == 0
    assert "training step (sgd, steady state)" in capsys.readouterr().out
