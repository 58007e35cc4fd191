"""torchcost against the other counting tools: accuracy against references, and time against one forward pass.

Every tool runs on every case of bench/cases.py (torchvision zoo, transformers, hand-made models). For each
(case, tool) the result holds the tool's params and MACs and its time as a ratio to one plain forward pass of
the same model (eval mode, ``torch.no_grad()``), both medians over the same number of repeats, measured in
the same process one after the other.

Tools run in worker subprocesses (a crash or a hang costs one (case, tool) pair, not the run); each pair has a
timeout. Results are merged into bench/results/peers.json, so the sweep can run in pieces:

    .venv/bin/python bench/peers.py run --suite handmade transformers
    .venv/bin/python bench/peers.py run --suite torchvision --tools thop fvcore
    .venv/bin/python bench/report.py            # regenerate docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "peers.json"
SUITES = ("handmade", "transformers", "torchvision")
BUILD_TIMEOUT_S = 900.0  # building a model and timing its forward passes (vit_h_14 at 518x518 is 1 TMAC)
# One thread: on a shared 2-core machine a second OpenMP thread that is descheduled stalls every parallel
# region (a 0.05 ms forward then takes 30 ms), which would make the ratios noise.
THREADS = 1
RESTART = 3  # a worker's exit status asking for a fresh worker for the rest of the plan
TOOL_TIMEOUT_S = 180.0  # per (case, tool), at least; more for models with slow forward passes


def repeats_for(forward_s: float) -> int:
    """Median over 5 runs for models under 20 ms, 3 under 100 ms, else 1 (keeps the zoo sweep feasible on
    2 cores; the big models' single runs are long enough to time)."""
    return 5 if forward_s < 0.02 else 3 if forward_s < 0.1 else 1


# ------------------------------------------------------------------------------------------------- worker


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def median_time(fn: Any, repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def prepare_case(case: Any) -> tuple[Any, Any, Any, float, int]:
    """The model in eval mode, its inputs, and the median time of its plain forward pass."""
    import torch

    model, args, kwargs = case.build()
    model.eval()

    def forward() -> Any:
        with torch.no_grad():
            return model(*args, **kwargs)

    forward()  # warm-up: one-time allocations and kernel selection
    first, _ = median_time(forward, 1)
    repeats = repeats_for(first)
    forward_s, _ = median_time(forward, repeats)
    return model, args, kwargs, forward_s, repeats


def work(plan: list[tuple[str, list[str]]]) -> None:
    """Run each case's tools in turn and print one JSON line per event."""
    import cases as case_lib
    import tools as tool_lib
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(THREADS)
    torch.set_flush_denormal(True)  # random weights make denormals, which slow some kernels by 10x and more
    known = case_lib.all_cases()
    for case_name, tool_names in plan:
        case = known[case_name]
        try:
            model, args, kwargs, forward_s, repeats = prepare_case(case)
        except Exception as exc:
            for tool_name in tool_names:
                emit({"event": "done", "case": case_name, "tool": tool_name, "error": f"model: {describe(exc)}"})
            continue
        emit({"event": "built", "case": case_name, "forward_s": forward_s, "repeats": repeats})
        for tool_name in tool_names:
            emit({"event": "start", "case": case_name, "tool": tool_name})
            tool = tool_lib.TOOLS[tool_name]
            result: dict[str, Any] = {"event": "done", "case": case_name, "tool": tool_name}
            try:
                times = []
                for _ in range(repeats):
                    copy = tool_lib.fresh(model)
                    start = time.perf_counter()
                    count = tool(copy, args, kwargs)
                    times.append(time.perf_counter() - start)
                    del copy
                result.update(params=count.params, macs=count.macs, flagged=count.flagged, device=count.device)
                result.update(seconds=statistics.median(times), forward_s=forward_s, repeats=repeats)
            except Exception as exc:
                result["error"] = describe(exc)
                result["trace"] = traceback.format_exc(limit=-3)[-600:]
            emit(result)
            if "error" in result:  # a failed tool may leave patched functions behind: start a clean process
                sys.exit(RESTART)


# ------------------------------------------------------------------------------------------------- parent


class Worker:
    """A worker subprocess and the lines it prints, read by a thread so that waits can time out."""

    def __init__(self, plan: list[tuple[str, list[str]]]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "worker", json.dumps(plan)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=HERE,
            env=env,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.put(line)
        self.lines.put(None)

    def next_event(self, timeout: float) -> dict[str, Any] | None:
        """The next event; None when the worker exited; raises queue.Empty on timeout."""
        line = self.lines.get(timeout=timeout)
        return None if line is None else json.loads(line)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def run_plan(plan: list[tuple[str, list[str]]], save: Any) -> None:
    """Run the plan, restarting the worker past any (case, tool) that crashed or timed out."""
    todo = [(case, list(tool_names)) for case, tool_names in plan]
    while todo:
        worker = Worker(todo)
        case, pending = todo[0][0], None
        timeout = BUILD_TIMEOUT_S
        try:
            while True:
                event = worker.next_event(timeout)
                if event is None:
                    break
                if event["event"] == "built":
                    case = event["case"]
                    timeout = max(TOOL_TIMEOUT_S, 30 * event["forward_s"] * event["repeats"])
                    print(f"  {case}: forward {event['forward_s'] * 1e3:.1f} ms x {event['repeats']}", flush=True)
                elif event["event"] == "start":
                    pending = event["tool"]
                elif event["event"] == "done":
                    save(event)
                    _drop(todo, event["case"], event["tool"])
                    pending = None
                    _log(event)
            failure = "crashed"
        except queue.Empty:
            failure = f"timed out after {timeout:.0f} s"
        worker.kill()
        if not todo:
            break
        if pending is None and worker.process.returncode == RESTART:
            continue
        # the worker stopped in the middle of (case, pending), or while building case
        failed_tools = [pending] if pending is not None else list(dict(todo)[case])
        for tool in failed_tools:
            event = {
                "event": "done",
                "case": case,
                "tool": tool,
                "error": f"{failure} ({'tool' if pending else 'build'})",
            }
            save(event)
            _drop(todo, case, tool)
            _log(event)


def _drop(todo: list[tuple[str, list[str]]], case: str, tool: str) -> None:
    for index, (name, tool_names) in enumerate(todo):
        if name == case and tool in tool_names:
            tool_names.remove(tool)
            if not tool_names:
                del todo[index]
            return


def _log(event: dict[str, Any]) -> None:
    if "error" in event:
        print(f"    {event['tool']:24s} ERROR {event['error'][:100]}", flush=True)
    else:
        ratio = event["seconds"] / event["forward_s"]
        print(f"    {event['tool']:24s} params {event['params']}  MACs {event['macs']}  {ratio:.2f}x", flush=True)


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    return {"environment": {}, "results": []}


def environment() -> dict[str, Any]:
    """Date, machine and the version of every package a tool comes from."""
    import platform
    from importlib import metadata

    import tools as tool_lib

    versions = {}
    for package in sorted(set(tool_lib.PACKAGES.values()) | {"torchvision", "transformers"}):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": THREADS,
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "worker":
        sys.path.insert(0, str(HERE))
        work([(case, tools) for case, tools in json.loads(argv[1])])
        return
    sys.path.insert(0, str(HERE))
    import cases as case_lib
    import tools as tool_lib

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run tools on cases and merge the results into the JSON file")
    run.add_argument("--suite", nargs="*", choices=SUITES, default=list(SUITES))
    run.add_argument("--tools", nargs="*", default=list(tool_lib.TOOLS), choices=list(tool_lib.TOOLS))
    run.add_argument("--cases", nargs="*", help="only these case names")
    run.add_argument("--out", type=Path, default=RESULTS)
    run.add_argument("--resume", action="store_true", help="skip (case, tool) pairs already in the output file")
    options = parser.parse_args(argv)

    known = case_lib.all_cases()
    selected = [
        c for c in known.values() if c.suite in options.suite and (not options.cases or c.name in options.cases)
    ]
    data = load_results(options.out)
    data["environment"] = environment()
    by_key = {(r["case"], r["tool"]): r for r in data["results"]}

    def save(event: dict[str, Any]) -> None:
        case = known[event["case"]]
        row = {k: v for k, v in event.items() if k != "event"}
        row.update(suite=case.suite, ref_params=case.params, ref_macs=case.macs, ref_macs_full=case.macs_full)
        row.update(case.extra)
        by_key[(row["case"], row["tool"])] = row
        data["results"] = list(by_key.values())
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(data, indent=1) + "\n")

    plan = [
        (case.name, [t for t in options.tools if not (options.resume and (case.name, t) in by_key)])
        for case in selected
    ]
    plan = [(case, tool_names) for case, tool_names in plan if tool_names]
    print(f"{len(plan)} cases x {len(options.tools)} tools -> {options.out}", flush=True)
    run_plan(plan, save)


if __name__ == "__main__":
    main()
