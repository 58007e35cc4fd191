"""The cost of one training step: FLOPs of forward, backward and the optimizer's own kernels, the step time
(measured or predicted), model FLOPs utilisation, and for token models the 6 x N x tokens rule beside the count.

MFU (Chowdhery et al., 2022, PaLM, appendix B): model FLOPs per step / (step time x the hardware's peak FLOP/s),
where model FLOPs are forward + backward (no optimizer, no recomputation). The 6·N·D rule (Kaplan et al., 2020;
Hoffmann et al., 2022): 2 FLOPs per parameter per token forward and 4 backward, attention left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from torchcost.errors import renamed
from torchcost.hardware import Hardware
from torchcost.predict import Prediction
from torchcost.prepare import ModelState, prepare
from torchcost.records import Profile
from torchcost.step import OptimizerSpec, compute_loss, training_copy
from torchcost.step import steady_optimizer as _steady_optimizer  # private here: the public name warns (below)
from torchcost.timing import timing_module

TOKEN_DTYPES = ("int64", "int32")


@dataclass
class TrainingStep:
    """FLOPs of one steady-state training step by phase; time and MFU once a step time is known."""

    optimizer: str
    forward_flops: int
    backward_flops: int
    optimizer_flops: int
    trainable_params: int
    tokens: int | None  # token models: batch x sequence length
    step_s: float | None = None
    step_source: str | None = None  # "measured" or "predicted on <hardware>"
    peak_flop_per_s: float | None = None  # the hardware's peak at the run's dtype

    @property
    def model_flops(self) -> int:
        return self.forward_flops + self.backward_flops

    @property
    def six_n_flops(self) -> int | None:
        """6 x trainable parameters x tokens, for token models."""
        return None if self.tokens is None else 6 * self.trainable_params * self.tokens

    @property
    def mfu(self) -> float | None:
        if not self.step_s or not self.peak_flop_per_s:
            return None
        return self.model_flops / (self.step_s * self.peak_flop_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "forward_flops": self.forward_flops,
            "backward_flops": self.backward_flops,
            "optimizer_flops": self.optimizer_flops,
            "model_flops": self.model_flops,
            "trainable_params": self.trainable_params,
            "tokens": self.tokens,
            "six_n_flops": self.six_n_flops,
            "step_s": self.step_s,
            "step_source": self.step_source,
            "peak_flop_per_s": self.peak_flop_per_s,
            "mfu": self.mfu,
        }


def training_step(profile: Profile, optimizer: str) -> TrainingStep:
    """The step's FLOPs by phase, from a profile counted with an optimizer."""
    flops = {"forward": 0, "backward": 0, "optimizer": 0}
    for record in profile.records:
        if record.counted:
            flops[record.phase] = flops.get(record.phase, 0) + record.cost.flops
    tokens = next((math.prod(s.shape) for s in profile.inputs if s.dtype in TOKEN_DTYPES and len(s.shape) == 2), None)
    return TrainingStep(
        optimizer, flops["forward"], flops["backward"], flops["optimizer"], profile.params.trainable, tokens
    )


def timed(step: TrainingStep, hardware: Hardware, dtype: str, prediction: Prediction | None) -> TrainingStep:
    """With the hardware's peak for MFU, and the predicted step time when none was measured."""
    step.peak_flop_per_s = hardware.peak.get(dtype)
    if step.step_s is None and prediction is not None:
        step.step_s, step.step_source = prediction.latency_s, f"predicted on {hardware.name}"
    return step


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
        step_optimizer = _steady_optimizer(run_model, optimizer)

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


def __getattr__(name: str) -> Any:
    """``steady_optimizer`` (now in ``torchcost.step``) and ``counted_step`` (now in ``torchcost.profiler``) under
    their old home, with a DeprecationWarning, for one release."""
    if name == "steady_optimizer":
        return renamed(__name__, {name: _steady_optimizer})(name)
    if name == "counted_step":
        from torchcost import profiler  # imported on this call only: the profiler imports this module

        return renamed(__name__, {name: profiler.counted_step})(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
