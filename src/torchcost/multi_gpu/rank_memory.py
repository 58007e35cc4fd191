"""What one GPU of the first pipeline stage holds at the peak of a training step.

Parameters, gradients and optimizer state of the rank's stage, each divided over the data-parallel ranks as its
ZeRO stage says (Rajbhandari et al. 2020, Figure 1: stage 1 the optimizer state, 2 the gradients too, 3 the
weights too). Activations: one microbatch's per layer times the microbatches the first stage holds in flight,
``min(microbatches, pp)`` under 1F1B, ``pp (1 + (pp - 1) / (pp vpp))`` interleaved (Megatron-LM
``theoretical_memory_usage.py``); with sequence parallelism every tensor a layer keeps is split over the
tensor-parallel ranks (Korthikanti et al. 2022, Table 2: ``sbh/t (34 + 5as/h)``). ZeRO-3 also holds one layer's
weights and gradients gathered whole (DeepSpeed's estimator: 4 bytes per parameter of the largest layer, fp16).
"""

from __future__ import annotations

from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.rank_probe import RankCosts
from torchcost.multi_gpu.result import RankMemory
from torchcost.multi_gpu.step_time import stage_params

# Optimizer state bytes per parameter with 16-bit weights: an fp32 master copy (4), and Adam's two fp32 moments
# (8) or SGD's momentum (4). Megatron-LM's 18 bytes per parameter = 2 weight + 4 fp32 gradient + these 12.
OPTIMIZER_BYTES = {"adamw": 12, "adam": 12, "sgd-momentum": 8, "sgd": 4}


def in_flight(layout: Layout) -> float:
    """Microbatches whose activations the first pipeline stage holds at once."""
    if layout.vpp > 1:
        return layout.pp * (1 + (layout.pp - 1) / (layout.pp * layout.vpp))
    return min(layout.microbatches, layout.pp)


def rank_memory(
    layout: Layout,
    rank: RankCosts,
    whole: RankCosts,
    stage_layers: int,
    weight_bytes: int,
    grad_bytes: int,
    optimizer: str,
) -> RankMemory:
    """``rank``: the costs of one tensor-parallel rank; ``whole``: of the unsplit model (tp 1), which sequence
    parallelism splits evenly."""
    params = stage_params(layout, rank, stage_layers)
    shard = {
        name: layout.dp if layout.zero >= stage else 1
        for name, stage in (("params", 3), ("grads", 2), ("optimizer", 1))
    }
    layer_saved = whole.layer.activations / layout.tp if layout.sp else rank.layer.activations
    first_saved = whole.first.activations / layout.tp if layout.sp else rank.first.activations
    flight = in_flight(layout)
    activations = (layer_saved * stage_layers + first_saved) * flight
    if layout.pp == 1:
        activations += rank.last.activations
    return RankMemory(
        stage="first",
        params=params,
        parameter_bytes=params * weight_bytes // shard["params"],
        gradient_bytes=params * grad_bytes // shard["grads"],
        optimizer_bytes=params * OPTIMIZER_BYTES[optimizer] // shard["optimizer"],
        activation_bytes=round(activations),
        gathered_bytes=rank.layer.params * 2 * weight_bytes if layout.zero == 3 else 0,
        in_flight=flight,
    )
