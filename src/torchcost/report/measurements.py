"""Terminal tables for what was measured: latency per batch size, hardware specs, calibration results."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from torchcost.guidelines import Experiment
from torchcost.guidelines import Row as GuidelineRow
from torchcost.hardware import Hardware
from torchcost.hardware.calibration import Calibration
from torchcost.measure.latency import UNSTABLE_CV, BatchLatency, Latency
from torchcost.report.columns import Column
from torchcost.report.table_width import FittedTable
from torchcost.sources.presets import Preset
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


LATENCY_COLUMNS: list[Column[BatchLatency]] = [
    Column("batch", lambda b: "as given" if b.batch is None else str(b.batch)),
    Column("median", lambda b: seconds(b.median_s)),
    Column("p90", lambda b: seconds(b.p90_s), drop=1),
    Column("p99", lambda b: seconds(b.p99_s), drop=3),
    Column("IQR", lambda b: seconds(b.iqr_s), drop=4),
    Column("CV", lambda b: f"{b.cv:.1%}", style=lambda b: "bold red" if b.unstable else ""),
    Column("runs", lambda b: str(b.runs), drop=5),
    Column("samples/s", lambda b: f"{b.samples_per_s:,.1f}" if b.samples_per_s else "-", drop=2),
]


def latency_table(latency: Latency, title: str = "latency") -> FittedTable[BatchLatency]:
    return FittedTable(LATENCY_COLUMNS, latency.by_batch, title=title, caption=conditions(latency))


def latency_warnings(latency: Latency) -> Text:
    return Text("\n".join(f"warning: {w}" for w in latency.warnings()), style="yellow")


def latency_report(latency: Latency, title: str = "latency") -> Group:
    return Group(latency_table(latency, title), latency_warnings(latency))


def _rate(hw: Hardware, dtype: str) -> str:
    value = hw.peak.get(dtype)
    return si(value) if value else "-"


HARDWARE_COLUMNS: list[Column[Hardware]] = [
    Column("key", lambda hw: hw.key, numeric=False),
    Column("name", lambda hw: hw.name, numeric=False, drop=1),
    Column("fp32", lambda hw: _rate(hw, "fp32")),
    Column("fp16", lambda hw: _rate(hw, "fp16"), drop=2),
    Column("bf16", lambda hw: _rate(hw, "bf16")),
    Column("int8", lambda hw: _rate(hw, "int8"), drop=3),
    Column("bandwidth", lambda hw: si(hw.bandwidth, "B/s") if hw.bandwidth else "-"),
    Column("memory", lambda hw: si(hw.memory, "B") if hw.memory else "-"),
]


def hardware_list_table(devices: list[Hardware]) -> FittedTable[Hardware]:
    return FittedTable(HARDWARE_COLUMNS, devices, title="known hardware (peak, dense; FLOP/s, int8 in OP/s)")


def hardware_table(hw: Hardware) -> Table:
    """Peaks, bandwidth, memory and the ridge point; measured ones (calibrated) where the spec has none."""
    about = ", ".join(dict.fromkeys([hw.key, hw.kind]))  # "l4, gpu"; this machine's CPU is "cpu", not "cpu, cpu"
    title = Text(f"{hw.name} ({about})", style="table.title")  # Text, not markup: a CPU's name may hold "[...]"
    table = Table(title=title, show_header=False, title_justify="left")
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
    if hw.kind == "gpu" and hw.clock_hz:
        table.add_row("boost clock", si(hw.clock_hz, "Hz"))
    if hw.l2_bytes:
        table.add_row("L2 cache", si(hw.l2_bytes, "B"))
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
    rows += [(f"host: {name.replace('_', ' ')}", seconds(value), "per op, in a chain of tiny ones")
             for name, value in calibration.host_s.items()]  # fmt: skip
    if calibration.module_call_s:
        rows.append(
            ("module call", seconds(calibration.module_call_s), "beyond its ops: a chain of pass-through modules")
        )
    if calibration.kernel_floor_s:
        rows.append(
            ("smallest kernel", seconds(calibration.kernel_floor_s), "on the device, back to back in a CUDA graph")
        )
    check = calibration.check
    if check:
        held_out = f"{check.get('median_abs_error', 0.0):.1%} median error"
        within = f"{check.get('within_10', 0.0):.0%} within ±10% of {check.get('samples', 0)} held-out samples"
        rows.append(("learned op-time models", held_out, f"{within}; {details.get('learned', '')}"))
    if "probe" in details:
        rows.append(("quiet machine", "checked", details["probe"]))
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


def guideline_table(experiment: Experiment) -> FittedTable[GuidelineRow]:
    """One ShuffleNet V2 experiment: each network's counts, predicted and measured latency, relative to the first."""
    first = experiment.rows[0].measured_s if experiment.rows else 0.0
    columns: list[Column[GuidelineRow]] = [
        Column("network", lambda row: row.label, numeric=False),
        Column("FLOPs", lambda row: si(row.flops)),
        Column("memory access", lambda row: si(row.memory_access, "B")),
        Column("predicted", lambda row: seconds(row.predicted_s)),
        Column("measured", lambda row: seconds(row.measured_s)),
        Column("CV", lambda row: f"{row.cv:.1%}", drop=1, style=lambda row: "bold red" if row.cv > UNSTABLE_CV else ""),
        Column("measured vs first", lambda row: ratio(row.measured_s, first) if first else "-"),
    ]
    title, caption = f"{experiment.key}: {experiment.title}", f"guideline: {experiment.guideline}"
    return FittedTable(columns, experiment.rows, title=title, caption=caption)


PRESET_COLUMNS: list[Column[Preset]] = [
    Column("preset", lambda p: p.name, numeric=False),
    Column("Hub id", lambda p: p.hub_id, numeric=False),
    Column("model type", lambda p: p.model_type, numeric=False, drop=2),
    Column("published params", lambda p: si(p.published_parameters) if p.published_parameters else "-", drop=3),
    Column("also", lambda p: ", ".join(p.aliases) or "-", numeric=False, drop=1),
]


def preset_list_table(shipped: list[Preset]) -> FittedTable[Preset]:
    return FittedTable(
        PRESET_COLUMNS,
        shipped,
        title="checkpoint presets (config.json shipped with torchcost, no weights)",
        caption="name one as it is (torchcost profile llama-3.1-8b) or by its Hub id (hf:meta-llama/Llama-3.1-8B)",
    )
