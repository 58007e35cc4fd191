import torch
from torch import nn

import torchcost
from torchcost.predict.optimizer import ForeachCall, as_call, foreach_calls, is_scalar


def optimizer_records(model: nn.Module, x: torch.Tensor, optimizer: str = "adamw"):
    profile = torchcost.profile(model, x, optimizer=optimizer, device="meta")
    return [(i, r) for i, r in enumerate(profile.records) if r.phase == "optimizer"]


def test_adamws_per_parameter_loop_is_eight_foreach_calls():
    # two Linear layers: 4 parameters; AdamW's loop runs mul_ (decay), lerp_, mul_, addcmul_, sqrt, div, add_ and
    # addcdiv_ per parameter, and bumps and reads each step counter (0-d, on the CPU)
    model = nn.Sequential(nn.Linear(16, 32), nn.Linear(32, 8))
    loop = optimizer_records(model, torch.randn(4, 16))
    calls = foreach_calls(loop)
    names = [c.op for c in calls]
    assert sorted(names) == sorted(
        ["aten._foreach_mul_"] * 2
        + [f"aten._foreach_{n}" for n in ("lerp_", "addcmul_", "sqrt", "div", "add_", "addcdiv_")]
    )
    assert all(c.tensors == 4 for c in calls)  # every parameter in every call
    scalars = [r for _, r in loop if is_scalar(r)]
    assert len(scalars) == 8  # per parameter: step += 1 and step.item()
    # every loop record stands in exactly one call or is scalar bookkeeping
    assert sum(len(c.records) for c in calls) + len(scalars) == len(loop)
    lerp = next(c for c in calls if c.op == "aten._foreach_lerp_")
    # lerp_(exp_avg, grad): reads two, writes one, fp32: 3 x 4 x (16 x 32 + 32 + 32 x 8 + 8) = 9,696 bytes
    assert lerp.bytes == 3 * 4 * (16 * 32 + 32 + 32 * 8 + 8)


def test_a_call_launches_a_kernel_per_110_tensors_or_320_chunks():
    # 65,536 elements per chunk: 400 tensors of 1,000 elements are 400 chunks, 4 launches by tensors (110 each)
    many = ForeachCall("aten._foreach_add_", (0,), 400, 0, 0, 400)
    assert many.launches == 4
    # one tensor of 50,000,000 elements: ceil(50e6 / 65,536) = 763 chunks, ceil(763 / 320) = 3 launches
    big = ForeachCall("aten._foreach_add_", (0,), 1, 0, 0, 763)
    assert big.launches == 3


def test_counted_foreach_ops_stay_one_call():
    model = nn.Linear(8, 8)
    profile = torchcost.profile(model, torch.randn(2, 8), optimizer=lambda p: torch.optim.SGD(p, 0.1, foreach=True))
    found = [(i, r) for i, r in enumerate(profile.records) if r.op.startswith("aten._foreach_")]
    assert found, "SGD with foreach=True runs foreach ops"
    call = as_call(*found[0])
    assert call.tensors >= 1 and call.launches == 1
