"""Terminal tables for peak memory: what the peak is made of, where it is, and each module's activations."""

from __future__ import annotations

import warnings
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from torchcost.hardware import Hardware
from torchcost.peak_memory.fit import BatchFit
from torchcost.peak_memory.memory_profile import MemoryProfile, label
from torchcost.units import UNIT_NOTE, percent, si

PHASES = ("forward", "backward", "optimizer")


def run_line(result: MemoryProfile) -> str:
    """What ran: inference or which training step, on which inputs, where, for which device kind."""
    if result.train:
        step = f"{result.optimizer} step" if result.optimizer else "forward + backward (no optimizer step)"
        kind = f"training: {step}" + (", steady state" if result.optimizer else "")
    else:
        kind = "inference: one forward, eval mode, no grad"
    extras = [f"{name} {value}" for name, value in (("dtype", result.dtype), ("autocast", result.autocast)) if value]
    extras += [f"checkpointing {result.checkpoint}"] if result.checkpoint else []
    inputs = ", ".join(f"{list(spec.shape)} {spec.dtype}" for spec in result.inputs)
    where = f"counted on {result.device} for {result.target}"
    return " · ".join([kind, *extras, f"inputs {inputs}", where])


def breakdown_table(result: MemoryProfile) -> Table:
    table = Table(title="alive at the peak", title_justify="left")
    table.add_column("category")
    table.add_column("bytes", justify="right")
    table.add_column("share", justify="right")
    table.add_column("exact bytes", justify="right", style="dim")
    for category, value in result.breakdown.items():
        if value or category in ("parameters", "activations", "temporaries"):
            table.add_row(label(category), si(value, "B"), percent(value, result.peak_bytes), f"{value:,}")
    table.add_section()
    table.add_row("peak", si(result.peak_bytes, "B"), "100%", f"{result.peak_bytes:,}", style="bold")
    return table


def peak_text(result: MemoryProfile, device: Hardware | None = None) -> Text:
    at = result.peak_at
    where = at.module if at.module not in ("", "-") else "(root)" if at.module == "" else "outside the model"
    lines = [f"peak after {at.op} (op {at.step:,} of {len(result.timeline) - 1:,}) in {where}, {at.phase}"]
    phases = [f"{phase} {si(result.phase_peaks[phase], 'B')}" for phase in PHASES if phase in result.phase_peaks]
    lines.append("highest live memory per phase: " + " · ".join(phases))
    lines += [device_line(result)] if result.reserved_bytes is not None else []
    verdict = fit_verdict(result, device)
    lines += [verdict] if verdict else []
    return Text("\n".join(lines))


def device_line(result: MemoryProfile) -> str:
    """On CUDA: what the caching allocator reserves and what nvidia-smi would show."""
    reserved, context = result.reserved_bytes or 0, result.context_bytes or 0
    return (
        f"reserved by the caching allocator: {si(reserved, 'B')} (the peak and cached free blocks) · with a CUDA "
        f"context allowance of {si(context, 'B')}, nvidia-smi would show about {si(result.device_bytes, 'B')}"
    )


def fit_verdict(result: MemoryProfile, device: Hardware | None) -> str | None:
    """Whether the run fits in the device's memory, in words (None when its memory is unknown): on CUDA, judged
    on the reserved bytes and the context allowance, else on the peak."""
    if device is None or not device.memory:
        return None
    needed = result.device_bytes
    verdict = "fits" if needed <= device.memory else "does NOT fit"
    judged = "reserved + context" if result.reserved_bytes is not None else "peak"
    return (
        f"{verdict} in {device.name}: {judged} {si(needed, 'B')} is {percent(needed, device.memory)} of its "
        f"{si(device.memory, 'B')}"
    )


def largest_batch_text(fit: BatchFit) -> str:
    largest = f"{fit.batch}" if fit.batch else "none (one sample does not fit)"
    return f"largest batch: {largest} (batches tried on meta against {fit.hardware}'s {si(fit.memory_bytes, 'B')})"


def module_table(result: MemoryProfile, depth: int) -> Table:
    training = result.train
    caption = "peak: the highest live memory while the module ran" + (
        "; activations: bytes made in the module (children included) and held for backward" if training else ""
    )
    table = Table(title=f"per module (depth {depth})", caption=caption, title_justify="left")
    table.caption_justify = "left"
    table.add_column("module")
    table.add_column("type")
    if training:
        table.add_column("activations", justify="right")
        table.add_column("% of activations", justify="right")
    table.add_column("peak in forward", justify="right")
    if training:
        table.add_column("peak in backward", justify="right")
    total = next((m.activation_bytes for m in result.modules if m.name == ""), 0)
    for module in result.modules:
        if module.depth > depth:
            continue
        name = "  " * module.depth + (module.name.rsplit(".", 1)[-1] if module.name else "(root)")
        cells = [name, module.type]
        if training:
            cells += [si(module.activation_bytes, "B"), percent(module.activation_bytes, total)]
        cells.append(_bytes(module.forward_peak_bytes))
        if training:
            cells.append(_bytes(module.backward_peak_bytes))
        table.add_row(*cells)
    return table


def fit_report(fit: BatchFit) -> Group:
    title = Text(largest_batch_text(fit))
    needed = "reserved + context" if fit.target == "cuda" else "peak"
    table = Table()
    for header in ("batch", needed, "exact bytes", "fits"):
        table.add_column(header, justify="right")
    for batch, nbytes in sorted(fit.tried.items()):
        fits = "yes" if nbytes <= fit.memory_bytes else "no"
        table.add_row(str(batch), si(nbytes, "B"), f"{nbytes:,}", fits, style="bold" if batch == fit.batch else "")
    return Group(title, table)


def memory_report(
    result: MemoryProfile, depth: int = 1, device: Hardware | None = None, fit: BatchFit | None = None
) -> RenderableType:
    parts: list[RenderableType] = [
        Text(f"torchcost memory: {result.model}", style="bold"),
        Text(run_line(result)),
        breakdown_table(result),
        peak_text(result, device),
        module_table(result, depth),
    ]
    if fit is not None:
        parts.append(fit_report(fit))
    notes = "\n".join(f"- {note}" for note in result.notes)
    parts += [Text(f"notes:\n{notes}", style="dim"), Text(UNIT_NOTE, style="dim")]
    return Group(*parts)


def _bytes(value: int | None) -> str:
    return "-" if value is None else si(value, "B")


def __getattr__(name: str) -> Any:
    """``write_memory_html``, which moved to ``torchcost.report.html``: the old name answers for one release."""
    if name != "write_memory_html":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from torchcost.report import html  # imported on this call only: html imports this module

    warnings.warn(f"{__name__}.{name} is now torchcost.report.html.{name}", DeprecationWarning, stacklevel=2)
    return html.write_memory_html
