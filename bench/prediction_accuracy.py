"""How well does torchcost predict measured CPU latency? 60+ models (torchvision, timm, transformers) at batch 1
and 8 on this machine: count on meta, predict with this machine's calibration (learned op-time models), measure
with torchcost.measure, and report the error (predicted / measured - 1) per case, per family and overall, with a
log-log scatter of predicted against measured.

The learned models are fitted on sampled ops (predict/learned/sampling.py), never on these models. Run on a
quiet machine, after `torchcost calibrate` (a fresh one is made when none is cached):

    .venv/bin/python bench/prediction_accuracy.py                       # every model, batch 1 and 8
    .venv/bin/python bench/prediction_accuracy.py --models torchvision:resnet18 --batches 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import torchcost
from torchcost.inputs import InputOptions, example_inputs
from torchcost.measure.quiet import busy_cores
from torchcost.predict import predict
from torchcost.prepare import with_batch
from torchcost.sources import load_model

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "prediction.json"
SCATTER = HERE.parent / "docs" / "prediction-accuracy.png"

TORCHVISION = [
    "alexnet", "resnet18", "resnet34", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2",
    "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_1",
    "mnasnet1_0", "efficientnet_b0", "efficientnet_b1", "regnet_x_400mf", "regnet_y_800mf", "densenet121",
    "googlenet", "vgg11", "convnext_tiny", "swin_t", "vit_b_32", "maxvit_t",
]  # fmt: skip
TIMM = [
    "resnet26", "resnet50d", "seresnet18", "mobilenetv3_large_100", "efficientnet_lite0", "ghostnet_100",
    "mixnet_s", "rexnet_100", "regnety_004", "convnext_atto", "convnext_femto", "deit_tiny_patch16_224",
    "vit_small_patch16_224", "levit_128", "mobilevit_xxs", "poolformer_s12", "efficientformer_l1", "fbnetc_100",
    "lcnet_100", "hrnet_w18_small", "dla34", "resmlp_12_224", "edgenext_xx_small", "tf_mobilenetv3_small_100",
]  # fmt: skip
TRANSFORMERS = [
    "bert", "distilbert", "roberta", "albert", "electra", "gpt2", "t5", "vit", "deit", "mobilevit", "convnext",
    "swin",
]  # fmt: skip
MODELS = [f"torchvision:{n}" for n in TORCHVISION] + [f"timm:{n}" for n in TIMM] + [f"hf:{n}" for n in TRANSFORMERS]
SEQ_LEN = 128  # tokens of the text models


def case(spec: str, batch: int, device: torchcost.Hardware, min_time: float) -> dict[str, Any]:
    options = InputOptions(seq_len=SEQ_LEN if spec.startswith("hf:") else None)
    loaded = load_model(spec, "cpu")
    args, kwargs = example_inputs(loaded, options)
    args, kwargs = with_batch((args, kwargs), batch) if batch != 1 else (args, kwargs)
    began = time.perf_counter()
    counted = torchcost.profile(loaded.model, *args, device="meta", **kwargs)
    prediction = predict(counted, device)
    predicted_s = time.perf_counter() - began
    latency = torchcost.measure(loaded.model, *args, min_time=min_time, progress=False, **kwargs)
    return {
        "spec": spec,
        "family": spec.split(":")[0],
        "batch": batch,
        "flops": counted.flops,
        "ops": len(counted.records),
        "predicted_s": prediction.latency_s,
        "module_calls_s": prediction.module_calls_s,
        "measured_s": latency.median_s,
        "cv": latency.cv,
        "error": prediction.latency_s / latency.median_s - 1,
        "count_and_predict_s": predicted_s,
    }


def summary(cases: list[dict[str, Any]]) -> dict[str, Any]:
    def stats(group: list[dict[str, Any]]) -> dict[str, Any]:
        absolute = [abs(c["error"]) for c in group]
        return {
            "cases": len(group),
            "within_10": sum(a <= 0.10 for a in absolute) / len(absolute),
            "within_20": sum(a <= 0.20 for a in absolute) / len(absolute),
            "median_abs_error": statistics.median(absolute),
        }

    families = sorted({c["family"] for c in cases})
    return {
        "all": stats(cases),
        **{family: stats([c for c in cases if c["family"] == family]) for family in families},
        **{f"batch {b}": stats([c for c in cases if c["batch"] == b]) for b in sorted({c["batch"] for c in cases})},
    }


def scatter(cases: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 6))
    for family, marker in (("torchvision", "o"), ("timm", "s"), ("hf", "^")):
        group = [c for c in cases if c["family"] == family]
        axes.scatter([c["measured_s"] * 1e3 for c in group], [c["predicted_s"] * 1e3 for c in group],
                     marker=marker, label=family, alpha=0.7)  # fmt: skip
    low = min(min(c["measured_s"], c["predicted_s"]) for c in cases) * 1e3 / 1.5
    high = max(max(c["measured_s"], c["predicted_s"]) for c in cases) * 1e3 * 1.5
    axes.plot([low, high], [low, high], color="black", linewidth=0.8)
    for band in (1.1, 1.2):
        axes.plot([low, high], [low * band, high * band], color="grey", linewidth=0.5, linestyle="--")
        axes.plot([low, high], [low / band, high / band], color="grey", linewidth=0.5, linestyle="--")
    axes.set(xscale="log", yscale="log", xlabel="measured (ms)", ylabel="predicted (ms)", xlim=(low, high),
             ylim=(low, high), title="CPU latency: predicted vs measured (dashed: ±10%, ±20%)")  # fmt: skip
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of timed runs per case")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--scatter", type=Path, default=SCATTER)
    args = parser.parse_args()
    device = torchcost.hardware("local")
    if device.calibration is None or not device.calibration.observations:
        device.calibration = torchcost.calibrate("cpu", progress=True)
    load = os.getloadavg()[0]
    busy = busy_cores()  # what else uses the CPUs now (the load average still counts the calibration just run)
    cases = []
    for spec in args.models:
        for batch in (int(b) for b in args.batches.split(",")):
            try:
                result = case(spec, batch, device, args.min_time)
            except Exception as error:  # one model that fails does not end the run; it is reported
                print(f"{spec} b{batch}: {type(error).__name__}: {error}")
                continue
            cases.append(result)
            print(f"{spec} b{batch}: predicted {result['predicted_s'] * 1e3:.2f} ms, measured "
                  f"{result['measured_s'] * 1e3:.2f} ms, {result['error']:+.1%}", flush=True)  # fmt: skip
    calibration = device.calibration
    data = {
        "environment": {
            "date": time.strftime("%Y-%m-%d"),
            "cpu": calibration.device_name,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average_at_start": load,
            "busy_cores_at_start": busy,
            "calibration_check": calibration.check,
            "calibration_samples": len(calibration.observations),
        },
        "summary": summary(cases),
        "cases": cases,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=2) + "\n")
    if cases:
        scatter(cases, args.scatter)
    overall = data["summary"]["all"]
    print(f"{overall['cases']} cases: {overall['within_10']:.0%} within 10%, {overall['within_20']:.0%} within 20%, "
          f"median |error| {overall['median_abs_error']:.1%}; wrote {args.results}")  # fmt: skip


if __name__ == "__main__":
    main()
