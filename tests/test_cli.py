import json
import subprocess
import sys

import pytest

from torchcost.cli import main

pytest.importorskip("torchvision")

REQUIRED_KEYS = {
    "model",
    "inputs",
    "params",
    "size_bytes",
    "macs",
    "flops",
    "memory_access_bytes",
    "modules",
    "operators",
    "uncounted",
}


def test_json_to_stdout_is_exactly_the_profile(capsys):
    assert main(["profile", "torchvision:resnet18", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data.keys() >= REQUIRED_KEYS
    assert data["model"] == "torchvision:resnet18"
    assert data["inputs"] == [{"shape": [1, 3, 224, 224], "dtype": "float32"}]
    assert data["params"]["total"] == 11_689_512  # torchvision's published num_params
    assert round(data["macs"] / 1e9, 3) == 1.814  # and _ops
    assert data["uncounted"] == []
    assert {"op", "count", "macs", "flops", "memory_access_bytes"} <= data["operators"][0].keys()


def test_table_and_json_file(tmp_path, capsys):
    out = tmp_path / "p.json"
    args = [
        "profile",
        "torchvision:mobilenet_v3_small",
        "--input-size",
        "2,3,128,128",
        "--depth",
        "1",
        "--json",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "per module (depth 1)" in printed and "features" in printed and "uncounted ops: none" in printed
    assert json.loads(out.read_text())["inputs"][0]["shape"] == [2, 3, 128, 128]


def test_unknown_model_lists_closest_names(capsys):
    assert main(["profile", "torchvision:resnet5"]) == 2
    err = capsys.readouterr().err
    assert "unknown torchvision model 'resnet5'" in err and "resnet50" in err


def test_wrong_input_names_module_and_shapes(capsys):
    assert main(["profile", "torchvision:resnet18", "--input-size", "1,4,64,64", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "module 'conv1' (Conv2d) with input shapes [1, 4, 64, 64]" in err


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "torchcost", "profile", "torchvision:squeezenet1_0", "--json", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout)["params"]["total"] == 1_248_424
