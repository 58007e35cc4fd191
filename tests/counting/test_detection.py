"""RoI Align, NMS and EmbeddingBag, with the hand arithmetic beside each number."""

import pytest
import torch

from tests.conftest import count, only

torchvision = pytest.importorskip("torchvision")


def test_roi_align_samples():
    features = torch.randn(1, 4, 16, 16)
    boxes = torch.tensor([[0, 0.0, 0.0, 8.0, 8.0], [0, 2.0, 2.0, 10.0, 12.0]])  # K = 2
    cost = only(count(torchvision.ops.roi_align, features, boxes, (3, 3), 1.0, 2), "torchvision.roi_align")
    # 2 boxes x 4 channels x 3 x 3 = 72 outputs, 2 x 2 samples each: 288 samples x (7 + 1) + 72 divides
    assert cost.flops == 288 * 8 + 72
    # 4 neighbours per sample (4,608 bytes) is more than the 4 x 16 x 16 x 4 = 4,096-byte map: the map, and the boxes
    assert cost.bytes_read == 4096 + 2 * 5 * 4


def test_nms_compares_every_pair_at_most():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 9, 9.0]])
    cost = only(count(torchvision.ops.nms, boxes, torch.rand(4), 0.5), "torchvision.nms")
    # sort 4 x 2 = 8, areas 4 x 3 = 12, 6 pairs x 13 = 78
    assert cost.flops == 8 + 12 + 78


@pytest.mark.parametrize(
    ("mode", "weighted", "flops"),
    [("sum", False, 6 * 4), ("mean", False, 24 + 2 * 4), ("sum", True, 2 * 24), ("max", False, 24)],
)
def test_embedding_bag(mode, weighted, flops):
    bag = torch.nn.EmbeddingBag(100, 4, mode=mode)
    indices, offsets = torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([0, 2])  # 6 lookups of D = 4 into 2 bags
    weights = torch.rand(6) if weighted else None
    cost = only(count(bag, indices, offsets, per_sample_weights=weights), "aten._embedding_bag")
    assert cost.flops == flops
    # reads 6 rows of 4 floats (not the 100-row table), 6 + 2 int64 indices and offsets, and the weights
    assert cost.bytes_read == 6 * 4 * 4 + 8 * 8 + (6 * 4 if weighted else 0)


def test_unique_sorts_then_compares_neighbours():
    # batched NMS finds the classes present with unique(): 8 elements, 8 x 3 comparisons to sort, 8 to compare
    cost = only(count(torch.unique, torch.tensor([3, 1, 3, 2, 1, 1, 0, 2])), "aten._unique2")
    assert cost.flops == 8 * 3 + 8
