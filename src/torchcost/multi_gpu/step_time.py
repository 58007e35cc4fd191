"""The time of one optimizer step on the critical pipeline stage, and the collectives the layout implies.

Per microbatch a stage runs its layers' kernels forward and backward (and again forward where recomputation asks),
each layer's tensor-parallel collectives (Megatron's f and g operators: an all-reduce after attention and after
the MLP, forward and backward; with sequence parallelism an all-gather and a reduce-scatter of the same buffer,
Korthikanti et al. 2022, section 4.2.2), and its pipeline sends (one microbatch's hidden states forward, their
gradient back, 1/tp of them with the scatter/gather optimisation of Narayanan et al. 2021, section 4.1; vpp times
as many under interleaving, ibid., section 2.2.2). The 1F1B schedule runs ``microbatches`` of them plus a bubble
of ``(pp - 1) / vpp`` more (ibid., section 2.2). Then the
data-parallel collectives: the gradient all-reduce (ZeRO 0), or reduce-scatter and the weights' all-gather
(ZeRO 1 and 2, Megatron's distributed optimizer); with ZeRO-3 (FSDP) weights are gathered per microbatch for
forward and again for backward, except the root's, which FSDP2 keeps gathered in between. A gradient
reduction overlaps the last microbatch's backward; FSDP's gathers overlap the layers' compute.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchcost.hardware.interconnect import Interconnect
from torchcost.multi_gpu.collectives import Group, collective_s
from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.optimizer_state import step_bytes
from torchcost.multi_gpu.rank_probe import Part, RankCosts
from torchcost.multi_gpu.result import Collective, StepTime


@dataclass(frozen=True)
class StepInputs:
    """What the step time needs besides the layout and the rank's costs."""

    stage_layers: int
    hidden_bytes: int  # one microbatch's hidden states: microbatch x sequence x hidden x activation bytes
    weight_bytes: int
    grad_bytes: int
    optimizer: str
    overlap_grad_reduce: bool
    bandwidth: float | None  # the GPU's memory bandwidth, for the optimizer step


def stage_ends(layout: Layout, rank: RankCosts, stage: str = "first") -> list[Part]:
    """The parts outside the layers a pipeline stage runs: the first stage the embedding's side, the last the
    head's, and a single stage both."""
    if layout.pp == 1:
        return [rank.first, rank.last]
    return [rank.first if stage == "first" else rank.last]


def stage_params(layout: Layout, rank: RankCosts, stage_layers: int, stage: str = "first") -> int:
    """Parameter elements one tensor-parallel rank of a pipeline stage holds (the first: with the embedding)."""
    return rank.layer.params * stage_layers + sum(end.params for end in stage_ends(layout, rank, stage))


def stage_split(layout: Layout, rank: RankCosts, stage_layers: int) -> tuple[int, int]:
    """(dense, expert) parameter elements of the first stage's rank: each kind has its own holders."""
    experts = rank.layer.expert_params * stage_layers
    return stage_params(layout, rank, stage_layers) - experts, experts


