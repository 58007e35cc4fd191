"""The time of a real steady-state training step, measured on a copy of the model."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchcost.measure.timing import timing_module
from torchcost.prepare import ModelState, prepare
from torchcost.step import OptimizerSpec, compute_loss, steady_optimizer, training_copy


def measure_step(
    model: nn.Module,
    inputs: tuple[Any, ...],
    kwargs: dict[str, Any],
    optimizer: OptimizerSpec,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    repeats: int = 5,
) -> float:
    """Median seconds of a real steady-state training step (forward, sum of the outputs, backward, optimizer
    step, zero_grad) on a copy of the model; ``torch.utils.benchmark`` does the timing."""
    prepared = prepare(model, inputs, kwargs, None, dtype, device)
    if prepared.device.type == "meta":
        raise ValueError("a training step cannot be timed on the meta device; pass device='cpu' or 'cuda'")
    state = ModelState(model)
    try:
        run_model = prepared.model if prepared.model is not model else training_copy(model)
        run_model.train()
        step_optimizer = steady_optimizer(run_model, optimizer)

        def step() -> None:
            loss = compute_loss(None, run_model(*prepared.inputs, **prepared.kwargs))
            torch.autograd.backward([loss])
            step_optimizer.step()
            step_optimizer.zero_grad(set_to_none=True)

        step()  # warm-up
        timer = timing_module().Timer(stmt="step()", globals={"step": step})
        return float(timer.timeit(repeats).median)
    finally:
        state.restore()
