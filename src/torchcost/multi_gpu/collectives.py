"""The time of one NCCL collective on a group of GPUs: the ring algorithm's steps, its bus bandwidth and its
per-step latency.

Bus bandwidth (nccl-tests, ``doc/PERFORMANCE.md``): a ring all-reduce of ``S`` bytes over ``n`` ranks moves
``2 (n - 1) / n * S`` bytes through each rank's link; all-gather and reduce-scatter of ``S`` bytes (the whole
gathered buffer) move ``(n - 1) / n * S``, as does an all-to-all of ``S`` bytes a rank sends; a point-to-point
send moves ``S``.
Latency (NCCL ``src/graph/tuning.cc``, ring, Simple protocol): ``baseLat + steps * hwLat`` with 8.4 µs base and
3.4 µs per NVLink step, 14 µs per network step; a ring all-reduce has ``2 (n - 1)`` steps, the others ``n - 1``.
An all-reduce across nodes may take NCCL's tree instead, when that model is faster: up and down a tree of the
nodes, ``8.4 + 2 ((n / nodes - 1) 4.0 + floor(log2(nodes)) 14)`` µs, moving each byte twice at 92% of the bus
bandwidth (tuning.cc: the tree's ``.92`` and its ``.5`` algorithm-bandwidth ratio), times tuning.cc's
``treeCorrectionFactor`` for the Simple protocol by message size. NCCL's other protocols (LL, LL128), its other
algorithms (NVLS, CollNet, PAT) and its extra ring latency across nodes are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchcost.hardware.interconnect import Interconnect

BASE_LATENCY_S = 8.4e-6  # tuning.cc baseLat[Ring][Simple]
NVLINK_STEP_S = 3.4e-6  # tuning.cc hwLat[NVLINK][Ring][Simple]
NETWORK_STEP_S = 14.0e-6  # tuning.cc hwLat[NET][Ring][Simple], as hwLat[NET][Tree][Simple]
TREE_NVLINK_STEP_S = 4.0e-6  # tuning.cc hwLat[NVLINK][Tree][Simple]
TREE_BUS_SHARE = 0.92  # tuning.cc: a tree all-reduce's bus bandwidth
# tuning.cc treeCorrectionFactor[Simple]: the tree's bandwidth by message size, 64 B x 2^i for i = 0, 1, ...
TREE_CORRECTION = (0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.7, 0.6, 0.6, 0.5, 0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 0.7,
                   0.7, 0.8, 0.9, 0.9, 0.9)  # fmt: skip


# bytes through each rank's link per byte of buffer, by group size (nccl-tests PERFORMANCE.md), and ring steps
def _bus_factor(kind: str, n: int) -> float:
    spread = {"all_reduce": 2 * (n - 1) / n, "all_gather": (n - 1) / n, "reduce_scatter": (n - 1) / n}
    return spread.get(kind, (n - 1) / n if kind == "all_to_all" else 1.0)


def _steps(kind: str, n: int) -> int:
    return 2 * (n - 1) if kind == "all_reduce" else n - 1


@dataclass(frozen=True)
class Group:
    """``size`` ranks whose neighbours are ``stride`` ranks apart, ranks numbered node by node."""

    size: int
    stride: int = 1

    def crosses_nodes(self, node_gpus: int) -> bool:
        return self.size > 1 and self.size * self.stride > node_gpus


def collective_s(kind: str, nbytes: float, group: Group, links: Interconnect) -> float:
    """Seconds for one collective of ``kind`` over a buffer of ``nbytes`` (the whole buffer: what all-reduce
    reduces, what all-gather produces, what reduce-scatter takes in, what a send sends)."""
    if group.size <= 1 or nbytes <= 0:
        return 0.0
    across = group.crosses_nodes(links.node_gpus)
    bandwidth = links.network if across else links.nvlink
    if kind == "send":
        return BASE_LATENCY_S + nbytes / bandwidth
    steps = _steps(kind, group.size)
    nodes = min(group.size, -(-group.size * group.stride // links.node_gpus))
    inter_steps = _steps(kind, nodes) if across else 0  # steps that leave a node (tuning.cc nInterSteps)
    latency = BASE_LATENCY_S + (steps - inter_steps) * NVLINK_STEP_S + inter_steps * NETWORK_STEP_S
    ring = latency + _bus_factor(kind, group.size) * nbytes / bandwidth
    if kind != "all_reduce" or not across:
        return ring
    hops = (group.size // nodes - 1) * TREE_NVLINK_STEP_S + (nodes.bit_length() - 1) * NETWORK_STEP_S
    size_class = int(nbytes) // 64
    correction = TREE_CORRECTION[size_class.bit_length() - 1] if 1 <= size_class < 2 ** len(TREE_CORRECTION) else 1.0
    tree = BASE_LATENCY_S + 2 * hops + 2 * nbytes / (TREE_BUS_SHARE * correction * bandwidth)
    return min(ring, tree)
