"""Terminal tables for LLM inference cost."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from torchcost.llm_results import LLMProfile, PhaseCost, SweepPoint
from torchcost.report.columns import Column
from torchcost.report.measurements import seconds
from torchcost.report.table_width import FittedTable
from torchcost.units import si

Pass = tuple[str, PhaseCost]
PHASE_COLUMNS: list[Column[Pass]] = [
    Column("pass", lambda p: p[0], numeric=False),
    Column("MACs", lambda p: si(p[1].macs), drop=3),
    Column("FLOPs", lambda p: si(p[1].flops)),
    Column("memory access", lambda p: si(p[1].bytes, "B")),
    Column("FLOP/byte", lambda p: f"{p[1].intensity:.1f}", drop=4),
    Column("bound", lambda p: p[1].bound, numeric=False),
    Column("time", lambda p: seconds(p[1].time_s)),
    Column("eager", lambda p: seconds(p[1].eager_s)),
    Column("of which overhead", lambda p: seconds(p[1].overhead_s), drop=2),
]
SWEEP_COLUMNS: list[Column[SweepPoint]] = [
    Column("batch", lambda p: str(p.batch)),
    Column("memory", lambda p: si(p.memory_bytes, "B")),
    Column("fits", lambda p: "yes" if p.fits else "no"),
    Column("time per token", lambda p: seconds(p.time_per_token_s)),
    Column("tokens/s", lambda p: f"{p.tokens_per_s:,.0f}"),
]


def llm_tables(result: LLMProfile) -> RenderableType:
    title = Text(f"LLM cost: {result.model} on {result.hardware}", style="table.title")
    summary = Table(title=title, show_header=False, title_justify="left")
    summary.add_column("quantity", style="bold", no_wrap=True)
    summary.add_column("value", justify="right", no_wrap=True)
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
    mode = "as a CUDA graph" if result.execution == "graphs" else "eager"
    summary.add_row(
        "time to first token",
        seconds(result.time_to_first_token_s),
        f"{mode}; prefill is {result.prefill.bound}-bound",
    )
    eager = f"; eager (transformers' own loop): {seconds(result.eager_time_per_output_token_s)}"
    summary.add_row(
        "time per output token",
        seconds(result.time_per_output_token_s),
        f"{mode}, as serving engines run decode; it is {result.decode[-1].bound}-bound"
        + (eager if result.execution == "graphs" else ""),
    )
    summary.add_row("throughput", f"{result.tokens_per_s:,.1f} tokens/s", f"counted in {result.counting_s:.1f} s")

    passes = [(f"prefill ({result.prompt_len} tokens)", result.prefill)]
    passes += [(f"decode at context {step.context}", step) for step in result.decode]
    columns = PHASE_COLUMNS if result.execution == "graphs" else [c for c in PHASE_COLUMNS if c.header != "eager"]
    caption = "per pass (one decode step = one token for each sequence)"
    if result.execution == "graphs":
        caption += "; time: replayed as a CUDA graph, eager: op by op from Python"
    phases = FittedTable(columns, passes, title=caption)
    parts: list[RenderableType] = [summary, phases]
    if result.sweep:
        parts.append(FittedTable(SWEEP_COLUMNS, result.sweep, title="batch sweep (decode at the middle context)"))
    parts.append(Text("assumptions:\n" + "\n".join(f"- {a}" for a in result.assumptions), style="dim"))
    return Group(*parts)
