"""``profile_spec``: load the model a spec names, build its example input, count it (on meta when it can)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from torchcost.errors import ProfilingError, first_line
from torchcost.inputs import InputOptions, example_inputs
from torchcost.prepare import as_dtype, meta_then
from torchcost.profiler import profile
from torchcost.records import Profile
from torchcost.sources import LoadedModel, ModelSourceError, load_model
from torchcost.step import autocast_dtype
from torchcost.units import si

RETRY_REASON_CHARS = 160  # the first line of why meta failed, cut to this length
MEMORY_SHARE = 0.5  # the CPU fallback may allocate weights up to this share of the machine's memory


def profile_spec(
    spec: str,
    inputs: InputOptions | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    backward: bool = False,
    trust_pickle: bool = False,
    weights: str | None = None,
    on_retry: Callable[[str], None] | None = None,
    optimizer: str | None = None,
    autocast: str | None = None,
    channels_last: bool = False,
) -> Profile:
    """Profile ``spec`` (see ``torchcost.sources``) with its default or the given example input.

    With no ``device``, count on ``meta`` (no weight memory) and, if the model needs real data, on the CPU,
    unless its weights would take more than half of this machine's memory. ``on_retry`` hears why.
    ``autocast`` and ``channels_last`` are ``profile``'s.
    """
    options = inputs or InputOptions()
    as_dtype(dtype)  # an unknown dtype is refused before any model is built, not retried on the cpu
    autocast_dtype(autocast)
    loaded = load_model(spec, device or "meta", trust_pickle=trust_pickle, weights=weights)
    made = _example_inputs(loaded, options)

    def count(run_on: str) -> Profile:
        nonlocal loaded, made
        if run_on != (device or "meta"):  # the fallback: the model built again where it can run
            loaded = load_model(spec, run_on, trust_pickle=trust_pickle, weights=weights)
            made = _example_inputs(loaded, options)
        args, kwargs = made
        return profile(
            loaded.model,
            *args,
            dtype=dtype or floating_dtype(loaded.model),  # e.g. an fp16 checkpoint takes fp16 inputs
            device=run_on,
            backward=backward,
            optimizer=optimizer,
            autocast=autocast,
            channels_last=channels_last,
            **kwargs,
        )

    def announce(exc: ProfilingError) -> None:
        before_cpu_retry(loaded.model, exc, "counting", on_retry)

    try:
        result = count(device) if device else meta_then("cpu", count, announce)
    except ModelSourceError:
        raise  # it says what to do already
    except ProfilingError as exc:
        raise with_fallback(loaded, exc, "counting") from exc
    result.model = spec
    if loaded.keyword_inputs is not None and loaded.keyword_inputs.note:
        result.notes.append(f"inputs made: {loaded.keyword_inputs.note}")
    result.notes += [loaded.note] if loaded.note else []
    return result


def _example_inputs(loaded: LoadedModel, options: InputOptions) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The spec's example inputs, made on the CPU (on meta, the model may look at their values)."""
    try:
        return example_inputs(loaded, options)
    except (RuntimeError, ValueError, TypeError) as exc:  # a ProfilingError is both of the first two
        raise with_fallback(loaded, exc, "making its example inputs") from exc


def with_fallback(loaded: LoadedModel, exc: Exception, doing: str) -> Exception:
    """``exc``, or where the source knows what else to try (a default config's real checkpoints), a one-line
    error that says it."""
    if not loaded.if_it_fails:
        return exc
    why = first_line(exc) or type(exc).__name__
    return ModelSourceError(f"{loaded.spec}: {doing} failed ({type(exc).__name__}: {why}); {loaded.if_it_fails}")


def floating_dtype(model: nn.Module) -> torch.dtype | None:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def before_cpu_retry(model: nn.Module, exc: ProfilingError, doing: str, on_retry: Callable[[str], None] | None) -> None:
    """After a run on meta failed: refuse a CPU run the weights would not fit, else tell ``on_retry`` why."""
    check_fits_in_memory(model, exc)
    if on_retry is not None:
        why = first_line(exc)
        why = why if len(why) <= RETRY_REASON_CHARS else why[: RETRY_REASON_CHARS - 3] + "..."
        on_retry(f"{doing} on meta failed ({why}); retrying on cpu")


def check_fits_in_memory(model: nn.Module, exc: ProfilingError) -> None:
    """Refuse the CPU fallback when the weights alone would take more than half of this machine's memory."""
    weights = sum(t.numel() * t.element_size() for t in itertools.chain(model.parameters(), model.buffers()))
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if weights > memory * MEMORY_SHARE:
        why = (
            f"\n  counting on meta failed, and on the cpu the weights alone would take {si(weights, 'B')} of this "
            f"machine's {si(memory, 'B')}; to try anyway, pass "
        )
        raise ProfilingError(f"{exc}{why}device='cpu'", cli=f"{exc.cli}{why}--device cpu") from exc
