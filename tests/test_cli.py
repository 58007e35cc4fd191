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


def test_bench_json(capsys):
    args = ["bench", "torchvision:squeezenet1_0", "--input-size", "1,3,64,64", "--batch", "1,2", "--min-time", "0.05"]
    assert main([*args, "--threads", "1", "--quiet", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [b["batch"] for b in data["by_batch"]] == [1, 2]
    assert data["threads"] == 1 and data["device"] == "cpu" and data["median_s"] > 0


def test_profile_with_latency_has_measured_fields(capsys):
    args = ["profile", "torchvision:squeezenet1_0", "--input-size", "1,3,64,64", "--latency", "--min-time", "0.05"]
    assert main([*args, "--quiet", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"median_s", "p90_s", "p99_s", "iqr_s", "cv", "runs", "threads", "device"} <= data["latency"].keys()
    assert data["modules"][0]["measured_s"] > 0
    assert all(op["measured_s"] is not None for op in data["operators"])


def test_hw_list_one_and_unknown(capsys):
    assert main(["hw"]) == 0
    assert "h100-sxm" in capsys.readouterr().out
    assert main(["hw", "l4", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["bandwidth_bytes_per_s"] == 300e9
    assert main(["hw", "h1000"]) == 2
    assert "closest" in capsys.readouterr().err


def test_calibrate_quick(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHCOST_CACHE_DIR", str(tmp_path))
    assert main(["calibrate", "--quick", "--force", "--quiet", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["matmul_flops"]["fp32"] > 0 and data["cache"].startswith(str(tmp_path))


def test_profile_with_hardware_predicts_explains_and_plots(capsys, tmp_path):
    chart = tmp_path / "roofline.png"
    args = ["profile", "torchvision:mobilenet_v3_small", "--hardware", "l4", "--roofline", str(chart), "--json", "-"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prediction"]["latency_s"] > 0 and data["prediction"]["hardware"] == "NVIDIA L4 24GB"
    assert any(f["kind"] == "memory_bound" for f in data["findings"])
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_guidelines_quick(capsys):
    assert main(["guidelines", "--quick", "--hardware", "x86-avx2-8c", "--quiet", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["key"] for e in data["experiments"]] == ["G1", "G2", "G3", "G4"]


def test_llm_json(capsys):
    args = ["llm", "gpt2", "--prompt-len", "32", "--gen-len", "4", "--hardware", "l4", "--no-sweep", "--json", "-"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert {
        "prefill",
        "decode",
        "kv_cache_bytes_per_token",
        "kv_cache_bytes",
        "weights_bytes",
        "memory_bytes",
        "tokens_per_s",
        "hardware",
    } <= data.keys()
    assert {"tokens", "macs", "flops", "bytes", "time_s", "bound"} <= data["prefill"].keys()
    assert {"context", "macs", "flops", "bytes", "time_per_token_s", "bound"} <= data["decode"][0].keys()
    assert data["kv_cache_bytes_per_token"] == 2 * 12 * 768 * 2  # GPT-2: keys and values, 12 layers, 768 wide, bf16


TINY_PY = """
from torch import nn

INPUT_SIZE = (1, 8)


def build():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def wide():
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 4))
"""


@pytest.fixture
def tiny_py(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(TINY_PY)
    return path


def test_brief_is_one_line(tiny_py, capsys):
    assert main(["profile", f"{tiny_py}:build", "--brief"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "params 212 | " in out and "MACs 192 |" in out  # 8*16 + 16*4 MACs


def test_every_export_at_once(tiny_py, tmp_path, capsys):
    paths = {kind: tmp_path / f"report.{kind}" for kind in ("json", "csv", "md", "html")}
    args = ["profile", f"{tiny_py}:build", "--by", "op", "--sort", "memory", "--batch", "4"]
    args += ["--json", str(paths["json"]), "--csv", str(paths["csv"]), "--markdown", str(paths["md"])]
    assert main([*args, "--html", str(paths["html"])]) == 0
    assert "per operator, by memory" in capsys.readouterr().out
    assert json.loads(paths["json"].read_text())["inputs"][0]["shape"] == [4, 8]
    assert paths["csv"].read_text().startswith("op,calls,macs,flops")
    assert "### Per operator (by memory)" in paths["md"].read_text()
    assert paths["html"].read_text().count("class='module-row'") == 4


def test_markdown_to_stdout_only(tiny_py, capsys):
    assert main(["profile", f"{tiny_py}:build", "--markdown", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## torchcost: ") and "### Per module" in out and "┃" not in out  # no table mixed in


def test_compare_side_by_side(tiny_py, tmp_path, capsys):
    markdown, html = tmp_path / "compare.md", tmp_path / "compare.html"
    specs = [f"{tiny_py}:build", f"{tiny_py}:wide"]
    assert main(["compare", *specs, "--markdown", str(markdown), "--html", str(html)]) == 0
    assert "torchcost compare" in capsys.readouterr().out
    table = markdown.read_text()
    assert "| MACs | 192 | 768 |" in table  # 8*16 + 16*4 and 8*64 + 64*4
    assert all(spec in html.read_text() for spec in specs)


def test_trust_pickle_warns(tiny_py, tmp_path, capsys):
    import torch

    from torchcost.sources import load_model

    path = tmp_path / "whole.pt"
    torch.save(load_model(f"{tiny_py}:build").model, path)
    assert main(["profile", str(path), "--input-size", "1,8", "--brief"]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert main(["profile", str(path), "--input-size", "1,8", "--brief", "--trust-pickle"]) == 0
    assert "unpickling a file runs any code in it" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seq-len", "16"], "--seq-len applies to token models"),
        (["--kwargs-json", "{oops"], "--kwargs-json is not valid JSON"),
        (["--sort", "time"], "--sort time needs measured times"),
    ],
)
def test_bad_options_name_the_fix(tiny_py, capsys, extra, message):
    assert main(["profile", f"{tiny_py}:build", *extra]) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_hf_token_model_with_seq_len(capsys):
    pytest.importorskip("transformers")
    assert main(["profile", "hf:gpt2", "--seq-len", "16", "--batch", "2", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    ids = {"shape": [2, 16], "dtype": "int64"}
    assert data["inputs"] == [{**ids, "name": "input_ids"}, {**ids, "name": "attention_mask"}]
    assert data["device"] == "meta"


def test_compare_with_hardware_explains_the_difference(capsys):
    args = ["compare", "torchvision:resnet18", "torchvision:mobilenet_v3_small", "--hardware", "l4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "predicted latency" in out and "why:" in out
    assert "torchvision:mobilenet_v3_small has 0.03x the FLOPs of torchvision:resnet18" in out
