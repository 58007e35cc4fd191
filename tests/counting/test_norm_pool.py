import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchcost
from tests.conftest import count, only, total
from torchcost.profiler import ProfilingError


def test_batch_norm_eval_and_train():
    bn = nn.BatchNorm2d(3)
    x = torch.randn(2, 3, 4, 4)  # 96 elements
    bn.eval()
    assert only(count(bn, x), "aten.native_batch_norm").flops == 96 * 4  # normalise 2 + affine 2
    bn.train()
    assert only(count(bn, x), "aten.native_batch_norm").flops == 96 * 8  # + statistics 4


def test_layer_norm():
    x = torch.randn(3, 4)  # 12 elements
    assert only(count(nn.LayerNorm(4), x), "aten.native_layer_norm").flops == 12 * 8
    plain = nn.LayerNorm(4, elementwise_affine=False)
    assert only(count(plain, x), "aten.native_layer_norm").flops == 12 * 6


def test_group_norm():
    x = torch.randn(2, 4, 3, 3)  # 72 elements
    assert only(count(nn.GroupNorm(2, 4), x), "aten.native_group_norm").flops == 72 * 8


def test_rms_norm_by_its_parts():
    # pow 12 + mean over 12 inputs + add eps 3 + rsqrt 3 + multiply 12 = 42
    assert total(count(F.rms_norm, torch.randn(3, 4), (4,))).flops == 42


def test_max_and_avg_pool():
    cost = only(count(F.max_pool2d, torch.randn(1, 2, 8, 8), 2), "aten.max_pool2d_with_indices")
    assert cost.flops == 32 * 4  # 2 x 4 x 4 outputs, 2 x 2 window
    cost = only(count(F.avg_pool2d, torch.randn(1, 1, 5, 5), 3, 1), "aten.avg_pool2d")
    assert cost.flops == 9 * 9  # 3 x 3 outputs, 3 x 3 window


def test_adaptive_pool_uneven_windows():
    # 5 -> 3 along each axis: windows [0,2), [1,4), [3,5) = 2 + 3 + 2 = 7; in 2-D 7 x 7 = 49
    cost = only(count(F.adaptive_avg_pool2d, torch.randn(1, 1, 5, 5), 3), "aten._adaptive_avg_pool2d")
    assert cost.flops == 49


