"""Peak memory: torchcost.memory() against an independent measurement of the real run.

References (the measuring code below shares nothing with the estimator):
- CPU: the allocator itself. ``torch.profiler`` with ``profile_memory=True`` records every allocation and free
  of PyTorch's CPU allocator; the peak is the highest running sum over one step, plus the bytes alive before it
  (parameters, buffers, inputs, optimizer state: summed here from their storages).
- CUDA (``--device cuda``, below): ``torch.cuda.max_memory_allocated()`` and ``max_memory_reserved()``.

Cases: torchvision models at batch 1 and 8 (inference) and a training step at batch 8 with SGD and with AdamW;
GPT-2 and a ViT (transformers configs, random weights) the same way; then a Llama-3-70B-sized training step on
meta (bf16, AdamW, 2048 tokens, for CUDA): its breakdown, time and peak RSS. Each model runs in its own process
with one thread; training steps are steady-state ones (two warm-up steps first, gradients set to None).

    .venv/bin/python bench/memory_accuracy.py              # the representative subset (about 30 min, 2 cores)
    .venv/bin/python bench/memory_accuracy.py --zoo        # every torchvision classification model (hours)
    .venv/bin/python bench/memory_accuracy.py resnet18 gpt2 llama-70b    # some cases
    python3 bench/memory_accuracy.py --device cuda     # on a GPU (PYTHONPATH=src): the CUDA cases, about 3 min
    .venv/bin/python bench/memory_accuracy.py --device cuda --check   # those cases' estimates only, no GPU needed

Results go to bench/results/memory.json (CUDA: memory_cuda.json); bench/report.py puts them in
docs/benchmarks.md.

CUDA cases (``--device cuda``): each in a fresh process, two warm-up steps, then one step measured with
``torch.cuda.max_memory_allocated()`` and ``max_memory_reserved()`` (stats reset before it), against
``memory(..., device="meta", gpu="cuda")`` (this GPU's compute capability) and a real tracked run
(``device="cuda"``). The context is what the device holds for this process beyond the allocator's segments
(``mem_get_info``: total - free - reserved), with nothing else on the GPU. The first eight cases are the ones
the CUDA-memory issue reported; the ones marked held out were chosen after the allocator rules were written.
"""

from __future__ import annotations

import copy
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "memory.json"
TIMEOUT_S = 1800
SUBSET = [
    "resnet18",
    "resnet50",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "densenet121",
    "regnet_y_400mf",
    "shufflenet_v2_x1_0",
    "squeezenet1_0",
    "convnext_tiny",
    "swin_t",
    "vit_b_16",
    "gpt2",
    "hf-vit",
]
STEPS = [("inference", 1), ("inference", 8), ("sgd", 8), ("adamw", 8)]
TOKENS = 128
CUDA_RESULTS = HERE / "results" / "memory_cuda.json"
CUDA_PREDICTED = HERE / "results" / "memory_cuda_predicted.json"  # --check: the estimates, before any GPU measured
CUDA_CASES = [  # model, step, batch, held out
    ("resnet50", "adamw", 32, False),
    ("vit_b_16", "adamw", 32, False),
    ("convnext_tiny", "adamw", 32, False),
    ("mobilenet_v3_large", "adamw", 64, False),
    ("efficientnet_b0", "sgd", 64, False),
    ("resnet50", "inference", 64, False),
    ("vit_b_16", "inference", 64, False),
    ("deit_small", "adamw", 64, False),
    ("gpt2", "adamw", 16, True),
    ("bert", "adamw", 16, True),
    ("llama-small", "adamw", 4, True),
    ("hf-vit", "inference", 128, True),
    ("resnet50", "sgd", 96, True),
]


# ------------------------------------------------------------------------------------------------ models


def build(name: str) -> tuple[Any, Callable[[int], tuple[tuple[Any, ...], dict[str, Any]]]]:
    """The model (random weights) and a function from batch size to its inputs."""
    import torch

    torch.manual_seed(0)
    if name == "gpt2":
        import transformers

        model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
        return model, lambda b: ((torch.randint(0, 50257, (b, TOKENS)),), {})
    if name == "hf-vit":
        import transformers

        model = transformers.ViTForImageClassification(transformers.ViTConfig())
        return model, lambda b: ((torch.randn(b, 3, 224, 224),), {})
    if name == "bert":  # BERT-base, 512 tokens
        import transformers

        model = transformers.BertForMaskedLM(transformers.BertConfig())
        return model, lambda b: ((torch.randint(0, 30522, (b, 512)),), {})
    if name == "llama-small":  # a 1B-class Llama (Llama-3.2-1B's shape), 1024 tokens
        import transformers

        config = transformers.LlamaConfig(
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=128256,
        )
        model = transformers.LlamaForCausalLM(config)
        return model, lambda b: ((torch.randint(0, 128256, (b, 1024)),), {})
    if name == "deit_small":
        import timm

        model = timm.create_model("deit_small_patch16_224")
        return model, lambda b: ((torch.randn(b, 3, 224, 224),), {})
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    size = weights.transforms().crop_size[0]
    model = torchvision.models.get_model(name)
    return model, lambda b: ((torch.randn(b, 3, size, size),), {})


