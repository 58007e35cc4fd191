"""The README is tested: every command it prints with its output prints that output today, and every Python
line it shows with a result (``expr   # result``) evaluates to that result.

Checked: ```text blocks that start with ``$ torchcost ...`` (the whole output, at the width of a pipe), the
``# output`` line under a ``torchcost ... --brief`` command, the Markdown table printed after a
``torchcost compare ... --markdown -`` command, and the Python blocks, run in order in one namespace.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import re
import shlex
from pathlib import Path

import pytest
import torch

import torchcost
from torchcost.cli import main
from torchcost.hardware.calibration import Calibration, save_calibration

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)
NEEDS = {"timm:": "timm", "hf:": "transformers", "torchvision:": "torchvision"}


def blocks(language: str) -> list[tuple[int, str]]:
    """(offset in the README, text) of each fenced block in ``language``."""
    return [(m.end(), m.group(2)) for m in BLOCK.finditer(README) if m.group(1) == language]


def printed_commands() -> list[tuple[str, str]]:
    """(command, the output the README shows for it)."""
    cases = []
    for _, text in blocks("text"):
        first, _, rest = text.partition("\n")
        if first.startswith("$ torchcost "):
            cases.append((first[2:], rest))
    for end, text in blocks("sh"):
        lines = text.splitlines()
        for line, after in zip(lines, [*lines[1:], ""], strict=True):
            if line.startswith("torchcost ") and "--brief" in line and after.startswith("# "):
                cases.append((line, after[2:] + "\n"))
            if line.startswith("torchcost compare ") and "--markdown -" in line:
                cases.append((line, _next_table(end)))
    return cases


def _next_table(offset: int) -> str:
    """The first Markdown table after ``offset``."""
    found = re.search(r"(^\|.*\|\n)+", README[offset:], re.MULTILINE)
    assert found, "a --markdown - command with no table after it"
    return found.group(0)


def run_cli(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    args = shlex.split(command, comments=True)[1:]
    for prefix, package in NEEDS.items():
        if any(arg.startswith(prefix) for arg in args):
            pytest.importorskip(package)
    assert main(args) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_the_readme_shows_commands_and_python_results():
    assert len(printed_commands()) >= 4 and len(blocks("python")) >= 4  # the parsing below finds them


@pytest.mark.parametrize(("command", "expected"), [pytest.param(*case, id=case[0]) for case in printed_commands()])
def test_printed_command_output(command, expected, capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # the README shows the output of a pipe (REPORT_WIDTH)
    out = run_cli(command, capsys)
    if "--markdown -" in command:
        assert expected in out, f"the table after {command!r} differs from the output:\n{out}"
    else:
        assert _trimmed(out) == _trimmed(expected), f"{command!r} prints:\n{out}"


def _trimmed(text: str) -> str:
    """rich pads a table's title to the table's width; Markdown code blocks lose such spaces."""
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


RESULT = re.compile(r"^(?P<code>[^#].*?)\s+#\s*(?P<result>.+)$")


def literal_prefix(comment: str) -> tuple[bool, object]:
    """The longest start of ``comment`` that is a Python literal (the result; the rest is a note), if any."""
    for end in range(len(comment), 0, -1):
        with contextlib.suppress(ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return True, ast.literal_eval(comment[:end].strip())
    return False, None


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    """One namespace for the README's Python blocks, which build on each other; the made-up op of the
    register example exists, and this machine has a calibration for ``hardware("local")``."""
    library = torch.library.Library("mylib", "DEF")  # the op exists while this library object lives
    library.define("fused_gate(Tensor x) -> Tensor")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCHCOST_CACHE_DIR", str(cache))
        threads, version = torch.get_num_threads(), torch.__version__
        rates = {"conv_flops": 1e10, "depthwise_conv_flops": 1e9, "copy_bandwidth": 1e10, "add_bandwidth": 1e10}
        calibration = Calibration("cpu", "test cpu", threads, version, "today", {"fp32": 4e10}, **rates)
        save_calibration(calibration)
        yield {"__name__": "readme"}
    torchcost.unregister(torch.ops.mylib.fused_gate)
    del library


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_block(index, namespace, monkeypatch, tmp_path):
    _, text = blocks("python")[index]
    monkeypatch.chdir(tmp_path)  # the files the examples write (a sweep's CSV) land here
    # no result of a timing is compared: time for as short as torch.utils.benchmark allows
    monkeypatch.setattr(torchcost, "measure", functools.partial(torchcost.measure, min_time=0.01, max_time=0.05))
    if "timm:" in text:
        pytest.importorskip("timm")
    if "hf:" in text:
        pytest.importorskip("transformers")
    for node in ast.parse(text).body:
        source = ast.get_source_segment(text, node) or ""
        line = text.splitlines()[node.end_lineno - 1]
        match = RESULT.match(line) if node.lineno == node.end_lineno else None
        is_result, expected = literal_prefix(match["result"]) if match else (False, None)
        if is_result and isinstance(node, ast.Expr):
            assert eval(source, namespace) == expected, source
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(ast.Module([node], []), "README.md", "exec"), namespace)
