"""Decode speed of a small random-weight Llama on this CPU, measured and predicted.

Measured: prefill, then greedy decode steps with the model's DynamicCache, each step timed with perf_counter
(median over the steps, denormals flushed as in torchcost.measure). Predicted: torchcost.llm_profile on the
calibrated local hardware (run `torchcost calibrate` first, or this script calibrates).
Run: .venv/bin/python bench/llm_cpu.py
"""

from __future__ import annotations

import statistics
import time

import torch
import transformers

import torchcost
from torchcost.llm import llm_profile

CONFIG = dict(
    hidden_size=512,
    intermediate_size=1408,
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=4,
    vocab_size=8000,
)
PROMPT, GENERATE = 128, 32


def measured_step_s(model: torch.nn.Module, batch: int) -> float:
    cache = transformers.DynamicCache(config=model.config)
    tokens = torch.zeros(batch, PROMPT, dtype=torch.long)
    times = []
    torch.set_flush_denormal(True)
    with torch.inference_mode():
        logits = model(tokens, past_key_values=cache, use_cache=True).logits
        for _ in range(GENERATE):
            step = logits[:, -1:].argmax(-1)
            start = time.perf_counter()
            logits = model(step, past_key_values=cache, use_cache=True).logits
            times.append(time.perf_counter() - start)
    torch.set_flush_denormal(False)
    return statistics.median(times[2:])  # the first steps warm up


def main() -> None:
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG)).eval()
    local = torchcost.hardware("local")
    if local.calibration is None:
        local.calibration = torchcost.calibrate("cpu", progress=False)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"Llama-style {params / 1e6:.1f} M params, fp32, prompt {PROMPT}, {GENERATE} generated tokens, "
        f"{torch.get_num_threads()} threads, {local.name}"
    )
    print("| batch | measured ms/token | predicted ms/token | measured tokens/s | predicted tokens/s | error |")
    print("|---:|---:|---:|---:|---:|---:|")
    for batch in (1, 4):
        measured = measured_step_s(model, batch)
        predicted = llm_profile(model, PROMPT, GENERATE, batch, dtype="fp32", hardware_name=local, sweep=False)
        tpot = predicted.time_per_output_token_s
        print(
            f"| {batch} | {measured * 1e3:.2f} | {tpot * 1e3:.2f} | {batch / measured:.0f} | "
            f"{predicted.tokens_per_s:.0f} | {tpot / measured - 1:+.0%} |"
        )


if __name__ == "__main__":
    main()
