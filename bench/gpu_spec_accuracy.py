"""How well does torchcost predict GPUs from their spec sheet? Against timm's published inference tables.

Each model of bench/data/*.csv (169 timm models, AMP fp16, NCHW, eager, batch 1024 for most) is built from its
timm config on meta (``pretrained=False``) and counted under autocast fp16 at the table's batch and image size
(counting, not timing: it runs anywhere). Its throughput (batch / predicted batch time) is then predicted on the
spec-table entry of each GPU by two methods, side by side, and compared with the table's ``infer_samples_per_sec``:

- **wave model**: ``hardware/gpu_model.py`` (tiles, waves over the SMs, utilisation by waves; NeuSight-like);
- **plain roofline**: the same counts and spec sheet with no tiles or waves: per op, max(FLOPs / (peak x
  efficiency of its class), bytes / (DRAM bandwidth x share)) + a launch cost.

Both methods' free constants are fitted on the RTX 3090's table only; the RTX 4090 and RTX 5090 tables are held
out and never used to fit. The wave model's fitted constants must equal the ones torchcost ships
(``gpu_model.FITTED``); the run says so when they differ, and predicts with the shipped ones.

    .venv/bin/python bench/gpu_spec_accuracy.py            # writes bench/results/gpu_spec.json and the PNG
    .venv/bin/python bench/gpu_spec_accuracy.py --models resnet50 vit_base_patch16_224 --out /tmp/try.json
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import timm
import torch

import torchcost
from torchcost.hardware import Hardware, gpu_model
from torchcost.records import Profile
from torchcost.roofline import op_class, predict

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results" / "gpu_spec.json"
SCATTER = HERE.parent / "docs" / "gpu-prediction-accuracy.png"
TABLES = {
    "rtx-3090": "timm-infer-amp-nchw-pt240-cu124-rtx3090.csv",
    "rtx-4090": "timm-infer-amp-nchw-pt240-cu124-rtx4090.csv",
    "rtx-5090": "timm-infer-amp-nchw-pt291-cu130-rtx5090.csv",
}
FIT_ON = "rtx-3090"
METHODS = {"wave": "wave model", "roofline": "plain roofline"}  # key in the results: title
PARAM_TOLERANCE = 0.01  # the model built here must have the table's parameter count (timm versions differ)
NOTES = [
    "Measured throughput: timm's published tables (bench/data/README.md), AMP fp16, NCHW, eager PyTorch.",
    "AMP is counted as CUDA's autocast runs it (`profile(..., autocast='fp16')`): matmuls and convolutions in"
    " fp16, the ops of autocast's fp32 list in fp32, each cast a counted copy.",
    "Both methods' constants are fitted on the RTX 3090 table only; the RTX 4090 and 5090 are held out.",
    "The RTX 5090 table was measured with PyTorch 2.9.1 / CUDA 13.0, the others with PyTorch 2.4.0 / CUDA 12.4.",
    "error = predicted / measured throughput - 1; the fit minimises the mean |log(predicted / measured)|.",
]


@dataclass(frozen=True)
class Row:
    gpu: str
    model: str
    image: int
    batch: int
    params_m: float
    samples_per_s: float


def load_rows(models: set[str] | None) -> list[Row]:
    rows = []
    for gpu, name in TABLES.items():
        with open(DATA / name, newline="") as f:
            for r in csv.DictReader(f):
                if models and r["model"] not in models:
                    continue
                size, batch = int(r["infer_img_size"]), int(r["infer_batch_size"])
                rows.append(
                    Row(gpu, r["model"], size, batch, float(r["param_count"]), float(r["infer_samples_per_sec"]))
                )
    return rows


def count(model_name: str, image: int, batch: int) -> tuple[Profile, int]:
    """The model counted on meta at the table's batch and image size, and its parameter count."""
    with torch.device("meta"):
        model = timm.create_model(model_name, pretrained=False).eval()
    x = torch.empty(batch, 3, image, image, device="meta")
    params = sum(p.numel() for p in model.parameters())
    return torchcost.profile(model, x, device="meta", autocast="fp16"), params


class Method(Protocol):
    def seconds(self, c: gpu_model.GpuConstants) -> float: ...


