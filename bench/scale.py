"""How far torchcost scales, and what counting costs on real tensors.

1. On ``meta`` (no weights allocated): Llama-3 8B, 70B and 405B-sized configs at 2048 tokens, a
   ViT-22B-sized ViT, and resnet50: build time, profile time, peak RSS of the process, ops counted.
2. On real CPU tensors: ``profile()`` against one plain forward (eval, ``torch.no_grad()``) of resnet50,
   vit_b_16 and GPT-2 (128 tokens), medians over the same number of runs, side by side in one process; and
   the same profile on a meta copy (``device="meta"``), which computes nothing.

Each measurement runs in a fresh subprocess (its own peak RSS). Results go to bench/results/scale.json:

    .venv/bin/python bench/scale.py [NAME ...]
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scale.json"
TOKENS = 2048
THREADS = 1  # as in peers.py: the machine is shared

LLAMA3 = {  # Meta's published Llama 3 / 3.1 shapes
    "llama3-8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32},
    "llama3-70b": {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64},
    "llama3-405b": {
        "hidden_size": 16384,
        "intermediate_size": 53248,
        "num_hidden_layers": 126,
        "num_attention_heads": 128,
    },
}


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def build_llama(name: str) -> tuple[Any, tuple[Any, ...]]:
    import torch
    import transformers

    config = transformers.LlamaConfig(**LLAMA3[name], num_key_value_heads=8, vocab_size=128256)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    return model, (torch.zeros(1, TOKENS, dtype=torch.long, device="meta"),)


def build_vit_22b() -> tuple[Any, tuple[Any, ...]]:
    """ViT-22B's published shape (Dehghani et al., 2023): width 6144, depth 48, 48 heads, MLP 24576, patch 14,
    224x224 images (256 patches). As a plain ViT (sequential blocks, no QK-norm)."""
    import torch
    import transformers

    config = transformers.ViTConfig(
        hidden_size=6144,
        num_hidden_layers=48,
        num_attention_heads=48,
        intermediate_size=24576,
        patch_size=14,
        image_size=224,
    )
    with torch.device("meta"):
        model = transformers.ViTModel(config, add_pooling_layer=False)
    return model, (torch.randn(1, 3, 224, 224, device="meta"),)


def build_torchvision(name: str, device: str) -> tuple[Any, tuple[Any, ...]]:
    import torch

    from torchcost.sources import load_model

    loaded = load_model(f"torchvision:{name}", device)
    assert loaded.input_sizes is not None
    return loaded.model, (torch.randn(loaded.input_sizes[0], device=device),)


def build_gpt2() -> tuple[Any, tuple[Any, ...]]:
    import torch
    import transformers

    return transformers.GPT2LMHeadModel(transformers.GPT2Config()), (torch.zeros(1, 128, dtype=torch.long),)


META: dict[str, tuple[str, Callable[[], tuple[Any, tuple[Any, ...]]]]] = {
    "resnet50 (meta)": ("torchvision resnet50, 224x224", lambda: build_torchvision("resnet50", "meta")),
    "llama3-8b (meta)": (f"Llama-3-8B-sized, {TOKENS} tokens", lambda: build_llama("llama3-8b")),
    "llama3-70b (meta)": (f"Llama-3-70B-sized, {TOKENS} tokens", lambda: build_llama("llama3-70b")),
    "llama3-405b (meta)": (f"Llama-3.1-405B-sized, {TOKENS} tokens", lambda: build_llama("llama3-405b")),
    "vit-22b (meta)": ("ViT-22B-sized, 224x224, patch 14", build_vit_22b),
}
REAL: dict[str, tuple[str, Callable[[], tuple[Any, tuple[Any, ...]]]]] = {
    "resnet50 (cpu)": ("torchvision resnet50, 224x224", lambda: build_torchvision("resnet50", "cpu")),
    "vit_b_16 (cpu)": ("torchvision vit_b_16, 224x224", lambda: build_torchvision("vit_b_16", "cpu")),
    "gpt2 (cpu)": ("GPT2LMHeadModel(GPT2Config()), 128 tokens", build_gpt2),
}


def measure_meta(name: str) -> dict[str, Any]:
    import torch

    import torchcost

    label, build = META[name]
    start = time.perf_counter()
    model, inputs = build()
    built = time.perf_counter()
    rss_before = peak_rss_bytes()
    p = torchcost.profile(model, *inputs)
    done = time.perf_counter()
    assert p.device == "meta" and str(next(model.parameters()).device) == "meta"
    del torch
    return {
        "name": name,
        "label": label,
        "params": p.params.total,
        "macs": p.macs,
        "flops": p.flops,
        "ops": len(p.records),
        "uncounted": [u.op for u in p.uncounted],
        "build_s": built - start,
        "profile_s": done - built,
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_before_profile_bytes": rss_before,
    }


def median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_real(name: str, repeats: int = 3) -> dict[str, Any]:
    import torch

    import torchcost

    label, build = REAL[name]
    model, inputs = build()
    model.eval()

    def forward() -> Any:
        with torch.no_grad():
            return model(*inputs)

    forward()  # warm-up
    forward_s = median_s(forward, repeats)
    profile_s = median_s(lambda: torchcost.profile(model, *inputs), repeats)
    meta_s = median_s(lambda: torchcost.profile(model, *inputs, device="meta"), repeats)
    p = torchcost.profile(model, *inputs)
    return {
        "name": name,
        "label": label,
        "params": p.params.total,
        "macs": p.macs,
        "ops": len(p.records),
        "repeats": repeats,
        "forward_s": forward_s,
        "profile_s": profile_s,
        "profile_meta_s": meta_s,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def one(name: str) -> None:
    import torch

    torch.set_num_threads(THREADS)
    torch.set_flush_denormal(True)
    result = measure_meta(name) if name in META else measure_real(name)
    print(json.dumps(result))


def main(argv: list[str]) -> None:
    if argv[:1] == ["one"]:
        sys.path.insert(0, str(HERE))
        one(argv[1])
        return
    names = argv or [*META, *REAL]
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"results": []}
    by_name = {r["name"]: r for r in data["results"]}
    for name in names:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "one", name], capture_output=True, text=True, cwd=HERE
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            row: dict[str, Any] = {"name": name, "error": done.stderr.strip().splitlines()[-1:]}
        else:
            row = json.loads(lines[-1])
        by_name[name] = row
        print(json.dumps(row), flush=True)
        data["results"] = [by_name[n] for n in [*META, *REAL] if n in by_name]
        data["date"] = time.strftime("%Y-%m-%d")
        data["threads"] = THREADS
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