def floating_outputs(output: Any) -> list[Any]:
    import torch

    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    if isinstance(output, dict):  # transformers' ModelOutput
        return [t for t in output.values() if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if isinstance(output, list | tuple):
        return [t for item in output for t in floating_outputs(item)]
    return []


def make_optimizer(name: str, model: Any, foreach: bool | None) -> Any:
    import torch

    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=1e-3, foreach=foreach)
    return torch.optim.AdamW(model.parameters(), foreach=foreach)


# ----------------------------------------------------------------------------------------- measurement


def storage_bytes(tensors: list[Any], block: int = 1) -> int:
    storages = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = -(-storage.nbytes() // block) * block
    return sum(storages.values())


class Step:
    """One real step, as a training loop runs it: inference under no_grad, or forward, sum of the outputs,
    backward and the optimizer's step, with two steady-state warm-up steps first."""

    def __init__(self, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any], mode: str, device: str) -> None:
        self.model = copy.deepcopy(model).to(device)
        self.args = tuple(a.to(device) for a in args)
        self.kwargs = {k: v.to(device) for k, v in kwargs.items()}
        self.mode = mode
        self.optimizer = None if mode == "inference" else make_optimizer(mode, self.model, None)
        for _ in range(2):
            self.run()
            self.clear()
        gc.collect()

    def run(self) -> Any:
        import torch

        if self.mode == "inference":
            self.model.eval()
            with torch.no_grad():
                return self.model(*self.args, **self.kwargs)
        self.model.train()
        output = self.model(*self.args, **self.kwargs)
        loss = sum(t.sum() for t in floating_outputs(output))
        loss.backward()
        assert self.optimizer is not None
        self.optimizer.step()
        return output, loss

    def clear(self) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)

    def alive_before(self, block: int = 1) -> int:
        state = [] if self.optimizer is None else list(self.optimizer.state.values())
        tensors = [v for s in state for v in s.values() if hasattr(v, "untyped_storage")]
        tensors = [t for t in tensors if t.device == next(self.model.parameters()).device]
        everything = [*self.model.parameters(), *self.model.buffers(), *self.args, *self.kwargs.values(), *tensors]
        return storage_bytes(everything, block)


def measured_cpu(step: Step) -> int:
    """Peak bytes of the CPU allocator over one step (torch.profiler's allocation events)."""
    from torch.profiler import ProfilerActivity, profile

    before = step.alive_before()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        kept = step.run()
    del kept
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    running = highest = 0
    for event in events:
        running += event.nbytes()
        highest = max(highest, running)
    return before + highest


def one_model(name: str) -> list[dict[str, Any]]:
    import torch

    from torchcost.peak_memory import memory

    torch.set_num_threads(1)
    model, inputs = build(name)
    rows = []
    for mode, batch in STEPS:
        args, kwargs = inputs(batch)
        settings = {} if mode == "inference" else {"optimizer": mode}
        row: dict[str, Any] = {"case": name, "mode": mode, "batch": batch}
        start = time.perf_counter()
        on_meta = memory(model, *args, device="meta", **settings, **kwargs)
        row["meta_s"] = time.perf_counter() - start
        on_cpu = memory(model, *args, device="cpu", **settings, **kwargs)
        row |= {"meta_bytes": on_meta.peak_bytes, "cpu_bytes": on_cpu.peak_bytes, "ops": len(on_meta.timeline) - 1}
        row |= {"breakdown": on_meta.breakdown, "peak_at": on_meta.peak_at.to_dict()}
        row["measured_bytes"] = measured_cpu(Step(model, args, kwargs, mode, "cpu"))
        rows.append(row)
        gc.collect()
    return rows


def llama_70b() -> list[dict[str, Any]]:
    """A Llama-3-70B-sized training step on meta: bf16 weights, AdamW, one sequence of 2048 tokens, for CUDA."""
    import torch
    import transformers

    from torchcost.peak_memory import memory

    config = transformers.LlamaConfig(
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        vocab_size=128256,
    )
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    ids = torch.zeros(1, 2048, dtype=torch.long, device="meta")
    start = time.perf_counter()
    result = memory(model, ids, optimizer="adamw", dtype="bfloat16", device="meta", target="cuda")
    seconds = time.perf_counter() - start
    return [
        {
            "case": "llama-3-70b",
            "mode": "adamw",
            "batch": 1,
            "tokens": 2048,
            "meta_bytes": result.peak_bytes,
            "breakdown": result.breakdown,
            "phase_peaks": result.phase_peaks,
            "peak_at": result.peak_at.to_dict(),
            "ops": len(result.timeline) - 1,
            "params": sum(p.numel() for p in model.parameters()),
            "meta_s": seconds,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "load_average": os.getloadavg()[0],
        }
    ]