class WaveModel:
    """The wave model's time of every op of one profile as arrays, so that fitting its constants is numpy
    arithmetic; with the shipped constants it equals ``torchcost.predict`` (checked in ``main``)."""

    def __init__(self, counted: Profile, hardware: Hardware, dtype: str) -> None:
        gemm_op, gemm_conv, gemm_base, gemm_waves = [], [], [], []
        memory, depthwise, other = [], [], []
        sms = hardware.cores or 1
        ops = [r for r in counted.records if r.phase == "forward"]
        for i, record in enumerate(ops):
            cls = op_class(record)
            math_dtype = gpu_model.math_dtype(dtype, cls)
            rate = gpu_model.peak(hardware, math_dtype)
            products = gpu_model.gemms(record, cls) if cls in gpu_model.GEMM_CLASSES else []
            scale = record.cost.macs / sum(g.macs for g in products) if cls == "attention" and products else 1.0
            for g in products:
                waves, tile_flops = gpu_model.gemm_waves(g, math_dtype, sms)
                gemm_op.append(i)
                gemm_conv.append(cls == "conv")
                gemm_base.append(scale * waves * tile_flops / (rate / sms))
                gemm_waves.append(waves)
            other.append(0.0 if products else record.cost.flops / rate)
            moved = record.cost.memory_access
            memory.append(moved / gpu_model.bandwidth(record, hardware, 1.0) if moved else 0.0)
            depthwise.append(cls == "depthwise_conv")
        self.ops = len(ops)
        self.gemm_op = np.array(gemm_op, dtype=int)
        self.gemm_conv = np.array(gemm_conv, dtype=bool)
        self.gemm_base = np.array(gemm_base)
        self.gemm_waves = np.array(gemm_waves, dtype=float)
        self.memory = np.array(memory)
        self.depthwise = np.array(depthwise, dtype=bool)
        self.other = np.array(other)

    def seconds(self, c: gpu_model.GpuConstants) -> float:
        gamma = np.where(self.gemm_conv, c.gamma["conv"], c.gamma["matmul"])
        alpha = np.where(self.gemm_conv, c.alpha["conv"], c.alpha["matmul"])
        util = np.clip(gamma - alpha / self.gemm_waves, gpu_model.UTIL_FLOOR, 1.0)
        compute = self.other.copy()
        np.add.at(compute, self.gemm_op, self.gemm_base / util)
        share = np.where(self.depthwise, c.bandwidth["depthwise_conv"], c.bandwidth["memory"])
        return float(np.maximum(compute, self.memory / share).sum() + self.ops * c.launch_s)


class RooflineModel:
    """The plain roofline on the same counts and spec sheet: no tiles, no waves, no L2, no occupancy. Its
    constants reuse ``GpuConstants``: gamma is each class's efficiency (alpha unused), bandwidth the share of DRAM."""

    def __init__(self, counted: Profile, hardware: Hardware, dtype: str) -> None:
        ops = [r for r in counted.records if r.phase == "forward"]
        classes = [op_class(r) for r in ops]
        rates = [gpu_model.peak(hardware, gpu_model.math_dtype(dtype, cls)) for cls in classes]
        self.ops = len(ops)
        self.flop_s = np.array([r.cost.flops / rate for r, rate in zip(ops, rates, strict=True)])
        self.conv = np.array([cls == "conv" for cls in classes], dtype=bool)
        self.gemm = np.array([cls in gpu_model.GEMM_CLASSES for cls in classes], dtype=bool)
        self.depthwise = np.array([cls == "depthwise_conv" for cls in classes], dtype=bool)
        self.memory = np.array([r.cost.memory_access / float(hardware.bandwidth or 1.0) for r in ops])

    def seconds(self, c: gpu_model.GpuConstants) -> float:
        efficiency = np.where(self.conv, c.gamma["conv"], np.where(self.gemm, c.gamma["matmul"], 1.0))
        share = np.where(self.depthwise, c.bandwidth["depthwise_conv"], c.bandwidth["memory"])
        return float(np.maximum(self.flop_s / efficiency, self.memory / share).sum() + self.ops * c.launch_s)


@dataclass(frozen=True)
class Parameter:
    """One fitted constant: how to read and set it, its bounds, and the grid step it starts from."""

    field: str
    key: str | None
    low: float
    high: float
    step: float

    def get(self, c: gpu_model.GpuConstants) -> float:
        value = getattr(c, self.field)
        return float(value if self.key is None else value[self.key])

    def set(self, c: gpu_model.GpuConstants, value: float) -> gpu_model.GpuConstants:
        value = min(self.high, max(self.low, value))
        changed: dict[str, Any] = {
            self.field: value if self.key is None else {**getattr(c, self.field), self.key: value}
        }
        return replace(c, **changed)


