"""Is torchcost's latency repeatable, and does it agree with a plain timing loop?

1. resnet18 (batch 1, CPU) measured five times with ``torchcost.measure``: the spread of the medians.
2. In the same run, a plain ``time.perf_counter`` loop (warm-up, then N forwards under inference_mode):
   its median next to torchcost's.
3. The latency table for resnet18, resnet50 and mobilenet_v3_small at batch 1 and 8, with CV.

Run: .venv/bin/python bench/latency_stability.py
"""

from __future__ import annotations

import statistics
import time

import torch
import torchvision

import torchcost


def plain_loop_median(model: torch.nn.Module, x: torch.Tensor, runs: int = 30, warmup: int = 3) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 224, 224)
    medians = [torchcost.measure(model, x, progress=False).median_s for _ in range(5)]
    plain = plain_loop_median(model, x)
    spread = (max(medians) - min(medians)) / statistics.median(medians)
    print("resnet18 batch 1, five torchcost.measure medians (ms):", ", ".join(f"{m * 1e3:.2f}" for m in medians))
    print(f"  spread (max - min) / median: {spread:.1%}")
    print(
        f"  plain perf_counter loop median: {plain * 1e3:.2f} ms; torchcost / plain = "
        f"{statistics.median(medians) / plain:.3f}"
    )
    print()
    print(f"{'model':22s} {'batch':>5s} {'median':>10s} {'p90':>10s} {'CV':>6s} {'runs':>5s} {'samples/s':>10s}")
    for name in ("resnet18", "resnet50", "mobilenet_v3_small"):
        net = torchvision.models.get_model(name, weights=None).eval()
        latency = torchcost.measure(net, input_size=(1, 3, 224, 224), batch_sizes=[1, 8], progress=False)
        for b in latency.by_batch:
            print(
                f"{name:22s} {b.batch:5d} {b.median_s * 1e3:8.2f}ms {b.p90_s * 1e3:8.2f}ms {b.cv:6.1%} "
                f"{b.runs:5d} {b.samples_per_s:10.1f}"
            )


if __name__ == "__main__":
    main()