# ----------------------------------------------------------------------------------------------- driver


def cuda_case(name: str, mode: str, batch: int, check: bool) -> dict[str, Any]:
    """One CUDA case: torchcost's figures for this GPU, and (unless ``check``) the measured ones."""
    import torch

    from torchcost.peak_memory import memory

    model, inputs = build(name)
    args, kwargs = inputs(batch)
    settings = {} if mode == "inference" else {"optimizer": mode}
    gpu = "cuda" if torch.cuda.is_available() else "h200"
    start = time.perf_counter()
    estimate = memory(model, *args, device="meta", gpu=gpu, **settings, **kwargs)
    row: dict[str, Any] = {"case": name, "mode": mode, "batch": batch, "meta_s": time.perf_counter() - start}
    row |= {"meta_bytes": estimate.peak_bytes, "meta_reserved_bytes": estimate.reserved_bytes}
    row |= {"breakdown": estimate.breakdown, "peak_at": estimate.peak_at.to_dict()}
    if check:
        return row
    step = Step(model, args, kwargs, mode, "cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    kept = step.run()
    torch.cuda.synchronize()
    del kept
    free, total = torch.cuda.mem_get_info()
    row |= {
        "measured_bytes": torch.cuda.max_memory_allocated(),
        "measured_reserved_bytes": torch.cuda.max_memory_reserved(),
    }
    row["context_bytes"] = total - free - torch.cuda.memory_reserved()
    del step
    gc.collect()
    torch.cuda.empty_cache()
    row["cuda_run_bytes"] = memory(model, *args, device="cuda", **settings, **kwargs).peak_bytes
    return row


def cuda_main(check: bool) -> None:
    """The CUDA cases, each in its own process; results to memory_cuda.json."""
    import torch

    if not check and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run on a GPU, or add --check for the estimates only")
    rows = []
    for name, mode, batch, held_out in CUDA_CASES:
        command = [sys.executable, __file__, "--cuda-worker", name, mode, str(batch), *(["--check"] if check else [])]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        row = lines[0] if done.returncode == 0 and lines else {"case": name, "mode": mode, "batch": batch}
        row["error"] = None if lines else done.stderr.strip().splitlines()[-1:]
        row["held_out"] = held_out
        if row.get("measured_bytes"):
            row["error_peak"] = row["meta_bytes"] / row["measured_bytes"] - 1
            row["error_reserved"] = row["meta_reserved_bytes"] / row["measured_reserved_bytes"] - 1
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("breakdown", "peak_at")}), flush=True)
    gpu = "NVIDIA H200 (the spec table entry)" if check else torch.cuda.get_device_name()
    environment = {"date": date.today().isoformat(), "torch": torch.__version__, "gpu": gpu}
    path = CUDA_PREDICTED if check else CUDA_RESULTS
    path.write_text(json.dumps({"environment": environment, "results": rows}, indent=1) + "\n")


def worker(name: str) -> None:
    sys.path.insert(0, str(HERE.parent / "src"))
    rows = llama_70b() if name == "llama-70b" else one_model(name)
    for row in rows:
        print(json.dumps(row))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--worker"]:
        worker(argv[1])
        return
    if argv[:1] == ["--cuda-worker"]:
        sys.path.insert(0, str(HERE.parent / "src"))
        print(json.dumps(cuda_case(argv[1], argv[2], int(argv[3]), check="--check" in argv)))
        return
    if argv[:2] == ["--device", "cuda"]:
        sys.path.insert(0, str(HERE.parent / "src"))
        cuda_main(check="--check" in argv)
        return
    if argv[:1] == ["--zoo"]:
        import torchvision

        names = [*torchvision.models.list_models(module=torchvision.models), "gpt2", "hf-vit", "llama-70b"]
    else:
        names = argv or [*SUBSET, "llama-70b"]
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"results": []}
    rows = {(r["case"], r["mode"], r["batch"]): r for r in data["results"]}
    for name in names:
        print(f"{name} ...", flush=True)
        try:
            done = subprocess.run(
                [sys.executable, __file__, "--worker", name], capture_output=True, text=True, timeout=TIMEOUT_S
            )
            lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                lines = [{"case": name, "mode": "-", "batch": 0, "error": done.stderr.strip().splitlines()[-1:]}]
        except subprocess.TimeoutExpired:
            lines = [{"case": name, "mode": "-", "batch": 0, "error": [f"timed out after {TIMEOUT_S} s"]}]
        for row in lines:
            rows[(row["case"], row["mode"], row["batch"])] = row
            print("  ", json.dumps({k: v for k, v in row.items() if k not in ("breakdown", "peak_at")}), flush=True)
        write(list(rows.values()))


def write(results: list[dict[str, Any]]) -> None:
    import torch

    environment = {
        "date": date.today().isoformat(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": 1,
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"environment": environment, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
