"""Command line: ``torchcost profile SPEC``. Thin: parse, call the library, render."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from torchcost.explain import explain
from torchcost.guidelines import Settings, run_guidelines
from torchcost.hardware import UnknownHardwareError, hardware, known_hardware
from torchcost.hardware.calibrate import cache_path, calibrate
from torchcost.latency import Latency, measure
from torchcost.llm import llm_profile, presets
from torchcost.op_timing import measure_ops
from torchcost.profiler import ProfilingError, profile
from torchcost.records import Profile
from torchcost.report.llm import llm_tables
from torchcost.report.measurements import (
    calibration_table,
    guideline_table,
    hardware_list_table,
    hardware_table,
    render_latency,
)
from torchcost.report.roofline_plot import plot_roofline
from torchcost.report.terminal import DEFAULT_DEPTH, render
from torchcost.roofline import predict
from torchcost.sources import LoadedModel, UnknownModelError, load_model

REPORT_WIDTH = 140  # when the output is not a terminal (a pipe, a file, CI logs)


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"input size {text!r} is not a comma-separated list of integers") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchcost", description="What a PyTorch model costs, and why.")
    commands = parser.add_subparsers(dest="command", required=True)
    prof = commands.add_parser("profile", help="params, size, MACs, FLOPs and memory access of a model")
    prof.add_argument("spec", help="model spec, e.g. torchvision:resnet50")
    prof.add_argument(
        "--input-size",
        type=_shape,
        action="append",
        metavar="1,3,224,224",
        help="shape of an example input (repeat for several inputs); default: the source's own",
    )
    prof.add_argument("--dtype", help="run in this dtype, e.g. float16 or bfloat16 (default: the model's)")
    prof.add_argument(
        "--device",
        default=None,
        help="meta (count without allocating weights), cpu or cuda; default: meta, falling back to cpu "
        "when the model needs real data",
    )
    prof.add_argument("--backward", action="store_true", help="also count the backward pass (training mode)")
    prof.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help="module tree depth shown (default 2)")
    prof.add_argument("--top", type=int, default=None, help="show only the N costliest operators")
    prof.add_argument("--json", metavar="PATH", help="write the profile as JSON to PATH, or '-' for stdout only")
    prof.add_argument(
        "--latency", action="store_true", help="also measure latency and per-op times (runs on cpu unless --device)"
    )
    prof.add_argument(
        "--hardware",
        metavar="NAME",
        help="predict latency on this hardware (h100, l4, cpu, local, ...); with --latency the default is local",
    )
    prof.add_argument("--roofline", metavar="PNG", help="write the roofline chart (needs a prediction)")
    _add_timing_arguments(prof)
    _add_measure_commands(commands)
    return parser


def _batches(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch sizes {text!r} are not a comma-separated list of integers") from None


def _add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=_batches, metavar="1,8,32", help="batch sizes to measure (default: as given)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's default, reported)")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of timed runs per batch size (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_measure_commands(commands: Any) -> None:
    bench = commands.add_parser("bench", help="measured latency of a model, per batch size")
    bench.add_argument("spec", help="model spec, e.g. torchvision:resnet18")
    bench.add_argument("--input-size", type=_shape, action="append", metavar="1,3,224,224")
    bench.add_argument("--dtype", help="run in this dtype (default: the model's)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    bench.add_argument("--json", metavar="PATH", help="write the latency as JSON to PATH, or '-' for stdout only")
    _add_timing_arguments(bench)

    hw = commands.add_parser("hw", help="known devices, or one device's peak rates and bandwidth")
    hw.add_argument("name", nargs="?", help="a spec entry (h100, l4, ...), cpu, cuda or local; none lists all")
    hw.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")

    llm = commands.add_parser("llm", help="LLM prefill and decode cost, KV cache, memory and tokens/s")
    llm.add_argument("spec", help=f"a preset ({', '.join(presets())}) or a model spec")
    llm.add_argument("--prompt-len", type=int, default=2048)
    llm.add_argument("--gen-len", type=int, default=256)
    llm.add_argument("--batch", type=int, default=1)
    llm.add_argument("--dtype", default="bf16", help="activation and weight dtype: bf16, fp16, fp32")
    llm.add_argument("--kv-dtype", help="KV cache precision (fp8, int8, bf16, ...; default: --dtype)")
    llm.add_argument("--weight-bits", type=int, help="weight precision in bits (4, 8, 16; default: --dtype)")
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


def run_profile(args: argparse.Namespace, console: Console) -> Profile:
    if args.latency:
        return _profile_with_latency(args)
    devices = [args.device] if args.device else ["meta", "cpu"]
    for attempt, device in enumerate(devices):
        loaded = load_model(args.spec, device)
        sizes = args.input_size or loaded.input_sizes
        if sizes is None:
            raise ProfilingError(f"{args.spec} has no default input size; pass --input-size, e.g. 1,3,224,224")
        try:
            result = profile(loaded.model, input_size=sizes, dtype=args.dtype, device=device, backward=args.backward)
        except ProfilingError as exc:
            if attempt + 1 == len(devices):
                raise
            console.print(f"[yellow]counting on meta failed ({exc.args[0].splitlines()[0]}); retrying on cpu")
            continue
        result.model = args.spec
        return result
    raise AssertionError("unreachable")


def _inputs(args: argparse.Namespace, loaded: LoadedModel) -> list[tuple[int, ...]]:
    sizes = args.input_size or loaded.input_sizes
    if sizes is None:
        raise ProfilingError(f"{args.spec} has no default input size; pass --input-size, e.g. 1,3,224,224")
    return list(sizes)


def _measure(args: argparse.Namespace, loaded: LoadedModel) -> Latency:
    return measure(
        loaded.model,
        input_size=_inputs(args, loaded),
        dtype=args.dtype,
        batch_sizes=args.batch,
        threads=args.threads,
        min_time=args.min_time,
        progress=not args.quiet,
    )


def _profile_with_latency(args: argparse.Namespace) -> Profile:
    device = args.device or "cpu"
    loaded = load_model(args.spec, device)
    sizes = _inputs(args, loaded)
    result = profile(loaded.model, input_size=sizes, dtype=args.dtype, backward=args.backward)
    result.model = args.spec
    result.latency = _measure(args, loaded)
    measure_ops(result, loaded.model, input_size=sizes, dtype=args.dtype, threads=args.threads)
    return result


def _write_json(data: dict[str, Any], path: str) -> None:
    text = json.dumps(data, indent=2)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(path).write_text(text + "\n", encoding="utf-8")


def _console(args: argparse.Namespace) -> Console:
    to_stdout = getattr(args, "json", None) == "-"
    stream = sys.stderr if to_stdout else sys.stdout
    return Console(stderr=to_stdout, width=None if stream.isatty() else REPORT_WIDTH)


def _bench_command(args: argparse.Namespace) -> int:
    loaded = load_model(args.spec, args.device)
    latency = _measure(args, loaded)
    if args.json:
        _write_json(latency.to_dict(), args.json)
    if args.json != "-":
        render_latency(latency, _console(args), title=f"latency: {args.spec}")
    return 0


def _hw_command(args: argparse.Namespace) -> int:
    if args.name is None:
        known = known_hardware()
        if args.json:
            _write_json({key: hw.to_dict() for key, hw in known.items()}, args.json)
        if args.json != "-":
            _console(args).print(hardware_list_table(list(known.values())))
        return 0
    device = hardware(args.name)
    if args.json:
        _write_json(device.to_dict(), args.json)
    if args.json != "-":
        _console(args).print(hardware_table(device))
    return 0


def _calibrate_command(args: argparse.Namespace) -> int:
    result = calibrate(args.device, quick=args.quick, progress=not args.quiet)
    if args.json:
        _write_json({**result.to_dict(), "cache": str(cache_path(result.device))}, args.json)
    if args.json != "-":
        _console(args).print(calibration_table(result, cache_path(result.device)))
    return 0


def _explain(result: Profile, args: argparse.Namespace, console: Console) -> None:
    name = args.hardware or ("local" if args.latency else None)
    device = hardware(name) if name else None
    if device is not None:
        try:
            result.prediction = predict(result, device)
        except ValueError as exc:
            console.print(f"[yellow]no prediction: {exc}")
    result.findings = explain(result, prediction=result.prediction, hardware=device)
    if args.roofline:
        if result.prediction is None:
            raise ValueError("--roofline needs a prediction: add --hardware NAME (or --latency after calibrating)")
        plot_roofline(result, result.prediction, args.roofline)


def _profile_command(args: argparse.Namespace) -> int:
    console = _console(args)
    result = run_profile(args, console)
    _explain(result, args, console)
    if args.json:
        _write_json(result.to_dict(), args.json)
    if args.json != "-":
        render(result, console, depth=args.depth, top=args.top)
    return 0


def _guidelines_command(args: argparse.Namespace) -> int:
    console = _console(args)
    device = hardware(args.hardware)
    if device.key == "cpu" and device.calibration is None:
        console.print("[yellow]no calibration for this machine yet: running a quick one (torchcost calibrate)")
        device.calibration = calibrate("cpu", quick=True, progress=not args.quiet)
    settings = Settings.quick() if args.quick else Settings()
    experiments = run_guidelines(device, settings, progress=not args.quiet)
    if args.json:
        _write_json({"hardware": device.name, "experiments": [e.to_dict() for e in experiments]}, args.json)
    if args.json != "-":
        for experiment in experiments:
            console.print(guideline_table(experiment))
    return 0


def _llm_command(args: argparse.Namespace) -> int:
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
    if args.json:
        _write_json(result.to_dict(), args.json)
    if args.json != "-":
        _console(args).print(llm_tables(result))
    return 0


COMMANDS = {
    "llm": _llm_command,
    "profile": _profile_command,
    "bench": _bench_command,
    "hw": _hw_command,
    "calibrate": _calibrate_command,
    "guidelines": _guidelines_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UnknownModelError, UnknownHardwareError, ProfilingError, ValueError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
