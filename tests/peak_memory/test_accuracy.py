"""memory() against the CPU allocator itself: torch.profiler's allocation events over one real step, measured
here with code that shares nothing with the estimator (bench/memory_accuracy.py does the same on larger models)."""

import copy
import gc

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from torchcost.peak_memory import memory


def allocator_peak(model: nn.Module, x: torch.Tensor, optimizer: str | None) -> int:
    model = copy.deepcopy(model)
    opt = None if optimizer is None else torch.optim.AdamW(model.parameters())

    def step():
        if opt is None:
            model.eval()
            with torch.no_grad():
                return model(x)
        model.train()
        out = model(x)
        loss = out.sum()
        loss.backward()
        opt.step()
        return out, loss

    for _ in range(2):
        step()
        if opt is not None:
            opt.zero_grad(set_to_none=True)
    gc.collect()
    state = [] if opt is None else [v for s in opt.state.values() for v in s.values()]
    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for t in [*model.parameters(), *model.buffers(), x, *state]
    }
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        kept = step()
    del kept
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns()
    )
    running = highest = 0
    for event in events:
        running += event.nbytes()
        highest = max(highest, running)
    return sum(storages.values()) + highest


def convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.Conv2d(16, 32, 1),
        nn.GELU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


@pytest.mark.parametrize("optimizer", [None, "adamw"])
@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_peak_within_5_percent_of_the_allocator(optimizer, device):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randn(4, 3, 32, 32)
        measured = allocator_peak(convnet(), x, optimizer)
        estimated = memory(convnet(), x, optimizer=optimizer, device=device).peak_bytes
    finally:
        torch.set_num_threads(threads)
    assert abs(estimated - measured) <= 0.05 * measured, (estimated, measured)


class SelfAttention(nn.Module):
    """nn.MultiheadAttention as transformer encoders call it in inference: the fused attention op."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=False)[0]


@pytest.mark.parametrize(
    ("shape", "heads"),
    [
        ((8, 128, 256), 8),  # the scores (B H T T = 4 BTD) dominate: 2 BTD + B H T T = 6 BTD beyond the output
        ((4, 16, 256), 8),  # the projection and its per-head copy dominate: 5 BTD beyond the output
    ],
)
def test_fused_attention_equals_the_allocator(shape, heads):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randn(*shape)
        measured = allocator_peak(SelfAttention(shape[-1], heads), x, None)
        estimated = memory(SelfAttention(shape[-1], heads), x, device="meta")
    finally:
        torch.set_num_threads(threads)
    assert estimated.peak_at.op == "aten._native_multi_head_attention"
    assert estimated.peak_bytes == measured
