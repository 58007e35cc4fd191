"""Matrix products on quantized weights, and the size and parameters of quantized models."""

import pytest
import torch
from torch import nn

import torchcost
from tests.conftest import count, only


def test_int8_packed_weights():
    x, w, scales = torch.randn(3, 64), torch.randint(-128, 127, (32, 64), dtype=torch.int8), torch.rand(32)
    cost = only(count(torch._weight_int8pack_mm, x, w, scales), "aten._weight_int8pack_mm")
    assert cost.macs == 3 * 64 * 32  # 6,144
    assert cost.flops == 2 * 6144 + 3 * 32  # and one scale per output


def test_int4_packed_weights():
    x = torch.randn(3, 64, dtype=torch.bfloat16)
    packed = torch._convert_weight_to_int4pack_for_cpu(torch.randint(0, 16, (32, 64), dtype=torch.int32), 1)
    scales_and_zeros = torch.rand(2, 32, 2, dtype=torch.bfloat16)  # 2 groups of 32 along k
    records = count(torch._weight_int4pack_mm_for_cpu, x, packed, 32, scales_and_zeros)
    assert only(records, "aten._weight_int4pack_mm_for_cpu").macs == 3 * 64 * 32
    assert packed.numel() * packed.element_size() == 32 * 64 // 2  # two weights per byte


def test_torchao_int8_weights_are_stored_as_int8():
    quantization = pytest.importorskip("torchao.quantization")
    model = nn.Linear(64, 32)
    quantization.quantize_(model, quantization.Int8WeightOnlyConfig())
    for device in ("cpu", "meta"):
        p = torchcost.profile(model, torch.randn(2, 64), device=device)
        assert p.params.total == 64 * 32 + 32  # logical elements, as before quantizing
        assert p.macs == 2 * 64 * 32
        # stored: int8 data 2,048 + per row an fp32 scale (128) and an int8 zero point (32) + fp32 bias 128,
        # not the 8,320 bytes of fp32 weights
        assert p.size_bytes == 2048 + 128 + 32 + 128


def test_bitsandbytes_4bit_weights():
    bnb = pytest.importorskip("bitsandbytes")
    layer = bnb.nn.Linear4bit(64, 32, compute_dtype=torch.float32, quant_type="nf4")
    layer.load_state_dict(nn.Linear(64, 32).state_dict())
    layer = layer.to("cpu")  # quantizes: 2,048 weights packed two per byte
    p = torchcost.profile(layer, torch.randn(2, 64), device="cpu")
    assert p.params.total == 64 * 32 + 32 and p.macs == 2 * 64 * 32 and not p.uncounted
    state = layer.weight.quant_state
    state_bytes = sum(t.numel() * t.element_size() for t in vars(state).values() if isinstance(t, torch.Tensor))
    nested = getattr(state, "state2", None)
    state_bytes += (
        sum(t.numel() * t.element_size() for t in vars(nested).values() if isinstance(t, torch.Tensor)) if nested else 0
    )
    assert p.size_bytes == 1024 + state_bytes + 32 * 4  # packed weights, absmax and code book, fp32 bias
