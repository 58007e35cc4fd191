"""The headline numbers of a profile as labelled strings: one source for every report's summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torchcost.analysis import Result, as_analysis
from torchcost.records import Profile
from torchcost.report.measurements import conditions
from torchcost.units import duration, percent, si


@dataclass(frozen=True)
class Item:
    label: str
    value: str
    detail: str = ""


def inputs_text(profile: Profile) -> str:
    return ", ".join(f"{spec.name or ''} {list(spec.shape)} {spec.dtype}".lstrip() for spec in profile.inputs)


def run_settings(profile: Profile) -> list[str]:
    """How the forward was counted beyond device and pass: ``["autocast float16", "channels_last"]``."""
    settings = [f"autocast {profile.autocast}"] if profile.autocast is not None else []
    return settings + (["channels_last"] if profile.channels_last else [])


def intensity(profile: Profile) -> float:
    """Arithmetic intensity of the whole model, FLOP per byte of memory access."""
    total = profile.memory_access.total
    return profile.flops / total if total else 0.0


def what_if(profile: Profile) -> str:
    """``"; if stored as fp16/bf16 51.22 MB, int8 25.61 MB"``: the other dtypes' sizes that differ from the
    real size, dtypes of equal size together."""
    sizes: dict[int, list[str]] = {}
    for name, size in profile.size_if.items():
        if size != profile.size_bytes:
            sizes.setdefault(size, []).append(name)
    listed = ", ".join(f"{'/'.join(names)} {si(size, 'B')}" for size, names in sizes.items())
    return f"; if stored as {listed}" if listed else ""


def summary_items(result: Result) -> list[Item]:
    """inputs, params, size, MACs, FLOPs, memory access, arithmetic intensity, and latency when measured."""
    analysis = as_analysis(result)
    profile = analysis.profile
    params, access = profile.params, profile.memory_access
    items = [
        Item(
            "inputs",
            inputs_text(profile),
            ", ".join([f"device {profile.device}", *["forward + backward"] * profile.backward, *run_settings(profile)]),
        ),
        *(Item("", "", note) for note in profile.notes),
        Item(
            "params",
            si(params.total),
            f"{params.total:,} ({params.trainable:,} trainable, {params.frozen:,} frozen); buffers {params.buffers:,}",
        ),
        Item("size", si(profile.size_bytes, "B"), f"{profile.size_bytes:,} bytes" + what_if(profile)),
        Item("MACs", si(profile.macs), f"{profile.macs:,} multiply-accumulates"),
        Item("FLOPs", si(profile.flops), f"{profile.flops:,} (2 per MAC + other ops)"),
        Item("memory access", si(access.total, "B"), f"read {si(access.read, 'B')}, written {si(access.write, 'B')}"),
        Item("arithmetic intensity", f"{intensity(profile):.1f}", "FLOP/byte"),
    ]
    measured = analysis.latency
    if measured is not None:
        detail = f"median; p90 {duration(measured.p90_s)}, CV {100 * measured.cv:.1f}%, {measured.runs} runs"
        items.append(Item("latency", duration(measured.median_s), f"{detail}; {conditions(measured)}"))
        op_times = [r.measured_s for r in profile.records if r.measured_s is not None]
        if op_times:
            items.append(Item("sum of op times", duration(sum(op_times)), "torch.profiler, median per op"))
    if analysis.prediction is not None:
        pred = analysis.prediction
        bounds = ", ".join(
            f"{bound} {percent(t, pred.latency_s)}" for bound, t in sorted(pred.time_by("bound").items())
        )
        items.append(
            Item(
                "predicted latency",
                duration(pred.latency_s),
                f"{pred.execution} on {pred.hardware} ({pred.rates.source}); {bounds}",
            )
        )
    return items


def brief_line(result: Result) -> str:
    """One line: ``torchvision:resnet18  params 11.69 M  size 46.76 MB  MACs 1.81 G ...``."""
    shown = ("params", "size", "MACs", "FLOPs", "memory access", "latency")
    parts = [f"{item.label} {item.value}" for item in summary_items(result) if item.label in shown]
    uncounted = sum(op.count for op in as_analysis(result).profile.uncounted)
    parts.append(f"{uncounted} uncounted op calls" if uncounted else "all ops counted")
    return f"{result.model}: " + " | ".join(parts)


def compare_rows(profiles: Sequence[Result]) -> list[tuple[str, list[str]]]:
    """(quantity, one value per profile) for the side-by-side tables."""
    rows: dict[str, list[str]] = {}
    for column, profile in enumerate(profiles):
        for item in summary_items(profile):
            rows.setdefault(item.label, [""] * len(profiles))[column] = item.value
    return list(rows.items())
