"""Terminal tables for what was measured: latency per batch size, hardware specs, calibration results."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from torchcost.guidelines import Experiment
from torchcost.hardware import Hardware
from torchcost.hardware.calibrate import Calibration
from torchcost.latency import UNSTABLE_CV, Latency
from torchcost.units import duration, ratio, si


def seconds(value: float | None) -> str:
    return "-" if value is None else duration(value)


def conditions(latency: Latency) -> str:
    cudnn = "" if latency.cudnn_benchmark is None else f", cudnn.benchmark={latency.cudnn_benchmark}"
    return (
        f"{latency.device_name} ({latency.device}), {latency.threads} threads, {latency.dtype}, "
        f"torch {latency.torch_version}, eval + inference_mode{cudnn}"
        f"{', denormals flushed' if latency.flush_denormal else ''}"
    )


def latency_table(latency: Latency, title: str = "latency") -> Table:
    table = Table(title=title, caption=conditions(latency), title_justify="left", caption_justify="left")
    table.add_column("batch", justify="right")
    for header in ("median", "p90", "p99", "IQR", "CV", "runs", "samples/s"):
        table.add_column(header, justify="right")
    for b in latency.by_batch:
        table.add_row(
            "as given" if b.batch is None else str(b.batch),
            seconds(b.median_s),
            seconds(b.p90_s),
            seconds(b.p99_s),
            seconds(b.iqr_s),
            Text(f"{b.cv:.1%}", style="bold red" if b.unstable else ""),
            str(b.runs),
            f"{b.samples_per_s:,.1f}" if b.samples_per_s else "-",
        )
    return table


def latency_warnings(latency: Latency) -> Text:
    return Text("\n".join(f"warning: {w}" for w in latency.warnings()), style="yellow")


def latency_report(latency: Latency, title: str = "latency") -> Group:
    return Group(latency_table(latency, title), latency_warnings(latency))


def _rate(hw: Hardware, dtype: str) -> str:
    value = hw.peak.get(dtype)
    return si(value) if value else "-"


def hardware_list_table(devices: list[Hardware]) -> Table:
    table = Table(title="known hardware (peak, dense; FLOP/s, int8 in OP/s)", title_justify="left")
    for header in ("key", "name"):
        table.add_column(header)
    for header in ("fp32", "fp16", "bf16", "int8", "bandwidth", "memory"):
        table.add_column(header, justify="right")
    for hw in devices:
        table.add_row(
            hw.key,
            hw.name,
            *(_rate(hw, dtype) for dtype in ("fp32", "fp16", "bf16", "int8")),
            si(hw.bandwidth, "B/s") if hw.bandwidth else "-",
            si(hw.memory, "B") if hw.memory else "-",
        )
    return table


def hardware_table(hw: Hardware) -> Table:
    """Peaks, bandwidth, memory and the ridge point; measured ones (calibrated) where the spec has none."""
    about = ", ".join(dict.fromkeys([hw.key, hw.kind]))  # "l4, gpu"; this machine's CPU is "cpu", not "cpu, cpu"
    table = Table(title=f"{hw.name} ({about})", show_header=False, title_justify="left")
    table.add_column("quantity", style="bold", no_wrap=True)
    table.add_column("value", justify="right")
    for dtype, rate in hw.peak.items():
        table.add_row(f"peak {dtype}", si(rate, "OP/s" if dtype.startswith("int") else "FLOP/s"))
    calibration = hw.calibration
    if hw.bandwidth:
        table.add_row("memory bandwidth", si(hw.bandwidth, "B/s"))
    elif calibration is not None:
        table.add_row("memory bandwidth (calibrated)", si(calibration.bandwidth, "B/s"))
    else:
        table.add_row("memory bandwidth", "unknown (run torchcost calibrate)")
    table.add_row("memory", si(hw.memory, "B") if hw.memory else "unknown")
    table.add_row("cores / SMs", str(hw.cores) if hw.cores else "unknown")
    ridge = hw.ridge_point()
    matmul = calibration.matmul_flops.get("fp32") if calibration is not None else None
    if ridge:
        table.add_row("ridge point (fp32)", f"{ridge:.1f} FLOP/byte")
    elif calibration is not None and matmul and calibration.bandwidth:
        table.add_row("ridge point (fp32 matmul, calibrated)", f"{matmul / calibration.bandwidth:.1f} FLOP/byte")
    else:
        table.add_row("ridge point (fp32)", "-")
    table.add_row("source", hw.source)
    for note in hw.notes:
        table.add_row("note", note)
    if hw.calibration:
        for name, value, _ in calibration_rows(hw.calibration):
            table.add_row(f"calibrated {name}", value)
    return table


def calibration_rows(calibration: Calibration) -> list[tuple[str, str, str]]:
    """(benchmark, achieved, how it was measured)."""
    details = calibration.details
    rows = [
        (f"matmul {dtype}", si(rate, "FLOP/s"), details.get(f"matmul_{dtype}", ""))
        for dtype, rate in calibration.matmul_flops.items()
    ]
    rows += [
        ("dense conv", si(calibration.conv_flops, "FLOP/s"), details.get("conv", "")),
        ("depthwise conv", si(calibration.depthwise_conv_flops, "FLOP/s"), details.get("depthwise_conv", "")),
        ("bandwidth (copy)", si(calibration.copy_bandwidth, "B/s"), details.get("copy", "")),
        ("bandwidth (add)", si(calibration.add_bandwidth, "B/s"), details.get("add", "")),
        ("per-op overhead", seconds(calibration.op_overhead_s), details.get("op_overhead", "")),
    ]
    rows += [
        (
            f"{name.replace('_', ' ')} overhead",
            seconds(value),
            "fitted with its rate" if "conv" in name else details.get("class_overhead", ""),
        )
        for name, value in calibration.class_overhead_s.items()
    ]
    return rows


def calibration_table(calibration: Calibration, path: Path) -> Table:
    table = Table(
        title=f"calibration: {calibration.device_name} ({calibration.device}, {calibration.threads} threads)",
        caption=f"cached in {path}",
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("benchmark")
    table.add_column("achieved", justify="right")
    table.add_column("detail", style="dim")
    for row in calibration_rows(calibration):
        table.add_row(*row)
    return table


def guideline_table(experiment: Experiment) -> Table:
    """One ShuffleNet V2 experiment: each network's counts, predicted and measured latency, relative to the first."""
    table = Table(
        title=f"{experiment.key}: {experiment.title}",
        caption=f"guideline: {experiment.guideline}",
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("network")
    for header in ("FLOPs", "memory access", "predicted", "measured", "CV", "measured vs first"):
        table.add_column(header, justify="right")
    first = experiment.rows[0].measured_s if experiment.rows else 0.0
    for row in experiment.rows:
        table.add_row(
            row.label,
            si(row.flops),
            si(row.memory_access, "B"),
            seconds(row.predicted_s),
            seconds(row.measured_s),
            Text(f"{row.cv:.1%}", style="bold red" if row.cv > UNSTABLE_CV else ""),
            ratio(row.measured_s, first) if first else "-",
        )
    return table
