"""profile(autocast=...): CUDA autocast's dtype policy applied while counting on meta or the CPU, with the bytes each
op moves in the dtype it runs in; and channels_last, which changes the layout and never the counts."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchcost
from torchcost.emulate.autocast import CUDA_LISTS, CUDA_POLICY, Cast
from torchcost.hardware import hardware
from torchcost.predict import predict

DEVICES = ["meta", "cpu"]


class LinearNormSoftmax(nn.Module):
    """Linear 64->32 (autocast's lower-precision list), ReLU (no list), LayerNorm (fp32 list), softmax (fp32 with
    an output dtype)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 32)
        self.norm = nn.LayerNorm(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.relu(self.fc(x))).softmax(-1)


def calls(result: torchcost.Profile) -> list[tuple[str, tuple[str, ...], tuple[str, ...], int, int]]:
    """(op, input dtypes, output dtypes, bytes read, bytes written) of each forward op that moves bytes."""
    return [
        (r.op.removeprefix("aten."), r.input_dtypes, r.output_dtypes, r.cost.bytes_read, r.cost.bytes_written)
        for r in result.records
        if r.phase == "forward" and r.cost.memory_access
    ]


F16, F32 = "float16", "float32"


@pytest.mark.parametrize("device", DEVICES)
def test_linear_runs_in_fp16_and_layer_norm_and_softmax_in_fp32(device):
    result = torchcost.profile(LinearNormSoftmax(), torch.randn(8, 64), device=device, autocast="fp16")
    assert calls(result) == [
        ("_to_copy", (F32,), (F16,), 8 * 64 * 4, 8 * 64 * 2),  # the input cast: 2048 bytes read, 1024 written
        ("_to_copy", (F32,), (F16,), 32 * 64 * 4, 32 * 64 * 2),  # the weight: 8192, 4096
        ("_to_copy", (F32,), (F16,), 32 * 4, 32 * 2),  # the bias: 128, 64
        # addmm(bias, x, weight.t()) in fp16: reads 32*2 + 8*64*2 + 64*32*2 = 64 + 1024 + 4096, writes 8*32*2 = 512
        ("addmm", (F16, F16, F16), (F16,), 32 * 2 + 8 * 64 * 2 + 64 * 32 * 2, 8 * 32 * 2),
        ("relu", (F16,), (F16,), 8 * 32 * 2, 8 * 32 * 2),  # on no list: in its input's dtype, 512 and 512
        ("_to_copy", (F16,), (F32,), 8 * 32 * 2, 8 * 32 * 4),  # layer_norm is on the fp32 list: 512 read, 1024 written
        # reads x 8*32*4 + weight 32*4 + bias 32*4 = 1280; writes y 8*32*4 + mean and rstd 2*8*4 = 1088
        ("native_layer_norm", (F32, F32, F32), (F32, F32, F32), 8 * 32 * 4 + 2 * 32 * 4, 8 * 32 * 4 + 2 * 8 * 4),
        ("_softmax", (F32,), (F32,), 8 * 32 * 4, 8 * 32 * 4),  # softmax(dtype=float32) of an fp32 input: 1024, 1024
    ]
    assert result.autocast == "float16"


def test_the_same_model_without_autocast_moves_fp32_bytes():
    result = torchcost.profile(LinearNormSoftmax(), torch.randn(8, 64), device="meta")
    addmm = next(r for r in result.records if r.op == "aten.addmm")
    # reads 32*4 + 8*64*4 + 64*32*4 = 128 + 2048 + 8192 = 10368, writes 8*32*4 = 1024: twice the fp16 bytes
    assert (addmm.cost.bytes_read, addmm.cost.bytes_written) == (10368, 1024)
    assert not any(r.op == "aten._to_copy" for r in result.records)
    assert result.autocast is None


class LinearSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).softmax(-1)


