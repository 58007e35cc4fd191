"""max_batch(): the largest batch that fits, on a model whose peak is worked out by hand."""

import pytest
import torch
from torch import nn

from torchcost.hardware import Hardware
from torchcost.peak_memory.fit import max_batch


def device(memory: float | None) -> Hardware:
    return Hardware("toy", "toy CPU", "cpu", {"fp32": 1e12}, 1e11, memory, 4, "test")


def linear() -> nn.Module:
    return nn.Linear(4, 8, bias=False)


# inference at batch b: weight 4 x 8 fp32 = 128 bytes, input b x 4 fp32 = 16b, output b x 8 fp32 = 32b
def peak(batch: int) -> int:
    return 128 + 48 * batch


@pytest.mark.parametrize("answer", [1, 7, 100, 3000])
def test_largest_batch_that_fits(answer):
    fit = max_batch(linear(), torch.randn(1, 4), device(peak(answer) + 47))  # 47 bytes short of the next batch
    assert fit.batch == answer
    assert fit.needed_bytes == peak(answer)
    assert all(value == peak(batch) for batch, value in fit.tried.items())
    assert len(fit.tried) <= 8  # the line through the peaks lands on the answer in a few runs
    assert fit.to_dict()["tried"][str(answer)] == peak(answer)


def test_nothing_fits():
    fit = max_batch(linear(), torch.randn(5, 4), device(peak(1) - 1))
    assert fit.batch == 0 and fit.needed_bytes is None and fit.tried == {1: peak(1)}


def test_the_search_stops_at_the_limit(monkeypatch):
    monkeypatch.setattr("torchcost.peak_memory.fit.LIMIT", 64)

    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.w * 2

    assert max_batch(Constant(), torch.randn(1, 4), device(1e9)).batch == 64


def test_training_fits_fewer_than_inference():
    inference = max_batch(linear(), torch.randn(1, 4), device(10_000))
    training = max_batch(linear(), torch.randn(1, 4), device(10_000), optimizer="adam")
    assert 0 < training.batch < inference.batch and training.train


def test_unknown_memory_is_refused():
    with pytest.raises(ValueError, match="the memory of toy CPU is unknown"):
        max_batch(linear(), torch.randn(1, 4), device(None))
