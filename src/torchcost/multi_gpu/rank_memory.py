"""What one GPU of the first pipeline stage holds at the peak of a training step.

Parameters, gradients and optimizer state of the rank's stage, each divided over the data-parallel ranks as its
ZeRO stage says (Rajbhandari et al. 2020, Figure 1: stage 1 the optimizer state, 2 the gradients too, 3 the
weights too). Activations: one microbatch's per layer times the microbatches the first stage holds in flight,
``min(microbatches, pp)`` under 1F1B, ``pp (1 + (pp - 1) / (pp vpp))`` interleaved (Megatron-LM
``theoretical_memory_usage.py``); with sequence parallelism every tensor a layer keeps is split over the
tensor-parallel ranks (Korthikanti et al. 2022, Table 2: ``sbh/t (34 + 5as/h)``). Beside them, the temporaries
and kernel workspaces alive at the peak of the rank's own run. Gradients: Megatron-LM and DDP keep them in
buffers that last from step to step, so the peak is where backward starts. FSDP (ZeRO-3) makes them in
backward, sharded, as it frees the activations, and keeps the root module's own weights gathered from forward to
backward (``torch.distributed.fsdp.fully_shard``); its peak is the greatest of four moments: backward starting at
the loss (the root's weights, every activation, the loss's temporaries); the last layer's backward (two layers'
weights gathered, the one running and the one prefetched; the head's activations gone; the layer's own
temporaries); the next layer's (the last layer's activations gone, its gradients whole in the reduce-scatter's
input and sharded); and backward ending (the sharded gradients).
"""

from __future__ import annotations

from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.optimizer_state import state_bytes
from torchcost.multi_gpu.rank_probe import RankCosts
from torchcost.multi_gpu.result import RankMemory
from torchcost.multi_gpu.step_time import stage_ends, stage_split


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
    dense, experts = stage_split(layout, rank, stage_layers)

    def sharded(per_param: int, zero_stage: int) -> int:
        """Bytes of the stage's parameters at ``per_param`` bytes each, sharded from that ZeRO stage on: the
        dense ones over the dp x cp ranks that hold them, the experts over the dp x cp / ep that hold each."""
        if layout.zero < zero_stage:
            return (dense + experts) * per_param
        return dense * per_param // layout.replicas + experts * per_param // layout.expert_replicas

    layer_saved = whole.layer.activations / layout.tp if layout.sp else rank.layer.activations
    first_saved = whole.first.activations / layout.tp if layout.sp else rank.first.activations
    flight = in_flight(layout)
    activations = (layer_saved * stage_layers + first_saved) * flight
    if layout.pp == 1:
        activations += rank.last.activations
    weights, grads = sharded(weight_bytes, 3), sharded(grad_bytes, 2)
    state = sharded(state_bytes(optimizer, weight_bytes), 1)
    saved = round(activations)
    gathered = 0
    if layout.zero < 3:
        moments = {"backward starts": weights + state + grads + saved + rank.transient}
    else:
        root = sum(end.params for end in stage_ends(layout, rank)) * weight_bytes
        layer_weights = 2 * rank.layer.params * weight_bytes  # the layer running and the one prefetched
        gathered = root + layer_weights
        steady = weights + state + root
        # the head's backward is done (its activations and temporaries gone) when the layers' begins
        held = saved - (rank.last.activations if layout.pp == 1 else 0) + rank.layer_transient
        moments = {
            "backward starts": steady + saved + rank.transient,
            "the last layer's backward": steady + layer_weights + held,
        }
        if stage_layers > 1:  # one layer on: its activations gone; its gradients whole (the reduce-scatter's input)
            # and sharded
            scattered = rank.layer.params * grad_bytes
            moments["the next layer's backward"] = (
                steady + layer_weights + held - round(layer_saved) + scattered + scattered // layout.replicas
            )
        moments["backward ends"] = steady + grads
    peak_at = max(moments, key=moments.__getitem__)
    return RankMemory(
        stage="first",
        params=dense + experts,
        parameter_bytes=weights,
        gradient_bytes=grads,
        optimizer_bytes=state,
        activation_bytes=saved,
        transient_bytes=rank.transient,
        gathered_bytes=gathered,
        in_flight=flight,
        total_bytes=moments[peak_at],
        peak_at=peak_at,
    )
