"""The roofline chart (matplotlib): each op a point at (arithmetic intensity, achieved FLOP/s), sized by its
time, under the bandwidth roof and the compute ceilings of the chosen hardware."""

from __future__ import annotations

from pathlib import Path

from torchcost.predict import Prediction
from torchcost.predict.taxonomy import rate_class
from torchcost.records import Profile

CLASS_COLORS = {
    "matmul": "tab:blue",
    "attention": "tab:purple",
    "conv": "tab:green",
    "depthwise_conv": "tab:orange",
    "other": "tab:gray",
}


def plot_roofline(profile: Profile, prediction: Prediction, path: str | Path) -> Path:
    """Write the chart to ``path`` (PNG, SVG or PDF by its suffix). Measured op times when the profile has
    them, else predicted ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    timed = "measured" if any(r.measured_s for r in profile.records) else "predicted"
    points: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for op in prediction.ops:
        seconds = profile.records[op.index].measured_s or op.time_s
        if op.flops == 0 or op.bytes == 0 or seconds <= 0:
            continue
        xs, ys, sizes = points.setdefault(rate_class(op.op_class), ([], [], []))
        xs.append(op.intensity)
        ys.append(op.flops / seconds)
        sizes.append(seconds)
    largest = max((max(s) for _, _, s in points.values()), default=1.0)
    for cls, (xs, ys, sizes) in points.items():
        scaled = [20 + 400 * s / largest for s in sizes]
        ax.scatter(xs, ys, s=scaled, alpha=0.6, color=CLASS_COLORS.get(cls, "black"), label=cls)

    rates = prediction.rates
    intensities = [x for xs, _, _ in points.values() for x in xs] or [1.0]
    low, high = min(intensities) / 2, max(max(intensities) * 2, 2 * max(rates.compute.values()) / rates.bandwidth)
    top = max(rates.compute.values())
    ax.plot([low, top / rates.bandwidth], [rates.bandwidth * low, top], "k--", lw=1, label="bandwidth roof")
    for cls in ("matmul", "conv", "depthwise_conv"):
        rate = rates.compute[cls]
        ridge = rate / rates.bandwidth
        ax.plot([ridge, high], [rate, rate], color=CLASS_COLORS[cls], lw=1)
        ax.annotate(f"{cls} {rate / 1e9:.0f} GFLOP/s", (high, rate), ha="right", va="bottom", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel(f"achieved FLOP/s ({timed} time)")
    ax.set_title(f"{profile.model} on {prediction.hardware} ({rates.source}); point area ~ {timed} time")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", alpha=0.2)
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out
