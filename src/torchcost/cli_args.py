"""The command line's arguments: the parser of every ``torchcost`` command, and the checks that can be made
before a model is built or run (devices, output paths, optional packages)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
from pathlib import Path
from typing import Any, NoReturn

from torchcost.errors import ProfilingError
from torchcost.multi_gpu.layout import Layout
from torchcost.predict import EXECUTIONS
from torchcost.prepare import checked_device
from torchcost.report.sweep import SORTS
from torchcost.report.terminal import DEFAULT_DEPTH
from torchcost.sweep.runner import DEFAULT_TIMEOUT_S
from torchcost.version import __version__

OPTIONAL_PACKAGES = {"html": ("plotly", "the HTML report"), "roofline": ("matplotlib", "the roofline chart")}
EXTRAS = {"plotly": "html", "matplotlib": "plot", "transformers": "transformers"}  # package -> torchcost[extra]
SPEC_HELP = (
    "model spec: torchvision:NAME, timm:NAME, hf:MODEL_TYPE (e.g. hf:gpt2), hf:path/to/config.json, "
    "path/to/model.py:NAME (imports and runs that file: name only code you trust), model.pt2 (torch.export), "
    "or a TorchScript file. Nothing is downloaded; weights are random"
)
WEIGHTS_HELP = SPEC_HELP + " unless --weights is given"
AMP_CHOICES = ("fp16", "bf16")
NEEDS_PREDICTION = "--roofline needs a prediction: add --hardware NAME (or --latency after calibrating)"


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (the usage itself is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _shape(text: str) -> tuple[int, ...]:
    """``1,3,224,224`` or ``1x3x224x224``; every part a positive integer (``1,x,32,32`` has an empty one)."""
    parts = [part.strip() for part in re.split(r"[,x]", text.strip())]
    shape = tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"input size {text!r} is not a list of positive sizes such as 1,3,224,224")
    return shape


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


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
    parser = _Parser(prog="torchcost", description="What a PyTorch model costs, and why.")
    commands = parser.add_subparsers(dest="command", required=True)
    prof = commands.add_parser("profile", help="params, size, MACs, FLOPs and memory access of a model")
    prof.add_argument("spec", help=WEIGHTS_HELP)
    _add_model_arguments(prof)
    prof.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help="module tree depth shown (default 2)")
    prof.add_argument(
        "--top", type=_positive, default=None, help="show only the N costliest operators and modules ('...': left out)"
    )
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
    _add_execution_argument(prof)
    prof.add_argument(
        "--optimizer",
        help="count a training step: forward, backward and this optimizer's step (sgd, sgd-momentum, adam, adamw); "
        "with --latency or --hardware, its time and MFU",
    )
    _add_layout_arguments(prof)
    _add_timing_arguments(prof)
    comp = commands.add_parser("compare", help="several models side by side")
    comp.add_argument("specs", nargs="+", metavar="SPEC", help=WEIGHTS_HELP)
    _add_model_arguments(comp)
    comp.add_argument("--json", metavar="PATH", help="write the profiles as a JSON list to PATH, or '-' for stdout")
    comp.add_argument("--markdown", metavar="PATH", help="write the side-by-side table as Markdown")
    comp.add_argument("--html", metavar="PATH", help="write a self-contained side-by-side HTML report")
    comp.add_argument("--latency", action="store_true", help="also measure each model's latency (on cpu)")
    comp.add_argument("--hardware", metavar="NAME", help="predict each model's latency on this hardware")
    _add_execution_argument(comp)
    _add_layout_arguments(comp)
    _add_timing_arguments(comp)
    _add_measure_commands(commands)
    _add_sweep_command(commands)
    _add_train_command(commands)
    _add_memory_command(commands)
    for listed in commands._choices_actions:  # each command's --help opens with the line the command list shows
        command = commands.choices[listed.dest]
        command.description = command.description or listed.help
    parser.add_argument("--version", action="version", version=f"torchcost {__version__}")
    return parser


def _add_layout_arguments(parser: argparse.ArgumentParser) -> None:
    """How the counted forward runs on the GPU it is deployed to: mixed precision and memory format."""
    parser.add_argument(
        "--amp",
        choices=AMP_CHOICES,
        help="count what CUDA's torch.autocast runs in this dtype: matmuls and convolutions in it, norms and "
        "softmax in fp32",
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="4-D weights and inputs in torch.channels_last memory format"
    )


def _add_execution_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--execution",
        choices=EXECUTIONS,
        default="eager",
        help="how the predicted run executes: eager (PyTorch's default, each op dispatched from Python) or graphs "
        "(replayed as a CUDA graph: CUDA graphs, torch.compile's cudagraphs; GPUs only)",
    )


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
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes {text!r} are not a list of positive integers such as 1,8,32")
    return batches


def _add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=_positive, help="CPU threads for timing (default: torch's default, reported)")
    parser.add_argument(
        "--min-time", type=_seconds, default=1.0, help="seconds of timed runs per batch size (default 1)"
    )
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

    shipped = commands.add_parser(
        "list", help="the checkpoint presets shipped with torchcost (real configs, no weights)"
    )
    shipped.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")

    llm = commands.add_parser("llm", help="LLM prefill and decode cost, KV cache, memory and tokens/s")
    llm.add_argument(
        "spec",
        help="a checkpoint preset (torchcost list), a Hub id (hf:Qwen/Qwen3-8B) or a model spec such as hf:llama",
    )
    llm.add_argument("--prompt-len", type=_positive, default=2048)
    llm.add_argument("--gen-len", type=_positive, default=256)
    llm.add_argument("--batch", type=_positive, default=1)
    llm.add_argument("--dtype", default="bf16", help="activation and weight dtype: bf16, fp16, fp32")
    llm.add_argument("--kv-dtype", help="KV cache precision (fp8, int8, bf16, ...; default: --dtype)")
    llm.add_argument("--weight-bits", type=_positive, help="weight precision in bits (4, 8, 16; default: --dtype)")
    llm.add_argument("--hardware", default="h100", help="predict on this hardware (h100, l4, local, ...)")
    llm.add_argument("--no-sweep", action="store_true", help="skip the batch sweep")
    llm.add_argument(
        "--execution",
        choices=EXECUTIONS,
        help="the headline's execution: graphs (a CUDA-graph decode, as serving engines run it; the default on "
        "a GPU) or eager (transformers' own loop); both are shown",
    )
    llm.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")

    guide = commands.add_parser("guidelines", help="the four ShuffleNet V2 experiments on this machine")
    guide.add_argument("--quick", action="store_true", help="small maps and short timings (a smoke test, noisy)")
    guide.add_argument("--hardware", default="local", help="predict with this hardware (default: local)")
    guide.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")
    guide.add_argument("--quiet", action="store_true", help="no progress bar")

    cal = commands.add_parser("calibrate", help="measure this machine's achievable rates and cache them")
    cal.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    cal.add_argument("--quick", action="store_true", help="smaller and shorter benchmarks")
    cal.add_argument("--force", action="store_true", help="keep the result even if the machine was busy")
    cal.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")
    cal.add_argument("--quiet", action="store_true", help="no progress bar")


SWEEP_SPEC_HELP = (
    "what to sweep: any model spec; a pattern (timm:*, timm:convnext*, torchvision:*, hf:llama*); @list.txt "
    "(one spec or pattern per line); or space.py:NAME, a generator function yielding (name, model or "
    "zero-argument builder, example inputs) (this imports and runs that file)"
)


def _grid_point(text: str) -> list[tuple[int, ...]]:
    """One point of the input-size grid: a shape, or several (one per input) separated by ';'."""
    return [_shape(part) for part in text.split(";") if part.strip()]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_sweep_command(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="one table for many models (hubs, lists, search spaces), in worker processes or on Ray",
        description="Profile every model the specs name at every grid point, one row each, in worker processes "
        "(or on Ray). A model that fails, crashes its worker or passes --timeout is a row with its error, and "
        "the sweep goes on. Exit status: 0 when a row was counted (or --resume found nothing left to do), "
        "1 when every model failed, 2 when the sweep could not run.",
    )
    sweep.add_argument("specs", nargs="+", metavar="SPEC", help=SWEEP_SPEC_HELP)
    sweep.add_argument("--out", metavar="PATH", help="write the rows as they finish: .csv, .jsonl or .parquet")
    sweep.add_argument("--resume", action="store_true", help="keep the rows already in --out; run only the rest")
    sweep.add_argument(
        "--input-size",
        type=_grid_point,
        action="append",
        metavar="1,3,224,224",
        help="a point of the grid (repeat for more); several inputs: 1,3,224,224;1,10. Default: each model's own",
    )
    sweep.add_argument("--batch", type=_batches, metavar="1,8", help="batch sizes of the grid (replace dim 0)")
    sweep.add_argument("--dtype", type=_names, metavar="float32,bfloat16", help="dtypes of the grid")
    sweep.add_argument("--hardware", type=_names, metavar="h100,l4,local", help="add predicted latency on each")
    sweep.add_argument("--device", help="count on this device (default: meta, and cpu when a model needs real data)")
    sweep.add_argument("--workers", type=_positive, help="worker processes, or a local Ray's CPUs (default: CPUs)")
    sweep.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=False,
        metavar="ADDRESS",
        help="run on Ray: a local Ray, or the cluster at ADDRESS (auto, ray://HOST:10001); put it after the specs",
    )
    sweep.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per model (default 300; 0: none)"
    )
    sweep.add_argument(
        "--max-memory",
        type=float,
        metavar="GiB",
        help="memory one model may add to its worker (default: 80%% of this machine's, shared by the workers; 0: "
        "no limit)",
    )
    sweep.add_argument("--trust-pickle", action="store_true", help="allow whole pickled models (runs their code)")
    sweep.add_argument("--markdown", metavar="PATH", help="write the top rows as Markdown ('-': stdout)")
    sweep.add_argument("--html", metavar="PATH", help="write a self-contained page: Pareto chart, table, failures")
    sweep.add_argument("--top", type=_positive, default=20, help="rows in the tables (default 20)")
    sweep.add_argument("--sort", choices=SORTS, default="macs", help="rank the tables by this (default macs)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")


def check_arguments(args: argparse.Namespace) -> None:
    """What can be checked before a model is built or run: devices, output paths, optional packages, options
    that do not go together."""
    device = getattr(args, "device", None)
    if device not in (None, "auto"):
        checked_device(device)
    for option in ("json", "csv", "markdown", "html", "roofline"):
        path = getattr(args, option, None)
        if path and path != "-":
            _check_writable(f"--{option}", Path(path))
        if path and option in OPTIONAL_PACKAGES:
            _check_installed(*OPTIONAL_PACKAGES[option])
    if args.command == "llm":
        _check_installed("transformers", "llm")
    if getattr(args, "roofline", None) and not (args.hardware or args.latency):
        raise ValueError(NEEDS_PREDICTION)
    if args.command in ("profile", "compare") and args.execution == "graphs" and not args.hardware:
        raise ValueError("--execution graphs predicts a CUDA-graph replay: add --hardware NAME (a GPU such as h100)")
    if getattr(args, "latency", False) and (args.amp or args.channels_last):
        option = "--amp" if args.amp else "--channels-last"
        raise ValueError(f"{option} is counted, not measured: leave out --latency, or add --hardware NAME to predict")


def _check_writable(option: str, path: Path) -> None:
    folder = path.parent
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a directory; give a file name")
    if not folder.is_dir():
        raise ValueError(f"{option} {path}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {path}: not writable")


def _check_installed(package: str, needed_by: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise ValueError(
            f"{needed_by} needs {package}, which is not installed: pip install 'torchcost[{EXTRAS[package]}]'"
        )


def _add_train_command(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="training on many GPUs: memory per rank and step time of a parallel layout, or a layout search",
        description="Memory per GPU and step time of one training step of a causal LM under data, tensor and "
        "pipeline parallelism, ZeRO/FSDP and recomputation, counted from the model's own code on meta (nothing "
        "runs on a GPU). Give the layout, or --search for the fastest layouts of --gpus that fit.",
    )
    train.add_argument("spec", help="a checkpoint preset (torchcost list), a Hub id or a model spec such as hf:llama")
    train.add_argument("--gpus", type=_positive, help="GPUs in all (default: dp x tp x pp)")
    train.add_argument("--dp", type=_positive, help="data-parallel size (default: what --gpus leaves)")
    train.add_argument("--tp", type=_positive, default=1, help="tensor-parallel size")
    train.add_argument("--pp", type=_positive, default=1, help="pipeline stages")
    train.add_argument("--vpp", type=_positive, default=1, help="model chunks per pipeline rank (interleaved 1F1B)")
    train.add_argument("--cp", type=_positive, default=1, help="context-parallel size (ring attention)")
    train.add_argument("--ep", type=_positive, default=1, help="expert-parallel size (of the data-parallel ranks)")
    train.add_argument(
        "--zero", type=int, choices=(0, 1, 2, 3), default=1, help="ZeRO stage (1: distributed optimizer)"
    )
    train.add_argument("--fsdp", action="store_true", help="fully sharded data parallel (ZeRO stage 3)")
    train.add_argument("--sp", action="store_true", help="sequence parallelism over the tensor-parallel ranks")
    train.add_argument("--microbatch", type=_positive, default=1, help="sequences per microbatch")
    train.add_argument("--microbatches", type=_positive, help="microbatches per step (default: from --global-batch)")
    train.add_argument("--global-batch", type=_positive, help="sequences per optimizer step")
    train.add_argument("--seq-len", type=_positive, default=2048)
    train.add_argument("--recompute", choices=("none", "selective", "full"), default="none")
    train.add_argument("--optimizer", choices=("adamw", "adam", "sgd-momentum", "sgd"), default="adamw")
    train.add_argument("--hardware", default="h100-sxm", help="the GPU: h100-sxm, h200, a100-80gb or a100-40gb")
    train.add_argument("--search", action="store_true", help="rank the layouts of --gpus that fit, fastest first")
    train.add_argument("--top", type=_positive, default=10, help="layouts --search shows")
    train.add_argument("--json", metavar="PATH", help="write as JSON to PATH, or '-' for stdout only")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def layout_from_flags(args: argparse.Namespace, zero: int) -> Layout:
    """The layout `torchcost train` asks for: dp from --gpus when not given, microbatches from --global-batch."""
    model_parallel = args.tp * args.pp * args.cp
    dp = args.dp
    if dp is None:
        if args.gpus is not None and args.gpus % model_parallel:
            raise ProfilingError(f"--gpus {args.gpus} is not a multiple of --tp x --pp x --cp = {model_parallel}")
        dp = (args.gpus or model_parallel) // model_parallel
    if args.gpus is not None and dp * model_parallel != args.gpus:
        raise ProfilingError(
            f"--dp x --tp x --pp x --cp = {dp * model_parallel}, not --gpus {args.gpus}; leave --dp out"
        )
    microbatches = args.microbatches
    if microbatches is None:
        batch = args.global_batch or dp * args.microbatch * args.pp
        if batch % (dp * args.microbatch):
            raise ProfilingError(
                f"--global-batch {batch} is not a multiple of --dp x --microbatch = {dp * args.microbatch}"
            )
        microbatches = batch // (dp * args.microbatch)
    return Layout(
        dp=dp, tp=args.tp, pp=args.pp, cp=args.cp, ep=args.ep, zero=zero, sp=args.sp, microbatch=args.microbatch,
        microbatches=microbatches, vpp=args.vpp, recompute=args.recompute,
    )  # fmt: skip
