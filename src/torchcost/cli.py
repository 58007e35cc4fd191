"""Command line: ``torchcost profile SPEC``. Thin: parse, call the library, render."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.console import Console

from torchcost.profiler import ProfilingError, profile
from torchcost.records import Profile
from torchcost.report.terminal import DEFAULT_DEPTH, render
from torchcost.sources import UnknownModelError, load_model

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
    return parser


def run_profile(args: argparse.Namespace, console: Console) -> Profile:
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    to_stdout = args.json == "-"
    stream = sys.stderr if to_stdout else sys.stdout
    console = Console(stderr=to_stdout, width=None if stream.isatty() else REPORT_WIDTH)
    try:
        result = run_profile(args, console)
    except (UnknownModelError, ProfilingError, ValueError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    if args.json:
        text = json.dumps(result.to_dict(), indent=2)
        if to_stdout:
            sys.stdout.write(text + "\n")
            return 0
        with open(args.json, "w", encoding="utf-8") as file:
            file.write(text + "\n")
    render(result, console, depth=args.depth, top=args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
