"""A layout search: every way to spread a step over N GPUs (tensor parallel within a node, pipeline stages that
split the layers evenly, interleaved or not, data parallel with the rest, a microbatch size, recomputation or not),
each estimated with ``parallel()``, and the ones that fit ranked by step time, as Calculon (Isaev et al., SC'23)
searches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from torch import nn

from torchcost.errors import ProfilingError
from torchcost.hardware.interconnect import interconnect
from torchcost.hardware.spec import Hardware
from torchcost.multi_gpu.estimate import Probes, Training, parallel, token_inputs
from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.rank_probe import layer_list
from torchcost.multi_gpu.result import ParallelEstimate

MICROBATCHES = (1, 2, 4)  # sequences per microbatch tried
INTERLEAVINGS = (1, 2, 4)  # model chunks per pipeline rank tried, when the base layout does not set one
Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class SearchResult:
    """The layouts that fit, fastest first, and how many were tried."""

    gpus: int
    global_batch: int
    ranked: list[ParallelEstimate] = field(default_factory=list)
    tried: int = 0
    too_big: int = 0  # layouts whose first-stage rank does not fit the GPU's memory
    cannot_run: dict[str, int] = field(default_factory=dict)  # why a layout cannot run -> how many

    def to_dict(self) -> dict[str, object]:
        return {
            "gpus": self.gpus,
            "global_batch": self.global_batch,
            "tried": self.tried,
            "too_big": self.too_big,
            "cannot_run": dict(self.cannot_run),
            "ranked": [estimate.to_dict() for estimate in self.ranked],
        }


def candidates(gpus: int, layers: int, global_batch: int, node_gpus: int, base: Layout) -> Iterator[Layout]:
    """Layouts of exactly ``gpus`` GPUs for ``global_batch`` sequences per step; ``base`` gives the ZeRO stage, the
    context- and expert-parallel sizes, and the interleaving if above 1 (else 1, 2 and 4 are tried). Tensor
    parallelism stays within a node and is a power of two; sequence parallelism goes with it. Interleaving needs
    the microbatches in multiples of the pipeline stages (Megatron-LM's schedule)."""
    if gpus % base.cp:
        return
    ranks = gpus // base.cp  # what context parallelism leaves to the others
    interleavings = INTERLEAVINGS if base.vpp == 1 else (base.vpp,)
    for tp in (t for t in (1, 2, 4, 8, 16) if t <= node_gpus and ranks % t == 0):
        for pp in (p for p in range(1, ranks // tp + 1) if (ranks // tp) % p == 0):
            dp = ranks // (tp * pp)
            for microbatch in MICROBATCHES:
                if global_batch % (dp * microbatch) or dp % base.ep:
                    continue
                microbatches = global_batch // (dp * microbatch)
                for vpp in interleavings:
                    if layers % (pp * vpp) or (vpp > 1 and (pp == 1 or microbatches % pp)):
                        continue
                    for recompute in ("none", "full"):
                        yield replace(
                            base, dp=dp, tp=tp, pp=pp, sp=tp > 1, microbatch=microbatch, microbatches=microbatches,
                            vpp=vpp, recompute=recompute,
                        )  # fmt: skip


def search(
    model: nn.Module,
    gpus: int,
    global_batch: int,
    hardware: Hardware,
    training: Training,
    base: Layout | None = None,
    top: int = 10,
    progress: Progress | None = None,
) -> SearchResult:
    """The ``top`` fastest layouts of ``gpus`` GPUs that fit, each with its memory and step-time parts."""
    base = base or Layout(zero=1)
    _, layers = layer_list(model)
    links = interconnect(hardware.key)
    found = list(candidates(gpus, len(layers), global_batch, links.node_gpus, base))
    if not found:
        interleaved = f", each interleaved {base.vpp} times," if base.vpp > 1 else ""
        raise ProfilingError(
            f"no layout of {gpus} GPUs runs {global_batch} sequences per step in equal pipeline stages{interleaved} "
            f"of {len(layers)} layers; give a global batch that is a multiple of the data-parallel size"
        )
    probes = Probes(model, token_inputs(model), training.seq_len, hardware, training.dtype)
    result = SearchResult(gpus, global_batch, tried=len(found))
    fitting = []
    for done, layout in enumerate(found, start=1):
        try:
            estimate = parallel(model, layout, hardware, training, probes=probes)
        except ProfilingError as exc:  # a split the model does not allow (tp above its key-value heads)
            result.cannot_run[str(exc)] = result.cannot_run.get(str(exc), 0) + 1
            continue
        finally:
            if progress is not None:
                progress(done, len(found))
        if estimate.fits is False:
            result.too_big += 1
        else:
            fitting.append(estimate)
    result.ranked = sorted(fitting, key=lambda e: e.step.total_s)[:top]
    return result