SHARED = [
    Parameter("gamma", "matmul", 0.05, 1.0, 0.3),
    Parameter("gamma", "conv", 0.05, 1.0, 0.3),
    Parameter("bandwidth", "memory", 0.05, 1.0, 0.3),
    Parameter("bandwidth", "depthwise_conv", 0.02, 1.0, 0.3),
    # eager dispatch + launch per op is a few microseconds; at the tables' batch 1024 it is not identifiable (left
    # free, the fit pushes it to ~70 us to absorb the per-op misses of norm-heavy models, which batch 1 would pay)
    Parameter("launch_s", None, 1e-6, 10e-6, 3e-6),
]
PARAMETERS = {
    "wave": [*SHARED, Parameter("alpha", "matmul", 0.0, 1.0, 0.3), Parameter("alpha", "conv", 0.0, 1.0, 0.3)],
    "roofline": SHARED,
}
START = gpu_model.GpuConstants(
    gamma={"matmul": 0.7, "conv": 0.6},
    alpha={"matmul": 0.0, "conv": 0.0},
    bandwidth={"memory": 0.8, "depthwise_conv": 0.3},
    launch_s=5e-6,
)


def loss(cases: list[tuple[Method, float]], c: gpu_model.GpuConstants) -> float:
    """Mean absolute log error: over- and under-prediction by the same factor weigh the same."""
    return statistics.fmean(abs(math.log(m.seconds(c) / measured_s)) for m, measured_s in cases)


def fit(cases: list[tuple[Method, float]], parameters: list[Parameter]) -> gpu_model.GpuConstants:
    """Coordinate descent: each constant in turn over a grid of 13 around its value, the grid halving each sweep."""
    best, best_loss = START, loss(cases, START)
    for sweep in range(7):
        for p in parameters:
            step = p.step / 2**sweep
            for candidate in np.linspace(p.get(best) - 6 * step, p.get(best) + 6 * step, 13):
                trial = p.set(best, float(candidate))
                trial_loss = loss(cases, trial)
                if trial_loss < best_loss:
                    best, best_loss = trial, trial_loss
    return best


def rounded(c: gpu_model.GpuConstants) -> gpu_model.GpuConstants:
    """Constants at the precision torchcost ships them: two decimals, the launch cost in whole microseconds."""
    return gpu_model.GpuConstants(
        gamma={k: round(v, 2) for k, v in c.gamma.items()},
        alpha={k: round(v, 2) for k, v in c.alpha.items()},
        bandwidth={k: round(v, 2) for k, v in c.bandwidth.items()},
        launch_s=round(c.launch_s * 1e6) / 1e6,
    )


def as_dict(c: gpu_model.GpuConstants) -> dict[str, Any]:
    return {"gamma": c.gamma, "alpha": c.alpha, "bandwidth": c.bandwidth, "launch_s": c.launch_s}


def summary(errors: list[float]) -> dict[str, Any]:
    absolute = [abs(e) for e in errors]
    if not absolute:
        return {"cases": 0}
    return {
        "cases": len(errors),
        "median_abs_error": statistics.median(absolute),
        "within_10": sum(a <= 0.10 for a in absolute) / len(absolute),
        "within_25": sum(a <= 0.25 for a in absolute) / len(absolute),
        "median_error": statistics.median(errors),
    }


