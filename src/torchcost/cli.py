"""Command line: ``torchcost profile SPEC`` and ``torchcost compare SPEC SPEC...``. Thin: parse, call the
library, render."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from torchcost.from_spec import profile_spec
from torchcost.inputs import InputOptions, parse_kwargs_json
from torchcost.profiler import ProfilingError
from torchcost.records import Profile
from torchcost.report.exports import ReportOptions, write_compare, write_exports
from torchcost.report.terminal import DEFAULT_DEPTH, render, render_brief, render_compare
from torchcost.sources import UnknownModelError

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
    comp = commands.add_parser("compare", help="several models side by side")
    comp.add_argument("specs", nargs="+", metavar="SPEC", help=SPEC_HELP)
    _add_model_arguments(comp)
    comp.add_argument("--json", metavar="PATH", help="write the profiles as a JSON list to PATH, or '-' for stdout")
    comp.add_argument("--markdown", metavar="PATH", help="write the side-by-side table as Markdown")
    comp.add_argument("--html", metavar="PATH", help="write a self-contained side-by-side HTML report")
    return parser


def input_options(args: argparse.Namespace) -> InputOptions:
    kwargs = parse_kwargs_json(args.kwargs_json) if args.kwargs_json else {}
    return InputOptions(args.input_size, args.input_dtype, args.batch, args.seq_len, kwargs)


def run_profile(args: argparse.Namespace, console: Console, spec: str | None = None) -> Profile:
    """Profile ``spec`` (default ``args.spec``) as the arguments say."""
    return profile_spec(
        spec or args.spec,
        input_options(args),
        device=args.device,
        dtype=args.dtype,
        backward=args.backward,
        trust_pickle=args.trust_pickle,
        weights=args.weights,
        on_retry=lambda why: console.print(f"[yellow]{why}"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    to_stdout = "-" in (args.json, getattr(args, "csv", None), args.markdown)
    stream = sys.stderr if to_stdout else sys.stdout
    console = Console(stderr=to_stdout, width=None if stream.isatty() else REPORT_WIDTH, emoji=False)
    if args.trust_pickle:
        Console(stderr=True).print("[bold yellow]warning:[/] --trust-pickle: unpickling a file runs any code in it")
    try:
        if args.command == "compare":
            _compare(args, console, to_stdout)
        else:
            _profile(args, console, to_stdout)
    except (UnknownModelError, ProfilingError, ValueError) as exc:
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


def _compare(args: argparse.Namespace, console: Console, to_stdout: bool) -> None:
    profiles = [run_profile(args, console, spec) for spec in args.specs]
    write_compare(profiles, json_path=args.json, markdown=args.markdown, html=args.html)
    if not to_stdout:
        render_compare(profiles, console)


if __name__ == "__main__":
    sys.exit(main())
