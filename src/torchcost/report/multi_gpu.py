"""Terminal tables for multi-GPU estimates: one layout's memory per rank and step time, and a layout search."""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from torchcost.multi_gpu.result import ParallelEstimate
from torchcost.multi_gpu.search import SearchResult
from torchcost.report.measurements import seconds
from torchcost.units import percent, si


def _mfu(estimate: ParallelEstimate) -> str:
    return "-" if estimate.mfu is None else f"{estimate.mfu:.1%}"


def _fits(estimate: ParallelEstimate) -> str:
    if estimate.fits is None:
        return "unknown"
    return "yes" if estimate.fits else "no"


def _ring_s(estimate: ParallelEstimate) -> float:
    return sum(c.seconds * c.count for c in estimate.step.collectives if c.name.startswith("context-parallel"))


def estimate_tables(estimate: ParallelEstimate) -> RenderableType:
    layout, memory, step = estimate.layout, estimate.memory, estimate.step
    title = Text(
        f"Training {estimate.model} on {layout.gpus} x {estimate.hardware}: {layout.describe()}", style="table.title"
    )
    rank = Table(title=Text(f"memory of one GPU ({memory.stage} pipeline stage)"), title_justify="left")
    rank.add_column("part", no_wrap=True)
    rank.add_column("bytes", justify="right")
    rows = [
        ("parameters", memory.parameter_bytes),
        ("gradients", memory.gradient_bytes),
        ("optimizer state", memory.optimizer_bytes),
        (f"activations (microbatches in flight: {memory.in_flight:g})", memory.activation_bytes),
        ("temporaries and workspaces at the peak", memory.transient_bytes),
        ("weights gathered whole (two layers, the root's)", memory.gathered_bytes),
    ]
    for name, nbytes in rows:
        if nbytes:
            rank.add_row(name, si(nbytes, "B"))
    apart = " (not all of the above at once)" if layout.zero == 3 else ""
    rank.add_row(f"peak, when {memory.peak_at}{apart}", si(memory.total_bytes, "B"))
    rank.add_row("CUDA context and libraries", si(estimate.context_bytes, "B"))
    device = "" if estimate.device_memory is None else f" of {si(estimate.device_memory, 'B')}"
    total = f"{si(estimate.device_bytes, 'B')}{device} (fits: {_fits(estimate)})"
    rank.add_row(Text("total", style="bold"), Text(total, style="bold"))
    time = Table(title=Text(f"one step (critical stage: {step.critical_stage})"), title_justify="left")
    time.add_column("part", no_wrap=True)
    time.add_column("time", justify="right")
    time.add_column("share", justify="right")
    parts = [
        ("compute (kernels)", step.compute_s),
        ("  of which recomputation", step.recompute_s),
        ("tensor-parallel collectives", step.tp_comm_s),
        ("expert all-to-alls", step.ep_comm_s),
        (f"context-parallel ring not hidden (of {seconds(_ring_s(estimate))})", step.cp_exposed_s),
        ("pipeline sends", step.pp_comm_s),
        ("pipeline bubble", step.bubble_s),
        (f"data-parallel collectives not hidden (of {seconds(step.dp_comm_s)})", step.dp_exposed_s),
        ("optimizer step", step.optimizer_s),
    ]
    for name, value in parts:
        if value or (name.startswith("context") and layout.cp > 1):
            time.add_row(name, seconds(value), percent(value, step.total_s))
    time.add_row(Text("step", style="bold"), Text(seconds(step.total_s), style="bold"), "")
    summary = Text(
        f"{estimate.tokens_per_s:,.0f} tokens/s, MFU {_mfu(estimate)}, exposed communication "
        f"{percent(step.comm_exposed_s, step.total_s)} of the step"
    )
    notes = [Text(f"note: {note}", style="dim") for note in estimate.notes]
    return Group(title, rank, time, summary, *notes)


def search_table(result: SearchResult) -> RenderableType:
    title = Text(
        f"The {len(result.ranked)} fastest of {result.tried} layouts of {result.gpus} GPUs, {result.global_batch} "
        f"sequences per step ({result.too_big} do not fit)",
        style="table.title",
    )
    table = Table(title=title, title_justify="left")
    headers = ["dp", "tp", "pp", "sp", "zero", "recompute", "m x b", "step", "tokens/s", "MFU", "memory"]
    for name in [*headers, "bubble", "TP comm", "DP exposed"]:
        table.add_column(name, justify="left" if name in ("sp", "recompute") else "right", no_wrap=True)
    for estimate in result.ranked:
        layout, step = estimate.layout, estimate.step
        table.add_row(
            str(layout.dp),
            str(layout.tp),
            str(layout.pp) + (f"x{layout.vpp}" if layout.vpp > 1 else ""),
            "yes" if layout.sp else "",
            str(layout.zero),
            "" if layout.recompute == "none" else layout.recompute,
            f"{layout.microbatches} x {layout.microbatch}",
            seconds(step.total_s),
            f"{estimate.tokens_per_s:,.0f}",
            _mfu(estimate),
            si(estimate.device_bytes, "B"),
            percent(step.bubble_s, step.total_s),
            percent(step.tp_comm_s, step.total_s),
            percent(step.dp_exposed_s, step.total_s),
        )
    why = Text(
        "m x b: microbatches per step x sequences in each. A layout wins by smaller shares of the step: the pipeline "
        "bubble, tensor-parallel collectives, data-parallel communication not hidden behind backward, recomputation "
        "(in the step)",
        style="dim",
    )
    refused = [
        Text(f"{count} layouts cannot run: {reason}", style="dim") for reason, count in result.cannot_run.items()
    ]
    return Group(table, why, *refused)


def estimate_text(estimate: ParallelEstimate, width: int = 120) -> str:
    """The tables as plain text (what ``print(estimate)`` shows)."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(estimate_tables(estimate))
    return buffer.getvalue()


def estimate_line(estimate: ParallelEstimate) -> str:
    memory = si(estimate.device_bytes, "B")
    return (
        f"<ParallelEstimate {estimate.model} on {estimate.layout.gpus} x {estimate.hardware} "
        f"({estimate.layout.describe()}): {memory} per GPU, step {seconds(estimate.step.total_s)}, "
        f"MFU {_mfu(estimate)}>"
    )
