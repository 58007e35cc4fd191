"""Detection and recommendation ops: torchvision's RoI Align and non-maximum suppression, and EmbeddingBag.

- RoI Align: each of the K x C x PH x PW outputs averages S x S bilinear samples (S = ``sampling_ratio``; when it
  is adaptive, <= 0, the grid depends on each box's size, and ADAPTIVE_SAMPLES per side is assumed). A bilinear
  sample is 4 multiplies and 3 adds, plus 1 add into the average; each output then divides once. It reads the
  4 neighbours of each sample (at most the whole feature map) and the boxes.
- NMS: an upper bound, as every pair of boxes is compared: sorting N scores (N ceil(log2 N) comparisons), the
  N box areas (3 FLOPs each), and N (N - 1) / 2 IoU tests of IOU_FLOPS each (intersection: 4 min/max, 2
  subtractions, 2 clamps, 1 multiply; union: 1 add, 1 subtract; 1 divide; 1 compare with the threshold).
  Boxes suppressed early skip their comparisons, so the kernel does at most this much.
- EmbeddingBag: each index adds a row of D values into its bag (1 FLOP per value), weighted bags multiply
  first (1 more), mean bags divide each of their D outputs once; max bags compare instead of adding. It reads
  only the rows it gathers, the indices, offsets and weights.
"""

from __future__ import annotations

import math

import torch

from torchcost.counting.registry import OpCall, ops_named, register
from torchcost.records import OpCost
from torchcost.tensors import tensor_bytes

aten = torch.ops.aten

BILINEAR_FLOPS = 7  # 4 multiplies, 3 adds
ADAPTIVE_SAMPLES = 2  # per side, when sampling_ratio <= 0 (torchvision's MultiScaleRoIAlign uses 2)
IOU_FLOPS = 13
BOX_AREA_FLOPS = 3  # 2 subtractions, 1 multiply
MODE_MEAN = 1  # EmbeddingBag modes: 0 sum, 1 mean, 2 max


@register("torchvision::roi_align")
def roi_align(call: OpCall) -> OpCost:
    # roi_align(input (N, C, H, W), rois (K, 5), spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)
    features, rois = call.arg(0), call.arg(1)
    outputs = call.output.numel()  # K x C x PH x PW
    side = call.arg(5) if call.arg(5) > 0 else ADAPTIVE_SAMPLES
    samples = outputs * side * side
    read = min(tensor_bytes(features), 4 * samples * features.element_size()) + tensor_bytes(rois)
    return call.cost(flops=samples * (BILINEAR_FLOPS + 1) + outputs, bytes_read=read)


@register("torchvision::nms")
def nms(call: OpCall) -> OpCost:
    # nms(boxes (N, 4), scores (N,), iou_threshold)
    n = call.arg(0).shape[0]
    sort = n * math.ceil(math.log2(max(n, 1)))
    return call.cost(flops=sort + BOX_AREA_FLOPS * n + IOU_FLOPS * n * (n - 1) // 2)


@register(*ops_named(aten, ["_embedding_bag", "_embedding_bag_forward_only"]))
def embedding_bag(call: OpCall) -> OpCost:
    # _embedding_bag(weight (V, D), indices (L,), offsets (B,), scale_grad_by_freq, mode, sparse,
    #                per_sample_weights (L,) or None, include_last_offset, padding_idx)
    weight, indices, offsets = call.arg(0), call.arg(1), call.arg(2)
    weights = call.arg(6)
    looked_up = indices.numel() * weight.shape[1]
    bags = call.output.shape[0]
    flops = looked_up * (2 if weights is not None else 1)
    flops += bags * weight.shape[1] if call.arg(4) == MODE_MEAN else 0
    read = looked_up * weight.element_size() + sum(tensor_bytes(t) for t in (indices, offsets) if t is not None)
    read += tensor_bytes(weights) if weights is not None else 0
    # written: the bags; the other outputs are bookkeeping for backward, sized differently on each device
    return call.cost(flops=flops, bytes_read=read, bytes_written=tensor_bytes(call.output))