def step_time(layout: Layout, rank: RankCosts, given: StepInputs, links: Interconnect) -> StepTime:
    pp, tp, m = layout.pp, layout.tp, layout.microbatches
    tp_group = Group(tp, 1)
    stages = ["first", "last"] if pp > 1 else ["first"]
    parts = {name: _stage_parts(layout, rank, name, given.stage_layers) for name in stages}
    per_layer = max(1, m * given.stage_layers)  # layer passes per step
    collectives = _tensor_parallel(layout, given, tp_group, links)
    tp_s = _seconds(collectives) / per_layer
    routed = _expert_all_to_all(layout, rank, given, links)
    a2a_s = _seconds(routed) / per_layer  # dispatch and combine wait for the router and the experts, as f and g do
    collectives += routed
    ring = _context_ring(layout, rank, given, links)
    # the ring's steps overlap the attention kernels of the chunks already there (Liu et al. 2023, Ring Attention)
    ring_s = max(0.0, _seconds(ring) / per_layer - rank.attention_s)
    sends = []
    if pp > 1:
        send = Collective("pipeline send", "send", given.hidden_bytes / tp, pp, 2 * m * layout.vpp, False, 0.0)
        sends.append(_timed(send, Group(pp, tp * layout.replicas), links))
    pp_s = _seconds(sends) / m
    collectives += ring + sends
    layer_s = given.stage_layers * (tp_s + a2a_s + ring_s)
    times = {name: forward + backward + layer_s + pp_s for name, (forward, backward, _) in parts.items()}
    critical = max(times, key=times.__getitem__)
    forward_s, backward_s, recompute_s = parts[critical]
    microbatch_s = times[critical]
    bubble_s = (pp - 1) / layout.vpp * microbatch_s
    dense, experts = stage_split(layout, rank, given.stage_layers)
    data_parallel = _gradient_collectives(layout, rank, given, dense, experts, links)
    collectives += data_parallel
    dp_s = _seconds(data_parallel)
    dp_exposed = _exposed(layout, given, data_parallel, forward_s, backward_s)
    optimizer_s = _optimizer_s(layout, given, dense, experts)
    total = m * microbatch_s + bubble_s + dp_exposed + optimizer_s
    return StepTime(
        critical_stage=critical,
        compute_s=m * (forward_s + backward_s),
        recompute_s=m * recompute_s,
        tp_comm_s=m * given.stage_layers * tp_s,
        cp_exposed_s=m * given.stage_layers * ring_s,
        ep_comm_s=m * given.stage_layers * a2a_s,
        pp_comm_s=m * pp_s,
        bubble_s=bubble_s,
        dp_comm_s=dp_s,
        dp_exposed_s=dp_exposed,
        optimizer_s=optimizer_s,
        total_s=total,
        collectives=collectives,
    )


def _gradient_collectives(
    layout: Layout, rank: RankCosts, given: StepInputs, dense: int, experts: int, links: Interconnect
) -> list[Collective]:
    """The data-parallel collectives: the dense weights' over the dp x cp ranks that hold them, the experts' over
    the dp x cp / ep that hold the same experts."""
    dense_layer = rank.layer.params - rank.layer.expert_params
    found = _data_parallel(layout, given, dense, dense_layer, Group(layout.replicas, layout.tp), links)
    if experts:
        group = Group(layout.expert_replicas, layout.tp * layout.cp * layout.ep)
        found += _data_parallel(layout, given, experts, rank.layer.expert_params, group, links, "expert ")
    return found


def _optimizer_s(layout: Layout, given: StepInputs, dense: int, experts: int) -> float:
    """The optimizer step at memory bandwidth, over the parameters this rank updates (its ZeRO shard)."""
    if not given.bandwidth:
        return 0.0
    sharded = layout.zero >= 1
    updated = dense / layout.replicas + experts / layout.expert_replicas if sharded else dense + experts
    return updated * step_bytes(given.optimizer, given.weight_bytes, given.grad_bytes) / given.bandwidth


def _seconds(collectives: list[Collective]) -> float:
    return sum(c.seconds * c.count for c in collectives)


def _stage_parts(layout: Layout, rank: RankCosts, stage: str, stage_layers: int) -> tuple[float, float, float]:
    """(forward, backward with recomputation, recomputation) kernel seconds of one microbatch on a stage."""
    ends = stage_ends(layout, rank, stage)
    layer = rank.layer
    forward = layer.forward_s * stage_layers + sum(end.forward_s for end in ends)
    recompute = layer.recompute_s * stage_layers
    backward = layer.backward_s * stage_layers + recompute + sum(end.backward_s for end in ends)
    return forward, backward, recompute


def _timed(collective: Collective, group: Group, links: Interconnect) -> Collective:
    seconds = collective_s(collective.kind, collective.nbytes, group, links)
    return Collective(
        collective.name, collective.kind, collective.nbytes, group.size, collective.count, collective.hidden, seconds
    )