def scatter(cases: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 6), sharex=True, sharey=True)
    measured = [c["measured_samples_per_s"] for c in cases]
    low, high = min(measured) / 2, max(measured) * 2
    line = np.array([low, high])
    for ax, method in zip(axes, METHODS, strict=True):
        for gpu, colour in zip(TABLES, ("tab:blue", "tab:orange", "tab:green"), strict=True):
            points = [(c["measured_samples_per_s"], c[f"{method}_samples_per_s"]) for c in cases if c["gpu"] == gpu]
            label = f"{gpu}{' (fitted on)' if gpu == FIT_ON else ' (held out)'}"
            ax.scatter([p[0] for p in points], [p[1] for p in points], s=9, alpha=0.7, label=label, color=colour)
        ax.plot(line, line, color="black", linewidth=1)
        ax.fill_between(line, line * 0.75, line * 1.25, color="grey", alpha=0.2, label="±25%")
        ax.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high), title=METHODS[method])
        ax.set_xlabel("measured images/s (timm's published tables)")
        ax.legend(loc="upper left")
    axes[0].set_ylabel("predicted images/s (torchcost, from the spec sheet)")
    fig.suptitle("timm models, AMP fp16, batch 1024: predicted vs measured throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def count_all(rows: list[Row]) -> tuple[dict[tuple[str, int, int], Profile], dict[str, str], float]:
    """Each (model, image, batch) counted once; the models that fail or do not match the table, with why."""
    counted: dict[tuple[str, int, int], Profile] = {}
    skipped: dict[str, str] = {}
    began = time.perf_counter()
    for row in rows:
        key = (row.model, row.image, row.batch)
        if key in counted or row.model in skipped:
            continue
        try:
            profile, params = count(*key)
        except Exception as error:  # a model this timm cannot build or count is reported, not fatal
            skipped[row.model] = f"{type(error).__name__}: {str(error)[:120]}"
            continue
        if abs(params / 1e6 / row.params_m - 1) > PARAM_TOLERANCE:
            skipped[row.model] = f"{params / 1e6:.2f} M parameters here, {row.params_m} M in the {row.gpu} table"
            continue
        counted[key] = profile
    return counted, skipped, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", help="only these timm model names")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    rows = load_rows(set(args.models) if args.models else None)
    devices = {gpu: torchcost.hardware(gpu) for gpu in TABLES}
    counted, skipped, count_s = count_all(rows)
    usable = [(row, counted[(row.model, row.image, row.batch)]) for row in rows if row.model not in skipped]
    builders: dict[str, Callable[[Profile, Hardware, str], Method]] = {"wave": WaveModel, "roofline": RooflineModel}
    models = {m: [build(p, devices[r.gpu], "fp16") for r, p in usable] for m, build in builders.items()}
    constants: dict[str, gpu_model.GpuConstants] = {}
    for method in METHODS:
        pairs = zip(models[method], usable, strict=True)
        fitting: list[tuple[Method, float]] = [(m, r.batch / r.samples_per_s) for m, (r, _) in pairs if r.gpu == FIT_ON]
        constants[method] = rounded(fit(fitting, PARAMETERS[method]))
        print(f"{method}: fitted on {FIT_ON}: {as_dict(constants[method])}")
    refit = constants["wave"]
    if refit != gpu_model.FITTED:
        print(
            f"note: the refit differs from the shipped gpu_model.FITTED {as_dict(gpu_model.FITTED)}; predicting"
            " with the shipped constants"
        )
    constants["wave"] = gpu_model.FITTED
    cases = []
    for i, (row, profile) in enumerate(usable):
        case: dict[str, Any] = {
            "gpu": row.gpu,
            "model": row.model,
            "image": row.image,
            "batch": row.batch,
            "gflops": profile.flops / 1e9,
            "gbytes": profile.memory_access.total / 1e9,
            "measured_samples_per_s": row.samples_per_s,
        }
        for method in METHODS:
            seconds = models[method][i].seconds(constants[method])
            case[f"{method}_samples_per_s"] = row.batch / seconds
            case[f"{method}_error"] = row.batch / seconds / row.samples_per_s - 1
        shipped = predict(profile, devices[row.gpu], "fp16").latency_s
        assert math.isclose(row.batch / shipped, case["wave_samples_per_s"], rel_tol=1e-9), (row.model, shipped)
        cases.append(case)
    by_gpu = {m: {g: summary([c[f"{m}_error"] for c in cases if c["gpu"] == g]) for g in TABLES} for m in METHODS}
    held_out = {m: summary([c[f"{m}_error"] for c in cases if c["gpu"] != FIT_ON]) for m in METHODS}
    result = {
        "environment": {
            "date": datetime.date.today().isoformat(),
            "torch": torch.__version__,
            "timm": timm.__version__,
            "count_s": count_s,
        },
        "notes": NOTES,
        "fitted_on": FIT_ON,
        "constants": {m: as_dict(c) for m, c in constants.items()},
        "refit_matches_shipped": refit == gpu_model.FITTED,
        "hardware": {gpu: devices[gpu].to_dict() for gpu in TABLES},
        "models": len({(c["model"], c["image"]) for c in cases}),
        "summary": by_gpu,
        "held_out": held_out,
        "skipped": skipped,
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for gpu in TABLES:
        role = "fitted on" if gpu == FIT_ON else "held out"
        parts = [
            f"{m} median |error| {by_gpu[m][gpu]['median_abs_error']:.1%}, within ±25%"
            f" {by_gpu[m][gpu]['within_25']:.0%}"
            for m in METHODS
            if by_gpu[m][gpu]["cases"]
        ]
        print(f"{gpu} ({role}, {by_gpu['wave'][gpu]['cases']} models): {'; '.join(parts)}")
    print(f"skipped {len(skipped)} models; counted in {count_s:.0f} s")
    if not args.no_plot and cases:
        scatter(cases, SCATTER)
    print(f"wrote {args.out}" + ("" if args.no_plot or not cases else f" and {SCATTER}"))


if __name__ == "__main__":
    main()
