"""Command line: ``torchcost profile SPEC``, ``torchcost compare SPEC SPEC...``, ``torchcost sweep SPEC...``
and the measuring commands. Thin: parse, call the library, render."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.text import Text

from torchcost.analysis import Analysis, analysis_of, analyze
from torchcost.cli_args import NEEDS_PREDICTION, build_parser, check_arguments, layout_from_flags
from torchcost.errors import ProfilingError
from torchcost.from_spec import profile_spec
from torchcost.guidelines import GuidelineSettings, run_guidelines
from torchcost.hardware import UnknownHardwareError, hardware, known_hardware
from torchcost.hardware.calibration import cache_path
from torchcost.inputs import InputOptions, example_inputs, parse_kwargs_json
from torchcost.llm import llm_profile
from torchcost.llm_models import build_llm, check_causal_lm
from torchcost.measure.latency import Latency, measure
from torchcost.measure.timing import progress_bar
from torchcost.multi_gpu.estimate import Training, parallel
from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.search import search
from torchcost.peak_memory.estimate import settings_for
from torchcost.peak_memory.fit import fit_batch
from torchcost.peak_memory.from_spec import memory_spec
from torchcost.predict.calibrate import calibrate
from torchcost.records import Profile
from torchcost.report.exports import ReportOptions, write_compare, write_exports, write_sweep_reports
from torchcost.report.files import write_text
from torchcost.report.html import write_memory_html
from torchcost.report.llm import llm_tables
from torchcost.report.measurements import (
    calibration_table,
    guideline_table,
    hardware_list_table,
    hardware_table,
    latency_report,
    preset_list_table,
)
from torchcost.report.memory import memory_report
from torchcost.report.multi_gpu import estimate_tables, search_table
from torchcost.report.roofline_plot import plot_roofline
from torchcost.report.sweep import failures_text, sweep_table
from torchcost.report.terminal import render, render_brief, render_compare
from torchcost.report.training import training_table
from torchcost.sources import SOURCES, load_model
from torchcost.sources.presets import all_presets
from torchcost.sweep import SweepError, sweep

REPORT_WIDTH = 140  # when the output is not a terminal (a pipe, a file, CI logs) and COLUMNS is not set
DEBUG_VARIABLE = "TORCHCOST_DEBUG"  # set to 1 to see the traceback of an unexpected error


def input_options(args: argparse.Namespace) -> InputOptions:
    kwargs = parse_kwargs_json(args.kwargs_json) if args.kwargs_json else {}
    return InputOptions(args.input_size, args.input_dtype, args.batch, args.seq_len, kwargs)


def run_profile(args: argparse.Namespace, console: Console, spec: str | None = None) -> Analysis:
    """Profile ``spec`` (default ``args.spec``) as the arguments say; measure and explain when asked."""
    spec = spec or args.spec
    name = args.hardware or ("local" if args.latency else None)
    if args.latency:
        result = _measured(args, spec, name)
    else:
        result = analysis_of(_count(args, spec), None, name, args.execution)
    for note in result.notes:
        _note(note)
    roofline = getattr(args, "roofline", None)
    if roofline:
        if result.prediction is None:
            raise ValueError(NEEDS_PREDICTION)
        _wrote(plot_roofline(result.profile, result.prediction, roofline))
    return result


def _count(args: argparse.Namespace, spec: str) -> Profile:
    return profile_spec(
        spec,
        input_options(args),
        device=args.device,
        dtype=args.dtype,
        backward=args.backward,
        trust_pickle=args.trust_pickle,
        weights=args.weights,
        on_retry=_note,
        optimizer=getattr(args, "optimizer", None),
        autocast=args.amp,
        channels_last=args.channels_last,
    )


def _measured(args: argparse.Namespace, spec: str, hardware_name: str | None) -> Analysis:
    device = args.device or "cpu"
    loaded = load_model(spec, device, trust_pickle=args.trust_pickle, weights=args.weights)
    inputs, kwargs = example_inputs(loaded, input_options(args), device)
    result = analyze(
        loaded.model,
        *inputs,
        latency=True,
        hardware=hardware_name,
        execution=args.execution,
        dtype=args.dtype,
        device=device,
        backward=args.backward,
        optimizer=getattr(args, "optimizer", None),
        min_time=args.min_time,
        threads=args.threads,
        progress=not args.quiet,
        **kwargs,
    )
    result.profile.model = spec
    return result


def _console(to_stdout: bool) -> Console:
    """The report's console: the terminal's width, else $COLUMNS, else REPORT_WIDTH for pipes and files."""
    stream = sys.stderr if to_stdout else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else REPORT_WIDTH
    return Console(stderr=to_stdout, width=width, emoji=False)


def _stderr(text: Text) -> None:
    """One message on stderr, never wrapped, never read as markup (``torchcost[html]`` stays as it is)."""
    Console(stderr=True, emoji=False, highlight=False).print(text, soft_wrap=True)


def _note(message: str) -> None:
    _stderr(Text(message, style="yellow"))


def _wrote(*paths: str | Path | None) -> None:
    for path in paths:
        if path is not None and str(path) != "-":
            _stderr(Text(f"wrote {path}", style="dim"))


def _emit(args: argparse.Namespace, console: Console, to_stdout: bool, data: Any, *tables: RenderableType) -> None:
    """Write ``data`` as JSON when --json asks for it; print the tables unless the JSON went to stdout."""
    if not to_stdout:
        for table in tables:
            console.print(table)
    if args.json:
        write_text(args.json, json.dumps(data, indent=2) + "\n")
        _wrote(args.json)


def _bench(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    loaded = load_model(args.spec, args.device)
    options = InputOptions(args.input_size, args.input_dtype, None, args.seq_len, {})
    inputs, kwargs = example_inputs(loaded, options, args.device)
    latency: Latency = measure(
        loaded.model,
        *inputs,
        dtype=args.dtype,
        batch_sizes=args.batch,
        threads=args.threads,
        min_time=args.min_time,
        progress=not args.quiet,
        **kwargs,
    )
    _emit(args, console, to_stdout, latency.to_dict(), latency_report(latency, title=f"latency: {args.spec}"))


def _hw(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    if args.name is None:
        known = known_hardware()
        data = {key: device.to_dict() for key, device in known.items()}
        _emit(args, console, to_stdout, data, hardware_list_table(list(known.values())))
        return
    device = hardware(args.name)
    _emit(args, console, to_stdout, device.to_dict(), hardware_table(device))


def _list(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    shipped = list(all_presets().values())
    _emit(args, console, to_stdout, [p.to_dict() for p in shipped], preset_list_table(shipped))


def _calibrate(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    result = calibrate(args.device, quick=args.quick, progress=not args.quiet, force=args.force)
    path = cache_path(result.device)
    _emit(args, console, to_stdout, {**result.to_dict(), "cache": str(path)}, calibration_table(result, path))


def _guidelines(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    device = hardware(args.hardware)
    if device.key == "cpu" and device.calibration is None:
        console.print("[yellow]no calibration for this machine yet: running a quick one (torchcost calibrate)")
        device.calibration = calibrate("cpu", quick=True, progress=not args.quiet)
    settings = GuidelineSettings.quick() if args.quick else GuidelineSettings()
    experiments = run_guidelines(device, settings, progress=not args.quiet)
    data = {"hardware": device.name, "experiments": [e.to_dict() for e in experiments]}
    _emit(args, console, to_stdout, data, *(guideline_table(e) for e in experiments))


def _llm(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    result = llm_profile(
        args.spec,
        prompt_len=args.prompt_len,
        gen_len=args.gen_len,
        batch=args.batch,
        dtype=args.dtype,
        kv_dtype=args.kv_dtype,
        weight_bits=args.weight_bits,
        hardware_name=args.hardware,
        sweep=not args.no_sweep,
        execution=args.execution,
    )
    _emit(args, console, to_stdout, result.to_dict(), llm_tables(result))


def _sweep(args: argparse.Namespace, console: Console, to_stdout: bool) -> int:
    if isinstance(args.ray, str) and (args.ray.startswith("@") or args.ray.partition(":")[0] in SOURCES):
        raise SweepError(f"--ray took {args.ray!r} as its address: put --ray after the specs, or write --ray=ADDRESS")
    max_memory = None if args.max_memory is None else int(args.max_memory * 2**30)
    try:
        result = sweep(
            args.specs,
            args.out,
            input_sizes=args.input_size,
            batches=args.batch,
            dtypes=args.dtype,
            hardware=args.hardware or [],
            device=args.device,
            workers=args.workers,
            ray=args.ray,
            timeout=args.timeout or None,
            max_memory=max_memory,
            resume=args.resume,
            trust_pickle=args.trust_pickle,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        where = f"; the finished rows are in {args.out}: add --resume to go on" if args.out else ""
        Console(stderr=True).print(f"[yellow]interrupted{where}", highlight=False, soft_wrap=True)
        return 130
    write_sweep_reports(result, markdown=args.markdown, html=args.html, sort=args.sort, top=args.top)
    if not to_stdout:
        console.print(sweep_table(result.rows, result.hardware, args.sort, args.top))
        for line in failures_text(result.rows):
            console.print(f"[yellow]failed:[/] {line}", highlight=False, soft_wrap=True)
    Console(stderr=True).print(
        f"swept in {result.seconds:.1f} s: {result.done} done ({result.failed} failed), {result.skipped} skipped",
        highlight=False,
        soft_wrap=True,
    )
    _wrote(args.out, args.markdown, args.html)
    return 1 if result.done and result.failed == result.done else 0


# What other libraries log about their own code, not about the user's model: torchao (imported by transformers)
# registers its enums with torch's pytree, which torch 2.14 reports as deprecated at every import; a fake-tensor
# run (torchcost memory) logs the traceback of a shape error that torchcost reports in one line.
THIRD_PARTY_NOISE = {
    "torch.utils._pytree": "register_constant() on Enum subclasses is deprecated",
    "torch._subclasses.fake_tensor": "failed while attempting to run meta for",
}


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def _quiet_third_parties() -> None:
    for logger, text in THIRD_PARTY_NOISE.items():
        if not any(isinstance(f, _DropMessage) for f in logging.getLogger(logger).filters):
            logging.getLogger(logger).addFilter(_DropMessage(text))


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_third_parties()
    args = build_parser().parse_args(argv)
    to_stdout = "-" in (getattr(args, "json", None), getattr(args, "csv", None), getattr(args, "markdown", None))
    console = _console(to_stdout)
    if getattr(args, "trust_pickle", False):
        _stderr(Text.assemble(("warning:", "bold yellow"), " --trust-pickle: unpickling a file runs any code in it"))
    try:
        with _current_directory_importable():
            check_arguments(args)
            if args.command == "sweep":
                return _sweep(args, console, to_stdout)
            COMMANDS[args.command](args, console, to_stdout)
    except ProfilingError as exc:
        return _error(exc.cli)
    except (UnknownHardwareError, ValueError) as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        return _error("interrupted", 130)
    except Exception as exc:  # the model's own code (or a bug): one line, the traceback on request
        if os.environ.get(DEBUG_VARIABLE, "0") != "0":
            raise
        return _error(f"{type(exc).__name__}: {exc} ({DEBUG_VARIABLE}=1 shows the traceback)", 1)
    return 0


def _error(message: str, code: int = 2) -> int:
    _stderr(Text.assemble(("error:", "bold red"), " ", message))
    return code


@contextlib.contextmanager
def _current_directory_importable() -> Iterator[None]:
    """The current directory on ``sys.path``, as ``python -c`` has it: a pickled model's class, or a module a
    model file imports, is found where the user runs torchcost."""
    added = "" not in sys.path and os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        yield
    finally:
        if added and os.getcwd() in sys.path:
            sys.path.remove(os.getcwd())


def _profile(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    """Count, print the report (unless a file goes to stdout), then write the requested files."""
    result = run_profile(args, console)
    options = ReportOptions(depth=args.depth, top=args.top, sort=args.sort, by=args.by)
    if not to_stdout:
        if args.brief:
            render_brief(result, console)
        else:
            render(result, console, depth=args.depth, top=args.top, sort=args.sort, by=args.by)
        if result.training is not None:
            console.print(training_table(result.training))
    write_exports(result, options, json_path=args.json, csv_path=args.csv, markdown=args.markdown, html=args.html)
    _wrote(args.json, args.csv, args.markdown, args.html)


def _compare(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    profiles = [run_profile(args, console, spec) for spec in args.specs]
    if not to_stdout:
        render_compare(profiles, console)
    write_compare(profiles, json_path=args.json, markdown=args.markdown, html=args.html)
    _wrote(args.json, args.markdown, args.html)


def _memory(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    device = hardware(args.hardware) if args.hardware else None
    if args.max_batch and (device is None or device.memory is None):
        raise ValueError("--max-batch needs a device with known memory: add --hardware NAME (e.g. h100)")
    settings = settings_for(args.train or args.backward, args.optimizer, None, args.dtype, args.amp, args.checkpoint)
    target = None if device is None else "cuda" if device.kind == "gpu" else "cpu"
    result, loaded = memory_spec(
        args.spec,
        input_options(args),
        settings,
        device=args.device,
        target=target,
        capability=None if device is None else device.capability,
        trust_pickle=args.trust_pickle,
        weights=args.weights,
        on_retry=_note,
    )
    fit = None
    if args.max_batch and device is not None:
        fit = fit_batch(loaded.model, loaded.inputs, loaded.kwargs, settings, device)
    data = {**result.to_dict(), **({"max_batch": fit.to_dict()} if fit else {})}
    _emit(args, console, to_stdout, data, memory_report(result, args.depth, device, fit))
    if args.html:
        write_memory_html(result, args.html, device, fit)
        _wrote(args.html)


def _train(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    model = build_llm(args.spec)
    check_causal_lm(args.spec, model)
    gpu = hardware(args.hardware)
    training = Training(seq_len=args.seq_len, optimizer=args.optimizer)
    zero = 3 if args.fsdp else args.zero
    if args.search:
        if args.gpus is None or args.global_batch is None:
            raise ProfilingError("--search needs --gpus and --global-batch (sequences per step)")
        base = Layout(zero=zero, vpp=args.vpp, cp=args.cp, ep=args.ep)
        with progress_bar(not args.quiet) as bar:
            task = bar.add_task("estimating layouts", total=None)
            result = search(
                model, args.gpus, args.global_batch, gpu, training, base, args.top,
                lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
        _emit(args, console, to_stdout, result.to_dict(), search_table(result))
        return
    layout = layout_from_flags(args, zero)
    estimate = parallel(model, layout, gpu, training)
    _emit(args, console, to_stdout, estimate.to_dict(), estimate_tables(estimate))


COMMANDS = {
    "profile": _profile,
    "compare": _compare,
    "bench": _bench,
    "hw": _hw,
    "list": _list,
    "calibrate": _calibrate,
    "guidelines": _guidelines,
    "llm": _llm,
    "memory": _memory,
    "train": _train,
}


if __name__ == "__main__":
    sys.exit(main())
