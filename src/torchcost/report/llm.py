"""Terminal tables for LLM inference cost."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from torchcost.llm import LLMProfile, PhaseCost
from torchcost.report.measurements import seconds
from torchcost.units import si


def _phase_row(table: Table, label: str, phase: PhaseCost) -> None:
    table.add_row(
        label,
        si(phase.macs),
        si(phase.flops),
        si(phase.bytes, "B"),
        f"{phase.intensity:.1f}",
        phase.bound,
        seconds(phase.time_s),
        seconds(phase.overhead_s),
    )


def llm_tables(result: LLMProfile) -> RenderableType:
    summary = Table(title=f"LLM cost: {result.model} on {result.hardware}", show_header=False, title_justify="left")
    summary.add_column("quantity", style="bold")
    summary.add_column("value", justify="right")
    summary.add_column("detail", style="dim")
    summary.add_row(
        "setting",
        f"batch {result.batch}",
        f"prompt {result.prompt_len}, generate {result.gen_len}, "
        f"{result.dtype} activations, {result.weight_bits}-bit weights, {result.kv_dtype} KV cache",
    )
    summary.add_row("params", si(result.params_total), f"{si(result.params_active)} active per token")
    summary.add_row("weights", si(result.weights_bytes, "B"), "")
    summary.add_row(
        "KV cache",
        si(result.kv_cache_bytes, "B"),
        f"{si(result.kv_cache_bytes_per_token, 'B')} per token and sequence; full context, whole batch",
    )
    capacity = si(result.device_memory, "B") if result.device_memory else ""
    fits = {None: "device memory unknown", True: f"fits in {capacity}", False: f"does NOT fit in {capacity}"}
    summary.add_row("memory", si(result.memory_bytes, "B"), f"weights + KV cache; {fits[result.fits]}")
    if result.prefill_activation_bytes is not None:
        summary.add_row(
            "prefill activations",
            si(result.prefill_activation_bytes, "B"),
            "the prefill's peak beyond weights and KV cache (its intermediates and logits)",
        )
    summary.add_row(
        "time to first token", seconds(result.time_to_first_token_s), f"prefill is {result.prefill.bound}-bound"
    )
    summary.add_row(
        "time per output token", seconds(result.time_per_output_token_s), f"decode is {result.decode[-1].bound}-bound"
    )
    summary.add_row("throughput", f"{result.tokens_per_s:,.1f} tokens/s", f"counted in {result.counting_s:.1f} s")

    phases = Table(title="per pass (one decode step = one token for each sequence)", title_justify="left")
    for header in ("pass", "MACs", "FLOPs", "memory access", "FLOP/byte", "bound", "time", "of which overhead"):
        phases.add_column(header, justify="left" if header in ("pass", "bound") else "right")
    _phase_row(phases, f"prefill ({result.prompt_len} tokens)", result.prefill)
    for step in result.decode:
        _phase_row(phases, f"decode at context {step.context}", step)

    parts: list[RenderableType] = [summary, phases]
    if result.sweep:
        sweep = Table(title="batch sweep (decode at the middle context)", title_justify="left")
        for header in ("batch", "memory", "fits", "time per token", "tokens/s"):
            sweep.add_column(header, justify="right")
        for point in result.sweep:
            sweep.add_row(
                str(point.batch),
                si(point.memory_bytes, "B"),
                "yes" if point.fits else "no",
                seconds(point.time_per_token_s),
                f"{point.tokens_per_s:,.0f}",
            )
        parts.append(sweep)
    parts.append(Text("assumptions:\n" + "\n".join(f"- {a}" for a in result.assumptions), style="dim"))
    return Group(*parts)
