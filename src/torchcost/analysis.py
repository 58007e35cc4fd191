"""``analyze()``: in one call, the whole result ``torchcost profile`` prints. The counts, and as asked the
measured latency and per-op times, a prediction on named hardware, the training step's time and MFU, and the
findings that explain the cost. ``Analysis`` holds them beside the ``Profile`` of counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchcost.display import Shown
from torchcost.errors import ProfilingError
from torchcost.explain import Finding
from torchcost.explain import explain as find_reasons
from torchcost.hardware import Hardware, hardware
from torchcost.measure.latency import Latency, measure
from torchcost.measure.op_timing import measure_ops
from torchcost.measure.step import measure_step
from torchcost.predict import EXECUTIONS, Prediction, predict, profile_dtype
from torchcost.profiler import profile
from torchcost.records import Profile, TrainingStep
from torchcost.step import OptimizerSpec


@dataclass(repr=False)
class Analysis(Shown):
    """A profile's counts with what was measured, predicted and found about them."""

    profile: Profile
    latency: Latency | None = None  # measured end-to-end latency, when measured
    prediction: Prediction | None = None  # the latency predicted on some hardware, when asked for
    findings: list[Finding] = field(default_factory=list)  # why it costs what it costs, ranked
    notes: list[str] = field(default_factory=list)  # what could not be done ("no prediction: ...")

    @property
    def model(self) -> str:
        return self.profile.model

    @property
    def training(self) -> TrainingStep | None:
        return self.profile.training

    @property
    def known_latency(self) -> tuple[float, str] | None:
        """Seconds per forward and where they come from: ``"measured"``, else ``"predicted"``; None if neither."""
        if self.latency is not None:
            return self.latency.median_s, "measured"
        if self.prediction is not None:
            return self.prediction.latency_s, "predicted"
        return None

    def to_dict(self) -> dict[str, Any]:
        """The profile's JSON with the latency, the prediction and the findings after its counts."""
        counted = self.profile.to_dict()
        found = {
            **({"latency": self.latency.to_dict()} if self.latency is not None else {}),
            **({"prediction": self.prediction.to_dict()} if self.prediction is not None else {}),
            **({"findings": [f.to_dict() for f in self.findings]} if self.findings else {}),
        }
        keys = list(counted)
        after = keys.index("uncounted") + 1
        return {**{k: counted[k] for k in keys[:after]}, **found, **{k: counted[k] for k in keys[after:]}}


Result = Profile | Analysis  # what the reports take: counts alone, or with what was measured and found


def as_analysis(result: Result) -> Analysis:
    """An ``Analysis`` as it is, a bare ``Profile`` as an analysis of its counts alone."""
    return result if isinstance(result, Analysis) else Analysis(result)


def analyze(
    model: nn.Module,
    *inputs: Any,
    latency: bool = False,
    hardware: Hardware | str | None = None,
    explain: bool = True,
    execution: str = "eager",
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = "auto",
    backward: bool = False,
    optimizer: OptimizerSpec | None = None,
    autocast: torch.dtype | str | None = None,
    channels_last: bool = False,
    min_time: float = 1.0,
    threads: int | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> Analysis:
    """Count ``model(*inputs, **kwargs)`` as ``profile()`` does, then, as asked, what ``torchcost profile`` adds.

    Args:
        latency: also measure the forward's latency and each op's time on the model's device (and, with an
            ``optimizer``, a real training step); the counting then runs there too, as the timing needs.
        hardware: predict the latency on this hardware (a ``Hardware`` or a name such as ``"h100"``); with
            ``latency`` and no hardware, on this machine (``"local"``).
        explain: rank the findings that explain the cost.
        execution: ``"eager"`` or ``"graphs"``, as ``predict()`` takes it.
        min_time, threads, progress: for the latency measurement, as ``measure()`` takes them.
        The other arguments are ``profile()``'s.

    >>> import torch, torchcost
    >>> a = torchcost.analyze(torch.nn.Linear(256, 1000), torch.randn(1, 256), hardware="h100")
    >>> a.profile.macs, a.prediction.hardware
    (256000, 'NVIDIA H100 SXM5 80GB')
    """
    if latency and (autocast is not None or channels_last):
        option = "autocast" if autocast is not None else "channels_last"
        raise ProfilingError(f"{option} is counted, not measured: leave out latency=True, or predict with hardware=")
    run_on = None if latency and device == "auto" else device
    counted = profile(
        model,
        *inputs,
        dtype=dtype,
        device=run_on,
        backward=backward,
        optimizer=optimizer,
        autocast=autocast,
        channels_last=channels_last,
        **kwargs,
    )
    measured = None
    if latency:
        on = None if run_on is None else torch.device(run_on)
        if counted.training is not None and optimizer is not None:
            step_s = measure_step(model, inputs, kwargs, optimizer, dtype, on)
            counted.training.step_s, counted.training.step_source = step_s, "measured"
        timing: dict[str, Any] = {"dtype": dtype, "device": on, "threads": threads}
        measured = measure(model, *inputs, min_time=min_time, progress=progress, **timing, **kwargs)
        measure_ops(counted, model, *inputs, **timing, **kwargs)
    return analysis_of(counted, measured, hardware or ("local" if latency else None), execution, explain)


def analysis_of(
    counted: Profile,
    latency: Latency | None = None,
    hardware_or_name: Hardware | str | None = None,
    execution: str = "eager",
    explain: bool = True,
) -> Analysis:
    """A profile already counted (and measured, when ``latency`` is given), predicted on ``hardware_or_name`` and
    explained; a prediction the hardware cannot make becomes a note, not an error."""
    if execution not in EXECUTIONS:
        raise ProfilingError(f"unknown execution {execution!r}: use one of {', '.join(EXECUTIONS)}")
    device = hardware(hardware_or_name) if isinstance(hardware_or_name, str) else hardware_or_name
    result = Analysis(counted, latency)
    if device is not None:
        try:
            result.prediction = predict(counted, device, execution=execution)
        except ValueError as exc:
            result.notes.append(f"no prediction: {exc}")
        if counted.training is not None:
            timed(counted.training, device, profile_dtype(counted), result.prediction)
    if explain:
        result.findings = find_reasons(counted, prediction=result.prediction, hardware=device)
    return result


def timed(step: TrainingStep, hardware: Hardware, dtype: str, prediction: Prediction | None) -> TrainingStep:
    """With the hardware's peak for MFU, and the predicted step time when none was measured."""
    step.peak_flop_per_s = hardware.peak.get(dtype)
    if step.step_s is None and prediction is not None:
        step.step_s, step.step_source = prediction.latency_s, f"predicted on {hardware.name}"
    return step