@pytest.mark.parametrize("device", DEVICES)
def test_fp16_softmax_writes_fp32_in_one_kernel(device):
    """CUDA's softmax(x, dim, dtype=float32) of an fp16 x is _softmax(x, dim, half_to_float=True): no cast op
    (softmax in aten/src/ATen/native/SoftMax.cpp)."""
    result = torchcost.profile(LinearSoftmax(), torch.randn(8, 64), device=device, autocast="fp16")
    assert calls(result)[-1] == ("_softmax", (F16,), (F32,), 8 * 32 * 2, 8 * 32 * 4)  # reads 512, writes 1024
    assert sum(r.op == "aten._to_copy" for r in result.records) == 3  # input, weight, bias


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_softmax_is_cast_first(device):
    """The one-kernel path is for fp16 only: a bf16 input is converted to fp32, then soft-maxed."""
    result = torchcost.profile(LinearSoftmax(), torch.randn(8, 64), device=device, autocast="bf16")
    assert calls(result)[-2:] == [
        ("_to_copy", ("bfloat16",), (F32,), 8 * 32 * 2, 8 * 32 * 4),  # 512 read, 1024 written
        ("_softmax", (F32,), (F32,), 8 * 32 * 4, 8 * 32 * 4),  # 1024, 1024
    ]


class Addcmul(nn.Module):
    """addcmul is on autocast's promote list: it runs in the widest of its inputs' dtypes."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)  # fp16
        return torch.addcmul(x, h, h)  # x is fp32: h is cast up, twice (autocast caches only weights' casts)


@pytest.mark.parametrize("device", DEVICES)
def test_promote_runs_in_the_widest_input_dtype(device):
    result = torchcost.profile(Addcmul(), torch.randn(8, 32), device=device, autocast="fp16")
    assert calls(result)[-3:] == [
        ("_to_copy", (F16,), (F32,), 8 * 32 * 2, 8 * 32 * 4),  # 512 read, 1024 written
        ("_to_copy", (F16,), (F32,), 8 * 32 * 2, 8 * 32 * 4),
        ("addcmul", (F32, F32, F32), (F32,), 3 * 8 * 32 * 4, 8 * 32 * 4),  # 3072 read, 1024 written
    ]


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(x))


@pytest.mark.parametrize("device", DEVICES)
def test_a_weight_is_cast_once_per_forward(device):
    """Autocast caches the lower-precision casts of fp32 leaves that require grad (cached_cast in
    autocast_mode.cpp): a layer called twice casts its weight and bias once, its input once."""
    result = torchcost.profile(Twice(), torch.randn(8, 32), device=device, autocast="fp16")
    assert [r.input_shapes for r in result.records if r.op == "aten._to_copy"] == [((8, 32),), ((32, 32),), ((32,),)]


class Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("amp", "name"), [("fp16", F16), ("bf16", "bfloat16"), (torch.bfloat16, "bfloat16")])
def test_convolution_in_the_lower_precision(device, amp, name):
    result = torchcost.profile(Conv(), torch.randn(1, 3, 8, 8), device=device, autocast=amp)
    assert calls(result) == [
        ("_to_copy", (F32,), (name,), 3 * 8 * 8 * 4, 3 * 8 * 8 * 2),  # input 192 elements: 768 read, 384 written
        ("_to_copy", (F32,), (name,), 8 * 3 * 3 * 3 * 4, 8 * 3 * 3 * 3 * 2),  # weight 216 elements: 864, 432
        # reads input 384 + weight 432 = 816; writes the 1x8x6x6 output, 288 elements: 576
        ("convolution", (name, name), (name,), 384 + 432, 8 * 6 * 6 * 2),
    ]
    assert result.macs == 8 * 6 * 6 * 3 * 3 * 3  # 288 outputs x 27 = 7776, as without autocast


def test_counts_on_meta_equal_the_cpus_with_backward():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    x = torch.randn(2, 3, 8, 8)
    meta, cpu = (torchcost.profile(model, x, device=d, autocast="fp16", backward=True) for d in DEVICES)
    assert (meta.flops, meta.macs, meta.memory_access) == (cpu.flops, cpu.macs, cpu.memory_access)
    assert calls(meta) == calls(cpu)
    assert not meta.uncounted


def test_multihead_attention_and_a_no_grad_region():
    """Functions that ask the modes again (Tensor.unflatten, torch.no_grad) and PyTorch's own attention."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
            self.fc = nn.Linear(32, 32)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                y = self.fc(x)
            return self.attn(x, y, y)[0].unflatten(-1, (4, 8))

    result = torchcost.profile(Block(), torch.randn(2, 5, 32), device="meta", autocast="fp16")
    matmuls = [r for r in result.records if r.op in ("aten.addmm", "aten.mm", "aten.bmm", "aten.baddbmm")]
    assert matmuls and all(set(r.input_dtypes) == {F16} for r in matmuls)


