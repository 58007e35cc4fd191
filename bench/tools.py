"""One adapter per counting tool: ``(model, args, kwargs) -> Count``, each called the way its docs show.

A tool that cannot take keyword or dict inputs gets the positional form of the same call
(``inspect.signature(forward).bind``), which is what a user would write; where even that is impossible the
adapter raises and the case counts as not handled. MACs are what the tool reports as MACs (FlopCounterMode
and calflops report FLOPs too; FlopCounterMode's FLOPs are 2 per MAC, so MACs = FLOPs / 2).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class Count:
    params: int | None  # None: the tool does not count parameters
    macs: int | None
    flagged: bool = False  # the tool itself said the count is incomplete (uncounted ops, partial totals)
    device: str | None = None  # torchcost: where it counted (meta, or cpu after a fallback)


Adapter = Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], Count]


def positional(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The same call with every argument by position (for tools that take a tuple of inputs)."""
    if not kwargs:
        return args
    bound = inspect.signature(model.forward).bind(*args, **kwargs)
    if bound.kwargs:
        raise TypeError(f"keyword-only arguments {sorted(bound.kwargs)} cannot be passed by position")
    return tuple(bound.args)


def by_name(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return dict(inspect.signature(model.forward).bind(*args, **kwargs).arguments)


def torchcost_on(device: str | None) -> Adapter:
    def run(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Count:
        import torchcost

        p = torchcost.profile(model, *args, device=device, **kwargs)
        return Count(p.params.total, p.macs, flagged=bool(p.uncounted), device=p.device)

    return run


def flop_counter_mode(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Count:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    return Count(None, counter.get_total_flops() // 2)


def thop(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Count:
    import thop as thop_lib

    macs, params = thop_lib.profile(model, inputs=positional(model, args, kwargs), verbose=False)
    return Count(round(params), round(macs))


def ptflops_backend(backend: str) -> Adapter:
    def run(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Count:
        from ptflops import get_model_complexity_info

        if len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor):
            x = args[0]
            constructor: Callable[[Any], Any] = lambda _: x  # noqa: E731
        else:
            named = by_name(model, args, kwargs)
            constructor = lambda _: named  # noqa: E731
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            macs, params = get_model_complexity_info(
                model,
                (1,),
                input_constructor=constructor,
                as_strings=False,
                print_per_layer_stat=False,
                backend=backend,
            )
        if macs is None:
            raise RuntimeError("ptflops returned None (its forward failed)")
        return Count(None if params is None else round(params), round(macs))

    return run


def fvcore(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Count:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    analysis = FlopCountAnalysis(model, positional(model, args, kwargs))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    return Count(parameter_count(model)[""], analysis.total())  # fvcore's "flops" are one per MAC


def torchinfo(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Count:
    from torchinfo import summary

    stats = summary(model, input_data=list(args), verbose=0, mode="eval", **kwargs)
    return Count(stats.total_params, stats.total_mult_adds)


def calflops(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Count:
    from calflops import calculate_flops

    with contextlib.redirect_stdout(io.StringIO()):
        _, macs, params = calculate_flops(
            model,
            args=list(args),
            kwargs=kwargs,
            print_results=False,
            print_detailed=False,
            output_as_string=False,
        )
    return Count(round(params), round(macs))


def torchprofile(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Count:
    from torchprofile import profile_macs

    return Count(None, profile_macs(model, positional(model, args, kwargs)))


def torchscan(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Count:
    import torchscan as scan

    with contextlib.redirect_stdout(io.StringIO()):
        report = scan.crawl_module(model, args=args, kwargs=kwargs)
    totals = report["totals"]
    macs = totals["macs"]
    partial = macs["status"] != "complete"  # torchscan says so; the known part is then its count
    return Count(int(totals["parameters"]["value"]), int(macs["known_value"]), flagged=partial)


TOOLS: dict[str, Adapter] = {
    "torchcost (auto: meta)": torchcost_on("auto"),
    "torchcost (cpu)": torchcost_on(None),
    "FlopCounterMode": flop_counter_mode,
    "fvcore": fvcore,
    "thop": thop,
    "ptflops (pytorch)": ptflops_backend("pytorch"),
    "ptflops (aten)": ptflops_backend("aten"),
    "torchinfo": torchinfo,
    "calflops": calflops,
    "torchprofile": torchprofile,
    "torchscan": torchscan,
}

PACKAGES = {  # the distribution behind each tool, for the versions table
    "FlopCounterMode": "torch",
    "fvcore": "fvcore",
    "thop": "thop",
    "ptflops (pytorch)": "ptflops",
    "ptflops (aten)": "ptflops",
    "torchinfo": "torchinfo",
    "calflops": "calflops",
    "torchprofile": "torchprofile",
    "torchscan": "torchscan",
    "torchcost (auto: meta)": "torchcost",
    "torchcost (cpu)": "torchcost",
}


def fresh(model: nn.Module) -> nn.Module:
    """A private copy, so that no tool sees attributes or hooks another tool left behind."""
    return copy.deepcopy(model)
