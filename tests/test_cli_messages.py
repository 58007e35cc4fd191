"""What the command line says when something is wrong, and around its reports: one clear line on stderr, a
non-zero exit and no traceback for every bad input; install hints with their extra; "wrote PATH" after files."""

import subprocess
import sys
import textwrap

import pytest
import torch

import torchcost
from torchcost.cli import main
from torchcost.hardware.calibration import Calibration, save_calibration

MODEL_PY = """
from pathlib import Path

from torch import nn

INPUT_SIZE = (1, 8)


def build():
    Path(__file__).with_name("built").touch()  # shows whether the model was built
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def broken():
    raise RuntimeError("boom in the user's constructor")


class KeywordOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, *, x):
        return self.fc(x)
"""


@pytest.fixture
def model_py(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL_PY)
    path.with_name("bad.py").write_text("def build(:\n    pass\n")
    return path


def run(args, capsys):
    """main(args): its exit code, stdout and stderr (argparse's errors exit through SystemExit)."""
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, expected, status=2):
    assert code == status  # 2: bad input; 1: the model's own code failed
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and "error:" in lines[0], err
    assert expected in lines[0]


def spec_cases(model_py):
    spec = f"{model_py}:build"
    return {
        "negative size": (["profile", spec, "--input-size", "1,3,-224,224"], "is not a list of positive sizes"),
        "empty size": (["profile", spec, "--input-size", ""], "input size '' is not a list of positive sizes"),
        "syntax error in the model file": (["profile", f"{model_py.with_name('bad.py')}:build"], "not valid Python"),
        "letter in a size": (["profile", spec, "--input-size", "1,x,32,32"], "input size '1,x,32,32' is not a list"),
        "input that does not fit": (["profile", spec, "--input-size", "1,5"], "check the input shapes"),
        "memory of an input that does not fit": (
            ["memory", spec, "--input-size", "1,5"],
            "check the input shapes",
        ),
        "negative batch": (["profile", spec, "--batch", "-3"], "'-3' is not a positive integer"),
        "unknown device": (["profile", spec, "--device", "tpu"], "unknown device 'tpu'; use meta, cpu or cuda"),
        "no such file": (["profile", str(model_py.with_name("does_not_exist.pt2"))], "no such file:"),
        "not a model type": (["profile", "hf:not_a_model_type"], "unknown transformers model type"),
        "unknown preset": (["llm", "llama3-8b"], "did you mean llama-3-8b"),
        "not a causal LM": (["llm", "hf:bert", "--no-sweep"], "hf:bert is not a causal LM"),
        "context too long": (["llm", "gpt2", "--prompt-len", "2000"], "takes at most 1,024 positions"),
        "roofline without a prediction": (["profile", spec, "--roofline", "r.png"], "--roofline needs a prediction"),
        "bad min-time": (["bench", spec, "--min-time", "0"], "'0' is not a positive number of seconds"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "negative size",
        "empty size",
        "letter in a size",
        "syntax error in the model file",
        "input that does not fit",
        "memory of an input that does not fit",
        "negative batch",
        "unknown device",
        "no such file",
        "not a model type",
        "unknown preset",
        "not a causal LM",
        "context too long",
        "roofline without a prediction",
        "bad min-time",
    ],
)
def test_bad_input_is_one_line(case, model_py, capsys):
    if case in ("not a model type", "not a causal LM", "context too long"):
        pytest.importorskip("transformers")
    args, expected = spec_cases(model_py)[case]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, expected)


