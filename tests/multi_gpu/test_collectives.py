import pytest

from torchcost.hardware.interconnect import interconnect
from torchcost.multi_gpu.collectives import Group, collective_s

# 8 GPUs a node, NVLink 370.8e9 B/s (18 links x 20.6e9, NCCL's topo.h), network 50e9 B/s per GPU
H100 = interconnect("h100-sxm")


def test_all_reduce_inside_a_node():
    # ring all-reduce of 1e9 bytes on 8 GPUs: 8.4 us + 2*7 NVLink steps of 3.4 us, and 2*7/8 * 1e9 / 370.8e9 s
    assert collective_s("all_reduce", 1e9, Group(8), H100) == pytest.approx(8.4e-6 + 14 * 3.4e-6 + 1.75e9 / 370.8e9)


def test_all_gather_across_nodes_runs_at_the_network_rate():
    # 4 ranks 8 apart (data parallel beside tp 8): one per node, every one of the 3 steps leaves a node
    assert collective_s("all_gather", 4e8, Group(4, 8), H100) == pytest.approx(8.4e-6 + 3 * 14e-6 + 0.75 * 4e8 / 50e9)


def test_a_group_on_two_nodes_has_one_network_step_each_way():
    # 16 consecutive ranks on 2 nodes: reduce-scatter has 15 steps, 1 of them between the nodes (nNodes - 1)
    expected = 8.4e-6 + 14 * 3.4e-6 + 1 * 14e-6 + 15 / 16 * 1e6 / 50e9
    assert collective_s("reduce_scatter", 1e6, Group(16), H100) == pytest.approx(expected)


def test_an_all_reduce_over_many_nodes_takes_the_tree_when_it_is_small():
    # 64 ranks 8 apart, one a node. Ring: 8.4 us + 2*63 network steps of 14 us + 2*63/64 * S / 50e9.
    # Tree: 8.4 us + 2 * log2(64) * 14 us, and 2 S / (0.92 * c * 50e9), where c is NCCL's tree correction for
    # S / 64 = 15,625 (2^13 <= 15,625 < 2^14: the 14th entry, 0.5)
    ring = 8.4e-6 + 126 * 14e-6 + 126 / 64 * 1e6 / 50e9
    tree = 8.4e-6 + 2 * 6 * 14e-6 + 2 * 1e6 / (0.92 * 0.5 * 50e9)
    assert tree < ring and collective_s("all_reduce", 1e6, Group(64, 8), H100) == pytest.approx(tree)
    ring = 8.4e-6 + 126 * 14e-6 + 126 / 64 * 1e10 / 50e9
    assert collective_s("all_reduce", 1e10, Group(64, 8), H100) == pytest.approx(ring)  # the ring moves less


def test_a_send_and_a_group_of_one():
    assert collective_s("send", 5e7, Group(2, 8), H100) == pytest.approx(8.4e-6 + 5e7 / 50e9)
    assert collective_s("all_reduce", 1e9, Group(1), H100) == 0.0


def test_unknown_interconnect_names_the_known_ones():
    with pytest.raises(ValueError, match="no interconnect is known for 'l4'; multi-GPU estimates know h100-sxm"):
        interconnect("l4")
