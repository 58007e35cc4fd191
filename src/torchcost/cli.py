"""Command line: ``torchcost profile SPEC`` and ``torchcost compare SPEC SPEC...``. Thin: parse, call the
library, render."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console, RenderableType

from torchcost.explain import explain
from torchcost.from_spec import profile_spec
from torchcost.guidelines import Settings, run_guidelines
from torchcost.hardware import UnknownHardwareError, hardware, known_hardware
from torchcost.hardware.calibrate import cache_path, calibrate
from torchcost.inputs import InputOptions, example_inputs, parse_kwargs_json
from torchcost.latency import Latency, measure
from torchcost.llm import llm_profile, presets
from torchcost.op_timing import measure_ops
from torchcost.peak_memory.estimate import settings_for
from torchcost.peak_memory.fit import fit_batch
from torchcost.peak_memory.from_spec import memory_spec
from torchcost.profiler import ProfilingError, profile
from torchcost.records import Profile
from torchcost.report.exports import ReportOptions, write_compare, write_exports, write_text
from torchcost.report.llm import llm_tables
from torchcost.report.measurements import (
    calibration_table,
    guideline_table,
    hardware_list_table,
    hardware_table,
    latency_report,
)
from torchcost.report.memory import memory_report, write_memory_html
from torchcost.report.roofline_plot import plot_roofline
from torchcost.report.terminal import DEFAULT_DEPTH, render, render_brief, render_compare
from torchcost.report.training import training_table
from torchcost.roofline import predict, profile_dtype
from torchcost.sources import UnknownModelError, load_model
from torchcost.training import measure_step, timed

REPORT_WIDTH = 140  # when the output is not a terminal (a pipe, a file, CI logs)
SPEC_HELP = (
    "model spec: torchvision:NAME, timm:NAME, hf:MODEL_TYPE (e.g. hf:gpt2), hf:path/to/config.json, "
    "path/to/model.py:NAME (imports and runs that file: name only code you trust), model.pt2 (torch.export), "
    "or a TorchScript file. Nothing is downloaded; weights are random unless --weights is given"
)


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"input size {text!r} is not a comma-separated list of integers") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """How to build the model and its example input (shared by profile and compare)."""
    parser.add_argument(
        "--input-size",
        type=_shape,
        action="append",
        metavar="1,3,224,224",
        help="shape of an example input (repeat for several inputs); default: the source's own "
        "(the weights' crop size, timm's input size, BATCH,SEQ_LEN for token models)",
    )
    parser.add_argument("--input-dtype", help="dtype of the random example inputs, e.g. int64 (default float32)")
    parser.add_argument("--batch", type=_positive, help="batch size: replaces the first dimension of each input")
    parser.add_argument("--seq-len", type=_positive, help="tokens per sequence for text models (default 128)")
    parser.add_argument(
        "--kwargs-json",
        metavar="JSON",
        help='keyword inputs as JSON (or a .json file); {"shape": [1, 8], "dtype": "int64"} makes a tensor',
    )
    parser.add_argument("--weights", metavar="PATH", help="load this state dict or checkpoint (weights_only=True)")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow loading a whole pickled model; this runs code from the file, so only for files you trust",
    )
    parser.add_argument("--dtype", help="run in this dtype, e.g. float16 or bfloat16 (default: the model's)")
    parser.add_argument(
        "--device",
        default=None,
        help="meta (count without allocating weights), cpu or cuda; default: meta, falling back to cpu "
        "when the model needs real data",
    )
    parser.add_argument("--backward", action="store_true", help="also count the backward pass (training mode)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchcost", description="What a PyTorch model costs, and why.")
    commands = parser.add_subparsers(dest="command", required=True)
    prof = commands.add_parser("profile", help="params, size, MACs, FLOPs and memory access of a model")
    prof.add_argument("spec", help=SPEC_HELP)
    _add_model_arguments(prof)
    prof.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help="module tree depth shown (default 2)")
    prof.add_argument("--top", type=int, default=None, help="show only the N costliest operators (or modules)")
    prof.add_argument(
        "--sort",
        choices=["flops", "macs", "memory", "time"],
        default=None,
        help="order operators (and modules, as a flat list) by this cost; time needs measured times",
    )
    prof.add_argument("--by", choices=["op", "module"], default=None, help="show one table: per operator or module")
    prof.add_argument("--brief", action="store_true", help="print a one-line summary instead of the tables")
    prof.add_argument("--json", metavar="PATH", help="write the profile as JSON to PATH, or '-' for stdout only")
    prof.add_argument("--csv", metavar="PATH", help="write one row per module (or per op with --by op) as CSV")
    prof.add_argument("--markdown", metavar="PATH", help="write the report as Markdown tables (for a README or PR)")
    prof.add_argument("--html", metavar="PATH", help="write a self-contained HTML report with charts (opens offline)")
    prof.add_argument(
        "--latency", action="store_true", help="also measure latency and per-op times (runs on cpu unless --device)"
    )
    prof.add_argument(
        "--hardware",
        metavar="NAME",
        help="predict latency on this hardware (h100, l4, cpu, local, ...); with --latency the default is local",
    )
    prof.add_argument("--roofline", metavar="PNG", help="write the roofline chart (needs a prediction)")
    prof.add_argument(
        "--optimizer",
        help="count a training step: forward, backward and this optimizer's step (sgd, sgd-momentum, adam, adamw); "
        "with --latency or --hardware, its time and MFU",
    )
    _add_timing_arguments(prof)
    comp = commands.add_parser("compare", help="several models side by side")
    comp.add_argument("specs", nargs="+", metavar="SPEC", help=SPEC_HELP)
    _add_model_arguments(comp)
    comp.add_argument("--json", metavar="PATH", help="write the profiles as a JSON list to PATH, or '-' for stdout")
    comp.add_argument("--markdown", metavar="PATH", help="write the side-by-side table as Markdown")
    comp.add_argument("--html", metavar="PATH", help="write a self-contained side-by-side HTML report")
    comp.add_argument("--latency", action="store_true", help="also measure each model's latency (on cpu)")
    comp.add_argument("--hardware", metavar="NAME", help="predict each model's latency on this hardware")
    _add_timing_arguments(comp)
    _add_measure_commands(commands)
    _add_memory_command(commands)
    return parser


def _add_memory_command(commands: Any) -> None:
    mem = commands.add_parser("memory", help="peak memory of inference or of a training step, and what it is made of")
    mem.add_argument("spec", help=SPEC_HELP)
    _add_model_arguments(mem)  # its --backward is a training step without optimizer
    mem.add_argument("--train", action="store_true", help="a training step: forward, backward (and --optimizer)")
    mem.add_argument("--optimizer", help="sgd, sgd-momentum, adam or adamw (implies --train; steady-state step)")
    mem.add_argument("--amp", metavar="DTYPE", help="mixed precision with torch.autocast: bf16 or fp16")
    mem.add_argument("--checkpoint", metavar="PATTERN", help="recompute matching blocks in backward, e.g. layers.*")
    mem.add_argument("--hardware", metavar="NAME", help="say whether it fits this device (h100, l4, ...); GPUs: CUDA")
    mem.add_argument("--max-batch", action="store_true", help="find the largest batch that fits --hardware (on meta)")
    mem.add_argument("--depth", type=int, default=1, help="module depth shown (default 1)")
    mem.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")
    mem.add_argument("--html", metavar="PATH", help="write a self-contained HTML report with the memory timeline")


def _batches(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch sizes {text!r} are not a comma-separated list of integers") from None


def _add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, help="CPU threads for timing (default: torch's default, reported)")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of timed runs per batch size (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_measure_commands(commands: Any) -> None:
    bench = commands.add_parser("bench", help="measured latency of a model, per batch size")
    bench.add_argument("spec", help=SPEC_HELP)
    bench.add_argument("--input-size", type=_shape, action="append", metavar="1,3,224,224")
    bench.add_argument("--input-dtype", help="dtype of the random example inputs, e.g. int64 (default float32)")
    bench.add_argument("--seq-len", type=_positive, help="tokens per sequence for text models (default 128)")
    bench.add_argument("--dtype", help="run in this dtype (default: the model's)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    bench.add_argument("--batch", type=_batches, metavar="1,8,32", help="batch sizes to measure (default: as given)")
    bench.add_argument("--json", metavar="PATH", help="write the latency as JSON to PATH, or '-' for stdout only")
    _add_timing_arguments(bench)

    hw = commands.add_parser("hw", help="known devices, or one device's peak rates and bandwidth")
    hw.add_argument("name", nargs="?", help="a spec entry (h100, l4, ...), cpu, cuda or local; none lists all")
    hw.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")

    llm = commands.add_parser("llm", help="LLM prefill and decode cost, KV cache, memory and tokens/s")
    llm.add_argument("spec", help=f"a preset ({', '.join(presets())}) or a model spec such as hf:llama")
    llm.add_argument("--prompt-len", type=_positive, default=2048)
    llm.add_argument("--gen-len", type=_positive, default=256)
    llm.add_argument("--batch", type=_positive, default=1)
    llm.add_argument("--dtype", default="bf16", help="activation and weight dtype: bf16, fp16, fp32")
    llm.add_argument("--kv-dtype", help="KV cache precision (fp8, int8, bf16, ...; default: --dtype)")
    llm.add_argument("--weight-bits", type=_positive, help="weight precision in bits (4, 8, 16; default: --dtype)")
    llm.add_argument("--hardware", default="h100", help="predict on this hardware (h100, l4, local, ...)")
    llm.add_argument("--no-sweep", action="store_true", help="skip the batch sweep")
    llm.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")

    guide = commands.add_parser("guidelines", help="the four ShuffleNet V2 experiments on this machine")
    guide.add_argument("--quick", action="store_true", help="small maps and short timings (a smoke test, noisy)")
    guide.add_argument("--hardware", default="local", help="predict with this hardware (default: local)")
    guide.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")
    guide.add_argument("--quiet", action="store_true", help="no progress bar")

    cal = commands.add_parser("calibrate", help="measure this machine's achievable rates and cache them")
    cal.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    cal.add_argument("--quick", action="store_true", help="smaller and shorter benchmarks")
    cal.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")
    cal.add_argument("--quiet", action="store_true", help="no progress bar")


def input_options(args: argparse.Namespace) -> InputOptions:
    kwargs = parse_kwargs_json(args.kwargs_json) if args.kwargs_json else {}
    return InputOptions(args.input_size, args.input_dtype, args.batch, args.seq_len, kwargs)


def run_profile(args: argparse.Namespace, console: Console, spec: str | None = None) -> Profile:
    """Profile ``spec`` (default ``args.spec``) as the arguments say; measure and explain when asked."""
    result = _profile_with_latency(args, spec or args.spec) if args.latency else _count(args, console, spec)
    _explain(result, args, console)
    return result


def _count(args: argparse.Namespace, console: Console, spec: str | None) -> Profile:
    return profile_spec(
        spec or args.spec,
        input_options(args),
        device=args.device,
        dtype=args.dtype,
        backward=args.backward,
        trust_pickle=args.trust_pickle,
        weights=args.weights,
        on_retry=lambda why: console.print(f"[yellow]{why}"),
        optimizer=getattr(args, "optimizer", None),
    )


def _profile_with_latency(args: argparse.Namespace, spec: str) -> Profile:
    device = args.device or "cpu"
    loaded = load_model(spec, device, trust_pickle=args.trust_pickle, weights=args.weights)
    inputs, kwargs = example_inputs(loaded, input_options(args), device)
    optimizer = getattr(args, "optimizer", None)
    result = profile(loaded.model, *inputs, dtype=args.dtype, backward=args.backward, optimizer=optimizer, **kwargs)
    result.model = spec
    if result.training is not None and optimizer is not None:
        step_s = measure_step(loaded.model, inputs, kwargs, optimizer, args.dtype, device)
        result.training.step_s, result.training.step_source = step_s, "measured"
    timing = {"dtype": args.dtype, "threads": args.threads}
    result.latency = measure(loaded.model, *inputs, min_time=args.min_time, progress=not args.quiet, **timing, **kwargs)
    measure_ops(result, loaded.model, *inputs, **timing, **kwargs)
    return result


def _explain(result: Profile, args: argparse.Namespace, console: Console) -> None:
    """Roofline prediction on the named hardware (local with --latency), findings, the roofline chart."""
    name = args.hardware or ("local" if args.latency else None)
    device = hardware(name) if name else None
    if device is not None:
        try:
            result.prediction = predict(result, device)
        except ValueError as exc:
            console.print(f"[yellow]no prediction: {exc}")
        if result.training is not None:
            timed(result.training, device, profile_dtype(result), result.prediction)
    result.findings = explain(result, prediction=result.prediction, hardware=device)
    roofline = getattr(args, "roofline", None)
    if roofline:
        if result.prediction is None:
            raise ValueError("--roofline needs a prediction: add --hardware NAME (or --latency after calibrating)")
        plot_roofline(result, result.prediction, roofline)


def _console(to_stdout: bool) -> Console:
    stream = sys.stderr if to_stdout else sys.stdout
    return Console(stderr=to_stdout, width=None if stream.isatty() else REPORT_WIDTH, emoji=False)


def _emit(args: argparse.Namespace, console: Console, to_stdout: bool, data: Any, *tables: RenderableType) -> None:
    """Write ``data`` as JSON when --json asks for it; print the tables unless the JSON went to stdout."""
    if args.json:
        write_text(args.json, json.dumps(data, indent=2) + "\n")
    if not to_stdout:
        for table in tables:
            console.print(table)


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


def _calibrate(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    result = calibrate(args.device, quick=args.quick, progress=not args.quiet)
    path = cache_path(result.device)
    _emit(args, console, to_stdout, {**result.to_dict(), "cache": str(path)}, calibration_table(result, path))


def _guidelines(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    device = hardware(args.hardware)
    if device.key == "cpu" and device.calibration is None:
        console.print("[yellow]no calibration for this machine yet: running a quick one (torchcost calibrate)")
        device.calibration = calibrate("cpu", quick=True, progress=not args.quiet)
    settings = Settings.quick() if args.quick else Settings()
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
    )
    _emit(args, console, to_stdout, result.to_dict(), llm_tables(result))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    to_stdout = "-" in (getattr(args, "json", None), getattr(args, "csv", None), getattr(args, "markdown", None))
    console = _console(to_stdout)
    if getattr(args, "trust_pickle", False):
        Console(stderr=True).print("[bold yellow]warning:[/] --trust-pickle: unpickling a file runs any code in it")
    try:
        COMMANDS[args.command](args, console, to_stdout)
    except (UnknownModelError, UnknownHardwareError, ProfilingError, ValueError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    return 0


def _profile(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    """Count, write the requested files, and print the report (unless a file goes to stdout)."""
    result = run_profile(args, console)
    options = ReportOptions(depth=args.depth, top=args.top, sort=args.sort, by=args.by)
    write_exports(result, options, json_path=args.json, csv_path=args.csv, markdown=args.markdown, html=args.html)
    if to_stdout:
        return
    if args.brief:
        render_brief(result, console)
    else:
        render(result, console, depth=args.depth, top=args.top, sort=args.sort, by=args.by)
    if result.training is not None:
        console.print(training_table(result.training))


def _compare(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    profiles = [run_profile(args, console, spec) for spec in args.specs]
    write_compare(profiles, json_path=args.json, markdown=args.markdown, html=args.html)
    if not to_stdout:
        render_compare(profiles, console)


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
        trust_pickle=args.trust_pickle,
        weights=args.weights,
        on_retry=lambda why: console.print(f"[yellow]{why}"),
    )
    fit = None
    if args.max_batch and device is not None:
        fit = fit_batch(loaded.model, loaded.inputs, loaded.kwargs, settings, device)
    data = {**result.to_dict(), **({"max_batch": fit.to_dict()} if fit else {})}
    if args.html:
        write_memory_html(result, args.html)
    _emit(args, console, to_stdout, data, memory_report(result, args.depth, device, fit))


COMMANDS = {
    "profile": _profile,
    "compare": _compare,
    "bench": _bench,
    "hw": _hw,
    "calibrate": _calibrate,
    "guidelines": _guidelines,
    "llm": _llm,
    "memory": _memory,
}


if __name__ == "__main__":
    sys.exit(main())
