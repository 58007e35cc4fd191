"""Wall time and memory of meta-device profiles (no weights allocated).

Run: .venv/bin/python bench/meta_profile_time.py
"""

from __future__ import annotations

import resource
import time

import torch

import torchcost
from torchcost.llm import build_llm
from torchcost.sources import load_model


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(label: str, build) -> None:
    start = time.perf_counter()
    model, inputs = build()
    built = time.perf_counter()
    p = torchcost.profile(model, *inputs)
    done = time.perf_counter()
    print(
        f"{label:34s} params {p.params.total / 1e9:8.3f} G  MACs {p.macs / 1e9:10.3f} G  "
        f"build {built - start:5.2f} s  profile {done - built:5.2f} s  ops {len(p.records):6d}  "
        f"peak RSS {peak_rss_gib():.2f} GiB"
    )


def torchvision_on_meta(name: str):
    loaded = load_model(f"torchvision:{name}", "meta")
    return loaded.model, [torch.randn(loaded.input_sizes[0], device="meta")]


def llama_70b(tokens: int = 2048):
    model = build_llm("llama-3-70b")
    return model, [torch.zeros(1, tokens, dtype=torch.long, device="meta")]


if __name__ == "__main__":
    for name in ("resnet50", "vit_h_14", "regnet_y_128gf"):
        timed(f"torchvision:{name} (meta)", lambda name=name: torchvision_on_meta(name))
    timed("Llama-3-70B config, 2048 tokens (meta)", llama_70b)
