"""How well does the roofline predict measured latency? torchvision models on this CPU, batch 1 and 8.

Calibrates first (unless a calibration is cached), then for each model: count on the CPU, predict with the
calibrated rates, measure with torchcost.measure, and report the error (predicted / measured - 1).
Run: .venv/bin/python bench/prediction_accuracy.py [--min-time 0.5] [--batches 1,8]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torchvision

import torchcost
from torchcost.roofline import predict

MODELS = [
    "alexnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnext50_32x4d",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "squeezenet1_0",
    "squeezenet1_1",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "efficientnet_b0",
    "efficientnet_b1",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_x_1_6gf",
    "densenet121",
    "googlenet",
    "vgg11",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    device = torchcost.hardware("local")
    if device.calibration is None:
        device.calibration = torchcost.calibrate("cpu", progress=False)
    cal = device.calibration
    print(
        f"{device.name}, {torch.get_num_threads()} threads, torch {torch.__version__}; calibrated matmul fp32 "
        f"{cal.matmul_flops['fp32'] / 1e9:.0f} GFLOP/s, conv {cal.conv_flops / 1e9:.0f}, depthwise "
        f"{cal.depthwise_conv_flops / 1e9:.1f}, bandwidth {cal.bandwidth / 1e9:.0f} GB/s, "
        f"overhead {cal.op_overhead_s * 1e6:.1f} us (conv {cal.class_overhead_s.get('conv', 0) * 1e6:.1f} us)"
    )
    print()
    print("| model | batch | GFLOPs | predicted ms | measured ms | error | CV | largest predicted class |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    errors: list[tuple[float, str]] = []
    for name in args.models.split(","):
        model = torchvision.models.get_model(
            name, weights=None, **({"init_weights": False} if name in ("googlenet", "inception_v3") else {})
        ).eval()
        for batch in batches:
            x = torch.randn(batch, 3, 224, 224)
            profile = torchcost.profile(model, x)
            prediction = predict(profile, device)
            latency = torchcost.measure(model, x, min_time=args.min_time, progress=False)
            error = prediction.latency_s / latency.median_s - 1
            by_class = prediction.time_by("op_class")
            top = max(by_class, key=by_class.__getitem__)
            errors.append((error, f"{name} b{batch}"))
            print(
                f"| {name} | {batch} | {profile.flops / 1e9:.2f} | {prediction.latency_s * 1e3:.2f} | "
                f"{latency.median_s * 1e3:.2f} | {error:+.1%} | {latency.cv:.1%} | {top} "
                f"{by_class[top] / prediction.latency_s:.0%} |"
            )
    absolute = [abs(e) for e, _ in errors]
    print()
    print(
        f"cases: {len(errors)}; within +-10%: {sum(a <= 0.10 for a in absolute) / len(absolute):.0%}; "
        f"within +-20%: {sum(a <= 0.20 for a in absolute) / len(absolute):.0%}; "
        f"median |error|: {statistics.median(absolute):.1%}"
    )
    worst = sorted(errors, key=lambda e: abs(e[0]), reverse=True)[:5]
    print("worst: " + "; ".join(f"{label} {error:+.0%}" for error, label in worst))


if __name__ == "__main__":
    main()