def test_the_users_model_and_autocast_state_are_left_alone():
    model = LinearNormSoftmax()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torchcost.profile(model, torch.randn(8, 64), autocast="fp16", backward=True)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not torch.is_autocast_enabled("cuda")
    assert torch.get_autocast_dtype("cuda") == torch.float16  # PyTorch's default, as it was


@pytest.mark.parametrize("bad", ["fp32", "int8", torch.float32])
def test_an_unknown_autocast_dtype_is_refused_naming_the_choices(bad):
    with pytest.raises(ValueError, match="use bf16 or fp16"):
        torchcost.profile(LinearSoftmax(), torch.randn(8, 64), autocast=bad)


def test_the_lists_are_cudas():
    """A few entries of each list, as autocast_mode.h names them."""
    assert CUDA_POLICY.functions["linear"] is Cast.LOWER and CUDA_POLICY.functions["conv2d"] is Cast.LOWER
    assert CUDA_POLICY.functions["layer_norm"] is Cast.FP32 and CUDA_POLICY.functions["group_norm"] is Cast.FP32
    assert CUDA_POLICY.functions["softmax"] is Cast.FP32_DTYPE and CUDA_POLICY.functions["sum"] is Cast.FP32_DTYPE
    assert CUDA_POLICY.functions["addcmul"] is Cast.PROMOTE
    assert "batch_norm" not in CUDA_POLICY.functions and "relu" not in CUDA_POLICY.functions
    assert CUDA_POLICY.kernels[torch.ops.aten.pow.Tensor_Scalar] is Cast.FP32
    assert len(CUDA_LISTS[Cast.LOWER].split()) == 35  # 33 of AT_FORALL_LOWER_PRECISION_FP and cudnn's two


def test_the_prediction_uses_the_autocast_dtype():
    result = torchcost.profile(LinearSoftmax(), torch.randn(8, 64), device="meta", autocast="bf16")
    assert predict(result, hardware("h100")).dtype == "bf16"


def conv_net(seen: list[bool]) -> nn.Module:
    """Two convolutions whose hooks note whether their inputs were in channels_last memory format (the hooks go
    with the copy torchcost counts, and ``seen`` with them)."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.Flatten(1)
    )
    for conv in (model[0], model[3]):
        conv.register_forward_pre_hook(lambda _, args: seen.append(args[0].is_contiguous(memory_format=LAST)))
    return model


LAST = torch.channels_last


def test_channels_last_leaves_flops_and_macs_unchanged():
    seen: list[bool] = []
    model, x = conv_net(seen), torch.randn(2, 3, 16, 16)
    plain = {device: torchcost.profile(model, x, device=device) for device in DEVICES}
    assert seen == [False, False] * 2
    last = {device: torchcost.profile(model, x, device=device, channels_last=True) for device in DEVICES}
    assert seen[4:] == [True, True] * 2  # it ran in channels_last, on meta as on the CPU
    for device in DEVICES:
        assert (last[device].flops, last[device].macs) == (plain[device].flops, plain[device].macs)
        # Flatten cannot view the channels_last (2, 8, 14, 14) map: reshape copies it, 2*8*14*14*4 = 12544 bytes
        # read and as many written; every other op moves what it moved
        extra = last[device].memory_access.total - plain[device].memory_access.total
        assert extra == 2 * 12544
        assert last[device].channels_last and not plain[device].channels_last
    assert last["meta"].memory_access == last["cpu"].memory_access
    assert last["meta"].to_dict()["channels_last"] is True and "channels_last" not in plain["meta"].to_dict()
    assert model[0].weight.is_contiguous() and x.is_contiguous()  # the user's model and input as they were


def test_channels_last_with_autocast():
    seen: list[bool] = []
    model, x = conv_net(seen), torch.randn(2, 3, 16, 16)
    meta, cpu = (torchcost.profile(model, x, device=d, autocast="fp16", channels_last=True) for d in DEVICES)
    assert seen == [True, True] * 2  # the input was cast to fp16 in its memory format
    assert calls(meta) == calls(cpu)
    plain = torchcost.profile(model, x, device="meta", autocast="fp16")
    assert (meta.flops, meta.macs) == (cpu.flops, cpu.macs) == (plain.flops, plain.macs)
