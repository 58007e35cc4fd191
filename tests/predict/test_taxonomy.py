import pytest

from torchcost.predict.taxonomy import launches_kernel, op_class, rate_class, reads_back
from torchcost.records import OpCost, OpRecord


def record(op: str, inputs, flops: int = 0, bytes_: int = 0) -> OpRecord:
    return OpRecord(op, "forward", ("",), OpCost(flops, 0, bytes_, 0), inputs, ((4, 4),))


@pytest.mark.parametrize(
    ("op", "inputs", "flops", "bytes_", "expected"),
    [
        ("aten.convolution", ((1, 32, 8, 8), (32, 1, 3, 3)), 10, 10, "depthwise_conv"),
        ("aten.convolution", ((1, 128, 8, 8), (128, 4, 3, 3)), 10, 10, "depthwise_conv"),  # 4 channels per group
        ("aten.convolution", ((1, 8, 8, 8), (8, 4, 3, 3)), 10, 10, "conv"),  # 2 groups of 4: half the channels
        # a backward's first tensor is the output's gradient: the input and weight follow it
        ("aten.convolution_backward", ((1, 32, 6, 6), (1, 32, 8, 8), (32, 1, 3, 3)), 10, 10, "depthwise_conv"),
        ("aten.convolution_backward", ((1, 16, 6, 6), (1, 8, 8, 8), (16, 8, 3, 3)), 10, 10, "conv"),
        ("aten.addmm", ((4,), (2, 3), (3, 4)), 10, 10, "matmul"),
        ("aten._grouped_mm", ((8, 4), (2, 4, 3)), 10, 10, "matmul"),
        ("bitsandbytes.gemm_4bit", ((2, 3), (3, 4)), 10, 10, "matmul"),
        ("aten._scaled_dot_product_flash_attention_for_cpu", ((1, 2, 4, 8),) * 3, 10, 10, "attention"),
        ("aten._native_multi_head_attention", ((1, 4, 8),) * 3, 10, 10, "attention"),
        ("aten._transformer_encoder_layer_fwd", ((1, 4, 8),), 10, 10, "attention"),
        ("aten.native_layer_norm", ((4, 8),), 10, 10, "norm"),
        ("aten.max_pool2d_with_indices", ((1, 2, 4, 4),), 10, 10, "pooling"),
        ("aten._softmax", ((4, 8),), 10, 10, "reduction"),
        ("aten.view", ((4, 8),), 0, 0, "view"),
        ("aten.cat", ((4, 8), (4, 8)), 0, 256, "movement"),
        ("aten.gelu", ((4, 8),), 10, 256, "pointwise"),
    ],
)
def test_op_classes(op, inputs, flops, bytes_, expected):
    assert op_class(record(op, inputs, flops, bytes_)) == expected


def test_rate_classes_keep_the_products_and_fold_the_rest():
    assert [rate_class(c) for c in ("matmul", "conv", "depthwise_conv", "attention")] == [
        "matmul", "conv", "depthwise_conv", "attention"
    ]  # fmt: skip
    assert {rate_class(c) for c in ("norm", "pointwise", "pooling", "reduction", "movement", "view")} == {"other"}


def test_what_launches_a_kernel_and_what_waits_for_one():
    assert not launches_kernel(record("aten.t", ((4, 8),)))
    assert launches_kernel(record("aten.relu", ((4, 8),), 32, 256))
    assert reads_back(record("aten._local_scalar_dense", ((),), 0, 4))
    assert not reads_back(record("aten.add", ((4,),), 4, 48))
