"""``torchcost sweep``: an interrupted sweep resumed, reports, exit statuses."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from torchcost import cli
from torchcost.cli import main
from torchcost.sweep import Row, SweepResult
from torchcost.sweep.output import read_rows

pytest.importorskip("torchvision")

SPECS = [f"torchvision:{name}" for name in ("squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5", "mnasnet0_5")]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def data_lines(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def test_resume_after_an_interrupted_sweep(tmp_path, space_file, capsys):
    out = tmp_path / "rows.csv"
    specs = [*SPECS, f"{space_file}:widths"]  # 8 rows, one of them failing
    command = [sys.executable, "-m", "torchcost.cli", "sweep", *specs, "--out", str(out), "--workers", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    env["TORCHCOST_TEST_WAIT"] = "1"  # w16 sleeps: the sweep is still running when it is interrupted
    run = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while data_lines(out) < 6 and run.poll() is None and time.monotonic() < deadline:  # then w16 sleeps
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the sweep and its workers
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "interrupted; the finished rows are in" in err and "add --resume" in err
    finished, _ = read_rows(out)
    assert 6 <= len(finished) < 8

    html = tmp_path / "sweep.html"
    args = ["sweep", *specs, "--out", str(out), "--resume", "--quiet", "--markdown", "-", "--html", str(html)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"{8 - len(finished)} done (1 failed), {len(finished)} skipped\n" in captured.err
    assert f"wrote {out}\nwrote {html}\n" in captured.err  # every file written is announced, the same way
    rows, _ = read_rows(out)
    assert sorted(row.spec for row in rows) == sorted(
        [*SPECS, *(f"{space_file}:widths/{w}" for w in ("w4", "w8", "w16", "wrong_channels"))]
    )
    assert rows[: len(finished)] == finished  # kept as they were
    markdown = captured.out
    assert markdown.startswith("## torchcost sweep\n\n8 rows: 7 counted, 1 failed; the top 7 by macs:")
    assert "| torchvision:squeezenet1_1 | squeezenet | 1x3x224x224 float32 | 1.24 M | 349.15 M |" in markdown
    assert "- 1 x InputMismatchError: RuntimeError: Given groups=N, weight of size [N, N, N, N]" in markdown
    page = html.read_text()
    assert "Plotly.newPlot" in page and page.count("<tr class='sweep-row'>") == 7


@pytest.mark.parametrize(("failed", "status"), [(2, 1), (1, 0)])
def test_exit_status_is_1_only_when_every_model_failed(monkeypatch, capsys, failed, status):
    rows = [Row("a:x", error="failed" if failed == 2 else ""), Row("a:y", error="failed")]
    monkeypatch.setattr(cli, "sweep", lambda *args, **kwargs: SweepResult(rows, [], 2, failed, 0, 1.0))
    assert main(["sweep", "a:x", "a:y", "--quiet"]) == status
    assert f"2 done ({failed} failed), 0 skipped" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["torchvision:resnt*"], "matches no torchvision model"),
        (["torchvision:resnet18", "--out", "rows.xlsx"], "use one of .csv, .jsonl, .parquet"),
        (["torchvision:resnet18", "--hardware", "h1000"], "unknown hardware 'h1000'"),
        (["torchvision:resnet18", "--dtype", "float33"], "unknown dtype 'float33'"),
        (["--ray", "torchvision:resnet18", "hf:gpt2"], "put --ray after the specs"),
        (["torchvision:resnet18", "--resume"], "--resume needs --out"),
    ],
)
def test_a_sweep_that_cannot_run_exits_2(args, message, capsys):
    assert main(["sweep", *args]) == 2
    assert message in " ".join(capsys.readouterr().err.split())  # as one line, however the console wraps it
