import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchcost
from torchcost.measure.op_timing import measure_ops


class Mixed(nn.Module):
    """Convolution, norm, pooling, attention and a functional matmul: ops of every kind."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.norm(self.conv(x))), 2)  # (B, 8, 4, 4)
        tokens = x.flatten(2).transpose(1, 2)  # (B, 16, 8)
        tokens, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return self.head(tokens.mean(1)) @ torch.ones(4, 4)


def test_every_counted_forward_op_gets_a_time():
    model, x = Mixed().eval(), torch.randn(2, 3, 8, 8)
    p = torchcost.profile(model, x)
    measure_ops(p, model, x, iterations=2, warmup=1)
    missing = [r.op for r in p.records if r.measured_s is None]
    assert missing == []
    assert all(r.measured_s >= 0 for r in p.records)


def test_modules_and_operators_sum_their_ops():
    model, x = Mixed().eval(), torch.randn(2, 3, 8, 8)
    p = measure_ops(torchcost.profile(model, x), model, x, iterations=2, warmup=1)
    ops_total = sum(r.measured_s for r in p.records)
    rows = {m.name: m for m in p.modules}
    assert rows[""].measured_s == pytest.approx(sum(r.measured_s for r in p.records if "" in r.modules))
    assert rows["conv"].measured_s == pytest.approx(sum(r.measured_s for r in p.records if "conv" in r.modules))
    assert sum(o.measured_s or 0 for o in p.operators) == pytest.approx(sum(r.measured_s for r in p.records))
    assert rows[""].measured_s == pytest.approx(ops_total)
    assert p.to_dict()["modules"][0]["measured_s"] == rows[""].measured_s


def test_a_profile_counted_on_meta_is_counted_again_where_it_is_measured():
    model, x = Mixed().eval(), torch.randn(1, 3, 8, 8)
    p = torchcost.profile(model, x, device="meta")
    assert measure_ops(p, model, x, iterations=2, warmup=1) is p
    assert p.device == "cpu" and all(r.measured_s is not None for r in p.records if r.phase == "forward")
    with pytest.raises(torchcost.ProfilingError, match="device with data"):
        measure_ops(p, model, x, device="meta")