def test_cuda_on_a_machine_without_it(model_py, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run(["profile", f"{model_py}:build", "--device", "cuda"], capsys)
    assert_one_line_error(code, err, "device 'cuda': no cuda device is available here; use meta or cpu")


@pytest.mark.parametrize("option", ["--json", "--csv", "--markdown", "--html"])
def test_an_unwritable_output_is_refused_before_the_model_runs(option, model_py, capsys):
    code, _, err = run(["profile", f"{model_py}:build", option, "/nonexistent/dir/report.out"], capsys)
    assert_one_line_error(code, err, f"{option} /nonexistent/dir/report.out: no such directory /nonexistent/dir")
    assert not model_py.with_name("built").exists()


@pytest.mark.parametrize(
    ("args", "hidden", "hint"),
    [
        (["profile", "timm:resnet18"], "timm", "pip install 'torchcost[timm]'"),
        (["profile", "torchvision:resnet18"], "torchvision", "pip install 'torchcost[torchvision]'"),
        (["profile", "hf:gpt2"], "transformers", "pip install 'torchcost[transformers]'"),
        (["llm", "gpt2"], "transformers", "pip install 'torchcost[transformers]'"),
        (["profile", "{spec}", "--html", "{tmp}/r.html"], "plotly", "pip install 'torchcost[html]'"),
        (["profile", "{spec}", "--hardware", "l4", "--roofline", "{tmp}/r.png"], "matplotlib", "'torchcost[plot]'"),
    ],
)
def test_install_hints_keep_their_extra(args, hidden, hint, model_py, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, hidden, None)  # as if it were not installed
    filled = [a.format(spec=f"{model_py}:build", tmp=model_py.parent) for a in args]
    code, _, err = run(filled, capsys)
    assert_one_line_error(code, err, hint)  # rich would read "[html]" as markup and drop it
    assert not model_py.with_name("built").exists()


def test_unexpected_errors_are_one_line_unless_debugging(model_py, capsys, monkeypatch):
    monkeypatch.delenv("TORCHCOST_DEBUG")
    code, _, err = run(["profile", f"{model_py}:broken"], capsys)
    assert_one_line_error(code, err, "RuntimeError: boom in the user's constructor (TORCHCOST_DEBUG=1 shows", 1)
    monkeypatch.setenv("TORCHCOST_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["profile", f"{model_py}:broken"])


def test_a_pickled_model_whose_class_is_in_the_current_directory(tmp_path, capsys, monkeypatch):
    (tmp_path / "pickled_net_module.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            class PickledNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 4)

                def forward(self, x):
                    return self.fc(x)
            """
        )
    )
    save = "import torch, pickled_net_module; torch.save(pickled_net_module.PickledNet(), 'whole.pt')"
    subprocess.run([sys.executable, "-c", save], cwd=tmp_path, check=True)
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    args = ["profile", str(tmp_path / "whole.pt"), "--trust-pickle", "--input-size", "1,8", "--brief"]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, "holds a model whose class cannot be imported here (No module named")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(args, capsys)
    assert code == 0 and "MACs 32 |" in out  # 8 x 4
    assert str(tmp_path) not in sys.path  # the current directory is on the path only while torchcost runs


def test_keyword_only_input_from_kwargs_json(model_py, capsys):
    args = ["profile", f"{model_py}:KeywordOnly", "--kwargs-json", '{"x": {"shape": [2, 8]}}', "--brief"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "MACs 64 |" in out  # 2 x 8 x 4


def test_bench_help_does_not_mention_weights(capsys):
    assert run(["bench", "--help"], capsys)[1].count("--weights") == 0
    assert "--weights" in run(["profile", "--help"], capsys)[1]


def test_wrote_lines_on_stderr_and_a_clean_stdout(model_py, tmp_path, capsys):
    out_path = tmp_path / "p.json"
    code, out, err = run(["profile", f"{model_py}:build", "--json", str(out_path), "--markdown", "-"], capsys)
    assert code == 0 and out.startswith("## torchcost: ")  # Markdown alone on stdout, from its first line
    assert err.splitlines() == [f"wrote {out_path}"]
    code, out, err = run(["profile", f"{model_py}:build"], capsys)
    assert out.startswith("torchcost: ") and err == ""


def test_hw_cpu_title_and_calibrated_local(tmp_path, capsys, monkeypatch):
    code, out, _ = run(["hw", "cpu"], capsys)
    assert code == 0 and "(cpu, cpu)" not in out and "(cpu)" in out.splitlines()[0]
    monkeypatch.setenv("TORCHCOST_CACHE_DIR", str(tmp_path))
    calibration = Calibration(
        "cpu", "test cpu", torch.get_num_threads(), torch.__version__, "today", {"fp32": 4e10}, copy_bandwidth=1e10
    )
    save_calibration(calibration)
    code, out, _ = run(["hw", "local"], capsys)
    assert "memory bandwidth (calibrated)" in out and "10.00 GB/s" in out
    assert "ridge point (fp32 matmul, calibrated)" in out and "4.0 FLOP/byte" in out  # 4e10 / 1e10


def test_piped_output_respects_columns(capsys, monkeypatch):
    pytest.importorskip("torchvision")
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(["profile", "torchvision:resnet50", "--depth", "3"], capsys)
    assert code == 0 and max(len(line) for line in out.splitlines()) == 80
    assert "layer1" in out and "aten.max_pool2d_with_indices" in out


def test_profiler_logs_stay_off_stderr(model_py, tmp_path):
    script = textwrap.dedent(
        """
        import torch, torchcost
        from torch import nn
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        x = torch.randn(1, 8)
        torchcost.measure_ops(torchcost.profile(model, x), model, x)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "USDT" not in result.stderr and "profiler_start" not in result.stderr


def test_no_warnings_from_compiled_or_exported_models(tmp_path):
    import warnings

    import torchcost

    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU())
    x = torch.randn(1, 8)
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model, (x,)), path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = torchcost.profile(torch.compile(model, backend="eager"), x)
        exported = torchcost.profile_spec(str(path))
    assert compiled.macs == exported.macs == 128  # 8 x 16
    assert [str(w.message) for w in caught] == []


def test_no_third_party_log_lines_reach_the_output():
    """torchao (which transformers imports) made torch log two register_constant deprecations at every hf: run."""
    pytest.importorskip("transformers")
    done = subprocess.run(
        [sys.executable, "-m", "torchcost", "profile", "hf:gpt2", "--seq-len", "8", "--brief"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stderr == ""
    assert done.stdout.startswith("hf:gpt2: params 124.44 M")


def test_version_and_each_command_s_description(capsys):
    code, out, _ = run(["--version"], capsys)
    assert (code, out.strip()) == (0, f"torchcost {torchcost.__version__}")
    code, out, _ = run(["guidelines", "--help"], capsys)
    assert code == 0 and "the four ShuffleNet V2 experiments on this machine" in out