def test_interpolate():
    x = torch.randn(1, 2, 4, 4)
    nearest = only(count(F.interpolate, x, scale_factor=2), "aten.upsample_nearest2d")
    assert nearest.flops == 0
    assert nearest.bytes_written == 2 * 8 * 8 * 4
    bilinear = only(count(F.interpolate, x, scale_factor=2, mode="bilinear"), "aten.upsample_bilinear2d")
    assert bilinear.flops == 128 * 7  # 4 multiplies + 3 adds per output


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("dtype", "parameters"),
    [(torch.float32, torch.float32), (torch.bfloat16, torch.bfloat16), (torch.bfloat16, torch.float32)],
)
def test_batch_norm_meta_shortcut_matches_the_cpu_kernel(training, channels_last, dtype, parameters):
    # in eval mode the CPU kernel saves no statistics (empty tensors), and it keeps them in the parameters' dtype;
    # PyTorch's own meta kernel returns them full, and in fp32 for 16-bit inputs
    from torchcost.counting.mode import META_SHORTCUTS

    x = torch.randn(2, 8, 5, 5, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    w, b, mean, var = (torch.full((8,), value, dtype=parameters) for value in (1.0, 0.0, 0.0, 1.0))
    op = torch.ops.aten.native_batch_norm.default
    reference = op(x, w, b, mean, var, training, 0.1, 1e-5)
    on_meta = [t.to("meta") for t in (x, w, b, mean, var)]
    fast = META_SHORTCUTS[op]((*on_meta, training, 0.1, 1e-5), {})
    assert [(t.shape, t.stride(), t.dtype) for t in fast] == [(t.shape, t.stride(), t.dtype) for t in reference]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("normalized", [[8], [5, 8]])
def test_layer_norm_and_addmm_meta_shortcuts_match_the_cpu_kernels(dtype, normalized):
    # layer norm's statistics are in the weight's dtype on a CPU (PyTorch's meta kernel: fp32 for 16-bit inputs)
    from torchcost.counting.mode import META_SHORTCUTS

    aten = torch.ops.aten
    x = torch.randn(2, 5, 8, dtype=dtype)
    for weight in (None, torch.ones(normalized, dtype=dtype), torch.ones(normalized)):
        if weight is not None and weight.dtype != dtype and dtype != torch.bfloat16:
            continue  # the CPU kernel mixes only bf16 inputs with fp32 weights
        reference = aten.native_layer_norm.default(x, normalized, weight, weight, 1e-5)
        meta_weight = None if weight is None else weight.to("meta")
        fast = META_SHORTCUTS[aten.native_layer_norm.default](
            (x.to("meta"), normalized, meta_weight, meta_weight, 1e-5), {}
        )
        assert [(t.shape, t.stride(), t.dtype) for t in fast] == [(t.shape, t.stride(), t.dtype) for t in reference]
    bias, m1 = torch.empty(8, dtype=dtype, device="meta"), torch.empty(3, 4, dtype=dtype, device="meta")
    for m2 in (torch.empty(4, 8, dtype=dtype, device="meta"), torch.empty(8, 4, dtype=dtype, device="meta").t()):
        fast = META_SHORTCUTS[aten.addmm.default]((bias, m1, m2), {})
        reference = aten.addmm.default(bias, m1, m2)
        assert (fast.shape, fast.stride(), fast.dtype) == (reference.shape, reference.stride(), reference.dtype)


@pytest.mark.parametrize(
    ("shapes", "dim"),
    [
        ([(1, 64, 7, 7), (1, 32, 7, 7), (1, 32, 7, 7)], 1),  # DenseNet's feature concatenation
        ([(2, 3), (5, 3)], 0),
        ([(2, 3), (2, 4)], -1),
        ([(2, 3)], 1),
    ],
)
def test_cat_meta_shortcut_matches_the_cpu_kernel(shapes, dim):
    from torchcost.counting.mode import META_SHORTCUTS

    tensors = [torch.randn(shape) for shape in shapes]
    reference = torch.ops.aten.cat.default(tensors, dim)
    fast = META_SHORTCUTS[torch.ops.aten.cat.default](([t.to("meta") for t in tensors], dim), {})
    assert (fast.shape, fast.stride(), fast.dtype) == (reference.shape, reference.stride(), reference.dtype)


@pytest.mark.parametrize(
    ("op", "x", "rest"),
    [
        (torch.ops.aten.mean.dim, torch.randn(1, 960, 7, 7), ([-1, -2], True)),  # MobileNet's pooling
        (torch.ops.aten.mean.dim, torch.randn(2, 16, 7, 7), ([2, 3],)),
        (torch.ops.aten.mean.dim, torch.randn(3, 5, dtype=torch.bfloat16), ([0], False)),
        (torch.ops.aten.hardswish.default, torch.randn(2, 8, 5, 5), ()),
        (torch.ops.aten.hardswish.default, torch.randn(2, 8, 5, 5).to(memory_format=torch.channels_last), ()),
        (torch.ops.aten.hardswish_.default, torch.randn(2, 8, 5, 5), ()),
    ],
)
def test_pooling_and_activation_meta_shortcuts_match_the_cpu_kernels(op, x, rest):
    from torchcost.counting.mode import META_SHORTCUTS

    reference = op(x.clone(), *rest)
    fast = META_SHORTCUTS[op]((x.to("meta"), *rest), {})
    assert (fast.shape, fast.stride(), fast.dtype) == (reference.shape, reference.stride(), reference.dtype)


@pytest.mark.parametrize(
    "tensors",
    [
        [torch.empty(2, 3, device="meta"), torch.empty(2, 3, device="meta", dtype=torch.float16)],  # promotion
        [torch.empty(2, 3, device="meta"), torch.empty(0, device="meta")],  # the legacy empty input
        [torch.empty(3, 2, device="meta").t(), torch.empty(2, 3, device="meta")],  # a transposed input
        [torch.empty(1, 8, 4, 4, device="meta").to(memory_format=torch.channels_last)] * 2,
    ],
)
def test_cat_meta_shortcut_leaves_other_cases_to_pytorch(tensors):
    from torchcost.counting.mode import META_SHORTCUTS

    assert META_SHORTCUTS[torch.ops.aten.cat.default]((tensors, 0), {}) is NotImplemented


@pytest.mark.parametrize(
    ("model", "x"),
    [
        (nn.Linear(5, 5), torch.randn(1, 3)),  # addmm: (1, 3) @ (3 != 5, 5)
        (nn.BatchNorm2d(4), torch.randn(1, 3, 8, 8)),  # 3 channels, 4 running means
        (nn.LayerNorm(6), torch.randn(2, 5)),  # normalises over 6, the input ends in 5
    ],
)
def test_meta_shortcuts_refuse_shapes_that_do_not_fit_as_pytorch_does(model, x):
    """A model that fails on the cpu fails on meta too, rather than being counted."""
    with pytest.raises(ProfilingError) as on_cpu:
        torchcost.profile(model, x)
    with pytest.raises(ProfilingError) as on_meta:
        torchcost.profile(model, x, device="meta")
    assert type(on_meta.value.__cause__) is type(on_cpu.value.__cause__)


@pytest.mark.parametrize(
    ("x", "weight", "stride", "padding", "dilation", "groups"),
    [
        ((2, 3, 9, 9), (4, 3, 3, 3), [1, 1], [1, 1], [1, 1], 1),
        ((2, 3, 9, 9), (4, 3, 3, 3), [2, 2], [0, 0], [2, 2], 1),
        ((1, 8, 10, 10), (8, 1, 3, 3), [2, 2], [1, 1], [1, 1], 8),  # depthwise, as MobileNet's
        ((2, 4, 20), (6, 4, 5), [1], [2], [1], 1),  # 1-D
        ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3), [1, 2, 1], [1, 1, 0], [1, 1, 1], 1),  # 3-D
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_convolution_meta_shortcut_matches_the_cpu_kernel(x, weight, stride, padding, dilation, groups, dtype):
    from torchcost.counting.mode import META_SHORTCUTS

    op = torch.ops.aten.convolution.default
    inputs, kernel, bias = torch.randn(x, dtype=dtype), torch.randn(weight, dtype=dtype), torch.randn(weight[0])
    args = (stride, padding, dilation, False, [0] * len(stride), groups)
    reference = op(inputs, kernel, bias.to(dtype), *args)
    fast = META_SHORTCUTS[op]((inputs.to("meta"), kernel.to("meta"), bias.to("meta", dtype), *args), {})
    assert (fast.shape, fast.stride(), fast.dtype) == (reference.shape, reference.stride(), reference.dtype)


def test_convolution_meta_shortcut_leaves_mismatches_to_pytorch():
    from torchcost.counting.mode import META_SHORTCUTS

    op = torch.ops.aten.convolution.default
    x, weight = torch.empty(1, 3, 8, 8, device="meta"), torch.empty(4, 5, 3, 3, device="meta")  # 3 channels, 5 wanted
    assert META_SHORTCUTS[op]((x, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1), {}) is NotImplemented
    tiny = torch.empty(1, 5, 2, 2, device="meta")  # a 3x3 kernel does not fit a 2x2 map
    assert META_SHORTCUTS[op]((tiny, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1), {}) is NotImplemented
    with pytest.raises(RuntimeError):
        op(x, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)  # PyTorch's kernel says what is wrong


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize(
    ("a", "b", "dtype"),
    [
        ((2, 8, 5, 5), (2, 8, 1, 1), torch.float32),  # a squeeze-excite gate
        ((2, 8, 1, 1), (2, 8, 5, 5), torch.float32),
        ((8,), (2, 8), torch.float16),
        ((3, 4), (3, 4), torch.bfloat16),
    ],
)
def test_binary_meta_shortcut_matches_the_cpu_kernel(op, a, b, dtype):
    from torchcost.counting.mode import META_SHORTCUTS

    overload = getattr(torch.ops.aten, op).Tensor
    left, right = torch.randn(a, dtype=dtype), torch.rand(b, dtype=dtype) + 1
    reference = overload(left, right)
    fast = META_SHORTCUTS[overload]((left.to("meta"), right.to("meta")), {})
    assert (fast.shape, fast.stride(), fast.dtype) == (reference.shape, reference.stride(), reference.dtype)


def test_binary_meta_shortcut_leaves_promotion_and_layouts_to_pytorch():
    from torchcost.counting.mode import META_SHORTCUTS

    mul = META_SHORTCUTS[torch.ops.aten.mul.Tensor]
    x = torch.empty(2, 8, 5, 5, device="meta")
    assert mul((x, torch.empty(2, 8, 5, 5, dtype=torch.float16, device="meta")), {}) is NotImplemented
    assert mul((x.to(memory_format=torch.channels_last), x), {}) is NotImplemented
    assert mul((torch.empty(3, dtype=torch.int64, device="meta"),) * 2, {}) is NotImplemented
    assert mul((x, torch.empty(3, device="meta")), {}) is NotImplemented  # shapes that do not broadcast


@pytest.mark.parametrize("name", ["relu", "hardsigmoid", "sigmoid", "silu", "gelu"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_activation_meta_shortcuts_match_the_cpu_kernels(name, channels_last):
    from torchcost.counting.mode import META_SHORTCUTS

    op = getattr(torch.ops.aten, name).default
    x = torch.randn(2, 8, 5, 5)
    x = x.to(memory_format=torch.channels_last) if channels_last else x
    reference = op(x)
    fast = META_SHORTCUTS[op]((x.to("meta"),), {})
    assert (fast.shape, fast.stride(), fast.dtype) == (reference.shape, reference.stride(), reference.dtype)
