"""``memory_spec``: load the model a spec names, build its example input, and track its memory (on meta when it
can, as ``profile_spec`` counts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from torchcost.errors import ProfilingError
from torchcost.from_spec import before_cpu_retry, floating_dtype
from torchcost.inputs import InputOptions, example_inputs
from torchcost.peak_memory.estimate import MemorySettings, estimate
from torchcost.peak_memory.memory_profile import MemoryProfile
from torchcost.prepare import meta_then
from torchcost.sources import load_model


@dataclass
class Loaded:
    """A model built from a spec, on the device it was tracked on, with its example inputs."""

    model: nn.Module
    inputs: tuple[Any, ...]
    kwargs: dict[str, Any]
    device: str


def memory_spec(
    spec: str,
    inputs: InputOptions,
    settings: MemorySettings,
    *,
    device: str | None = None,
    target: str | None = None,
    capability: tuple[int, int] | None = None,
    trust_pickle: bool = False,
    weights: str | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> tuple[MemoryProfile, Loaded]:
    """The ``MemoryProfile`` of ``spec`` and the model and inputs it ran. Without ``device``: on meta, and on
    the CPU when the model needs real values (unless its weights would not fit in this machine's memory)."""
    model: nn.Module | None = None  # the last one built

    def track(run_on: str) -> tuple[MemoryProfile, Loaded]:
        nonlocal model
        source = load_model(spec, run_on, trust_pickle=trust_pickle, weights=weights)
        model = source.model
        args, kwargs = example_inputs(source, inputs, run_on)
        run_settings = replace(settings, dtype=settings.dtype or floating_dtype(model))  # an fp16 checkpoint: fp16
        result = estimate(model, args, kwargs, run_settings, run_on, target, capability=capability)
        return result, Loaded(model, args, kwargs, run_on)

    def announce(exc: ProfilingError) -> None:
        assert model is not None  # built before it ran
        before_cpu_retry(model, exc, "tracking", on_retry)

    result, loaded = track(device) if device else meta_then("cpu", track, announce)
    result.model = spec
    return result, loaded
