"""``parallel()``: memory per rank and step time of one training step under a parallel layout, from the costs
of one rank's share of the model counted on meta (``rank_probe``), its memory (``rank_memory``), and its step
time with the collectives the layout implies (``step_time``)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchcost.errors import ProfilingError
from torchcost.hardware import hardware as find_hardware
from torchcost.hardware.interconnect import interconnect
from torchcost.hardware.spec import Hardware
from torchcost.llm_models import build_llm
from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.optimizer_state import MOMENT_BYTES
from torchcost.multi_gpu.rank_memory import rank_memory
from torchcost.multi_gpu.rank_probe import InputMaker, RankCosts, Share, hidden_size, layer_list, probe, short_dtype
from torchcost.multi_gpu.result import ParallelEstimate
from torchcost.multi_gpu.step_time import StepInputs, step_time
from torchcost.multi_gpu.tensor_parallel import TensorPlan
from torchcost.peak_memory.cuda_libraries import CONTEXT_ALLOWANCE

NOT_COUNTED = (
    "not counted: the vocabulary-parallel embedding's all-reduce and the cross entropy's per-token all-reduces; "
    "the CUDA caching allocator's rounding and cached blocks; the host's per-op dispatch (taken as hidden behind "
    "the kernels)"
)


@dataclass(frozen=True)
class Training:
    """What each step does, besides the layout."""

    seq_len: int = 2048
    optimizer: str = "adamw"
    dtype: torch.dtype = torch.bfloat16  # weights and activations
    grad_bytes: int = 4  # fp32 gradients, as Megatron-LM keeps them (2: in the weights' dtype, as ZeRO's paper)
    overlap_grad_reduce: bool = True  # the data-parallel reduction runs during the last microbatch's backward


@dataclass
class Probes:
    """Rank costs already found, by share: a layout search probes each once."""

    model: nn.Module
    make_inputs: InputMaker
    seq_len: int
    hardware: Hardware
    dtype: torch.dtype
    plan: TensorPlan | None = None
    found: dict[Share, RankCosts] = field(default_factory=dict)

    def get(self, share: Share) -> RankCosts:
        if share not in self.found:
            self.found[share] = probe(
                self.model, self.make_inputs, self.seq_len, share, self.hardware, self.dtype, self.plan
            )
        return self.found[share]


def token_inputs(model: nn.Module | None = None) -> InputMaker:
    """Token ids for a causal LM, with themselves as labels (the loss is the model's own), and
    ``use_cache=False`` where the forward takes it: a training step keeps no KV cache."""
    takes_cache = model is not None and "use_cache" in inspect.signature(model.forward).parameters

    def make(batch: int, seq_len: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
        ids = torch.zeros(batch, seq_len, dtype=torch.long)
        return (ids,), {"labels": ids} | ({"use_cache": False} if takes_cache else {})

    return make


def parallel(
    model: nn.Module | str,
    layout: Layout,
    hardware: str | Hardware = "h100-sxm",
    training: Training | None = None,
    plan: TensorPlan | None = None,
    probes: Probes | None = None,
) -> ParallelEstimate:
    """Memory per rank and step time of one training step of ``model`` under ``layout``, on ``layout.gpus`` GPUs
    of ``hardware`` (a spec-table name with a known interconnect: h100-sxm, h200, a100-80gb, a100-40gb).

    ``model`` is a causal LM taking ``input_ids`` and ``labels`` (best built on meta), or its spec: a preset
    (``llama-3.1-70b``), a Hub id or ``hf:TYPE``, built on meta. Nothing runs on a GPU: each rank's share is
    counted on a meta copy cut to two layers (``torchcost.multi_gpu.rank_probe``). ``plan`` names the modules
    tensor parallelism splits, when their names are not the usual ones.
    """
    model = build_llm(model) if isinstance(model, str) else model
    training = training or Training()
    if training.optimizer not in MOMENT_BYTES:
        raise ProfilingError(f"optimizer {training.optimizer!r}: give one of {', '.join(MOMENT_BYTES)}")
    gpu = find_hardware(hardware) if isinstance(hardware, str) else hardware
    links = interconnect(gpu.key)
    _, layers = layer_list(model)
    layout.check(len(layers))
    layout.check_sequence(training.seq_len)
    probes = probes or Probes(model, token_inputs(model), training.seq_len, gpu, training.dtype, plan)
    rank = probes.get(Share(layout.tp, layout.microbatch, layout.recompute, layout.cp, layout.ep, layout.sp))
    whole = probes.get(Share(1, layout.microbatch, layout.recompute, layout.cp))  # sequence parallelism splits it
    unsplit = probes.get(Share(1, layout.microbatch, layout.recompute))  # the model's FLOPs
    stage_layers = len(layers) // layout.pp
    weight_bytes = training.dtype.itemsize
    memory = rank_memory(layout, rank, whole, stage_layers, weight_bytes, training.grad_bytes, training.optimizer)
    hidden_bytes = layout.microbatch * training.seq_len // layout.cp * hidden_size(model) * weight_bytes
    given = StepInputs(
        stage_layers, hidden_bytes, weight_bytes, training.grad_bytes, training.optimizer,
        training.overlap_grad_reduce, gpu.bandwidth,
    )  # fmt: skip
    step = step_time(layout, rank, given, links)
    per_microbatch = unsplit.layer.flops * len(layers) + unsplit.first.flops + unsplit.last.flops
    model_flops = round(per_microbatch) * layout.microbatches * layout.dp  # cp ranks share each sequence
    peak = gpu.peak.get(short_dtype(training.dtype))
    notes = [*rank.notes, NOT_COUNTED]
    if gpu.memory is None:
        notes.append(f"{gpu.name}: memory size unknown, so nothing says whether it fits")
    return ParallelEstimate(
        model=type(model).__name__,
        hardware=gpu.name,
        layout=layout,
        seq_len=training.seq_len,
        memory=memory,
        step=step,
        tokens_per_s=layout.global_batch * training.seq_len / step.total_s,
        model_flops=model_flops,
        mfu=model_flops / (step.total_s * layout.gpus * peak) if peak else None,
        device_memory=gpu.memory,
        context_bytes=CONTEXT_ALLOWANCE,
        links=links,
        notes=notes,
    )
