"""LLM inference cost table: Llama-3-8B and -70B configs, bf16, prompt 2048, 256 generated tokens, batch 1 and 32,
on an H100 (spec) and on this machine's CPU (calibrated), with the counting time of each run.

Run: .venv/bin/python bench/llm_table.py
"""

from __future__ import annotations

import torchcost
from torchcost.llm import llm_profile


def main() -> None:
    local = torchcost.hardware("local")
    if local.calibration is None:
        local.calibration = torchcost.calibrate("cpu", progress=False)
    print(
        "| model | batch | hardware | prefill TFLOPs | TTFT | decode GB/step | TPOT | tokens/s | KV cache | "
        "memory | prefill / decode bound | counting s |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for model in ("llama-3-8b", "llama-3-70b"):
        for batch in (1, 32):
            for device in (torchcost.hardware("h100"), local):
                r = llm_profile(model, 2048, 256, batch, dtype="bf16", hardware_name=device, sweep=False)
                middle = r.decode[len(r.decode) // 2]
                memory = f"{r.memory_bytes / 1e9:.1f} GB" + (" (does not fit)" if r.fits is False else "")
                print(
                    f"| {model} | {batch} | {device.name} | {r.prefill.flops / 1e12:.1f} | "
                    f"{r.time_to_first_token_s:.3g} s | {middle.bytes / 1e9:.1f} | "
                    f"{r.time_per_output_token_s * 1e3:.3g} ms | {r.tokens_per_s:.3g} | "
                    f"{r.kv_cache_bytes / 1e9:.2f} GB | {memory} | "
                    f"{r.prefill.bound} / {middle.bound} | {r.counting_s:.1f} |"
                )


if __name__ == "__main__":
    main()