def _tensor_parallel(layout: Layout, given: StepInputs, group: Group, links: Interconnect) -> list[Collective]:
    """Each layer's f and g, forward and backward (and in the recomputed forward), per step on one rank."""
    if layout.tp == 1:
        return []
    per_layer = 4 + (2 if layout.recompute == "full" else 0)
    count = per_layer * given.stage_layers * layout.microbatches
    if layout.sp:
        kinds = [("tensor-parallel all-gather", "all_gather"), ("tensor-parallel reduce-scatter", "reduce_scatter")]
    else:
        kinds = [("tensor-parallel all-reduce", "all_reduce")]
    return [
        _timed(Collective(name, kind, given.hidden_bytes, group.size, count, False, 0.0), group, links)
        for name, kind in kinds
    ]


def _expert_all_to_all(layout: Layout, rank: RankCosts, given: StepInputs, links: Interconnect) -> list[Collective]:
    """Each MoE layer sends its tokens to the ranks of their experts and takes the results back (dispatch and
    combine), forward and backward: 4 all-to-alls of ``tokens x top_k x hidden`` (Lepikhin et al. 2020, GShard)."""
    if layout.ep == 1:
        return []
    count = 4 * round(rank.moe_layers * given.stage_layers) * layout.microbatches
    tokens = Collective(
        "expert all-to-all (dispatch, combine)",
        "all_to_all",
        given.hidden_bytes * rank.top_k,
        layout.ep,
        count,
        False,
        0.0,
    )
    return [_timed(tokens, Group(layout.ep, layout.tp * layout.cp), links)]


def _context_ring(layout: Layout, rank: RankCosts, given: StepInputs, links: Interconnect) -> list[Collective]:
    """Ring attention's sends per step: each layer passes its keys and values on cp - 1 times forward, and in
    backward passes them and their gradients again (Megatron-LM's context parallelism, after Ring Attention)."""
    if layout.cp == 1:
        return []
    count = 3 * (layout.cp - 1) * given.stage_layers * layout.microbatches
    ring = Collective("context-parallel ring (keys, values)", "send", rank.kv_bytes, layout.cp, count, True, 0.0)
    return [_timed(ring, Group(layout.cp, layout.tp), links)]


def _data_parallel(
    layout: Layout, given: StepInputs, params: int, layer_params: int, group: Group, links: Interconnect, what: str = ""
) -> list[Collective]:
    """The gradient and weight collectives of ``params`` (of which ``layer_params`` per layer) over ``group``."""
    if group.size == 1:
        return []
    grads = params * given.grad_bytes
    weights = params * given.weight_bytes
    if layout.zero == 0:
        found = [Collective(f"{what}gradient all-reduce", "all_reduce", grads, group.size, 1, True, 0.0)]
    elif layout.zero < 3:
        found = [
            Collective(f"{what}gradient reduce-scatter", "reduce_scatter", grads, group.size, 1, True, 0.0),
            Collective(f"{what}weight all-gather", "all_gather", weights, group.size, 1, False, 0.0),
        ]
    else:
        m = layout.microbatches
        layers = layer_params * given.stage_layers * given.weight_bytes  # the root's weights stay gathered
        found = [
            Collective(f"{what}weight all-gather (forward)", "all_gather", weights, group.size, m, True, 0.0),
            Collective(f"{what}weight all-gather (backward)", "all_gather", layers, group.size, m, True, 0.0),
            Collective(f"{what}gradient reduce-scatter", "reduce_scatter", grads, group.size, m, True, 0.0),
        ]
    return [_timed(collective, group, links) for collective in found]


def _exposed(
    layout: Layout, given: StepInputs, collectives: list[Collective], forward_s: float, backward_s: float
) -> float:
    """Data-parallel seconds not hidden behind compute."""
    if layout.zero == 3:  # gathers and reductions run beside the layers' compute, microbatch by microbatch
        per_microbatch = sum(c.seconds for c in collectives)
        return layout.microbatches * max(0.0, per_microbatch - forward_s - backward_s)
    hidden_by = backward_s if given.overlap_grad_reduce else 0.0
    reduce = sum(c.seconds for c in collectives if c.hidden)
    rest = sum(c.seconds for c in collectives if not c.hidden)
    return max(0.0, reduce - hidden_by) + rest
