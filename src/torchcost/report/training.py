"""Terminal table for the cost of a training step: FLOPs by phase, the 6·N·tokens rule, step time and MFU."""

from __future__ import annotations

from rich.table import Table

from torchcost.records import TrainingStep
from torchcost.report.measurements import seconds
from torchcost.units import si


def training_table(step: TrainingStep) -> Table:
    table = Table(title=f"training step ({step.optimizer}, steady state)", show_header=False, title_justify="left")
    table.add_column("quantity", style="bold")
    table.add_column("value", justify="right")
    table.add_column("detail", style="dim")
    forward = step.forward_flops
    table.add_row("forward FLOPs", si(step.forward_flops), f"{step.forward_flops:,}")
    ratio = f"{step.backward_flops / forward:.2f}x forward" if forward else ""
    table.add_row("backward FLOPs", si(step.backward_flops), f"{step.backward_flops:,}; {ratio}")
    per_param = step.optimizer_flops / step.trainable_params if step.trainable_params else 0.0
    table.add_row(
        "optimizer FLOPs",
        si(step.optimizer_flops),
        f"{step.optimizer_flops:,}; {per_param:.1f} per trainable parameter",
    )
    table.add_row("model FLOPs", si(step.model_flops), "forward + backward (what MFU counts)")
    rule = step.six_n_flops
    if rule:
        table.add_row(
            "6·N·tokens",
            si(rule),
            f"N = {step.trainable_params:,} trainable parameters, {step.tokens:,} tokens; "
            f"model FLOPs are {step.model_flops / rule:.2f}x the rule",
        )
    if step.step_s is not None:
        table.add_row("step time", seconds(step.step_s), step.step_source or "")
    if step.mfu is not None and step.peak_flop_per_s:
        table.add_row(
            "MFU", f"{step.mfu:.1%}", f"model FLOPs / (step time x peak {si(step.peak_flop_per_s, 'FLOP/s')})"
        )
    return table
