"""What one rank's share of a model costs, per layer and for the rest, found by running a copy of it on meta:
the model is cut to its first three layers, narrowed to one tensor-parallel rank, and then counted
(``profile`` + ``predict``: kernel times forward and backward) and tracked (``memory``, CUDA's rules: the
activations held for backward, with recomputation as asked). Per-layer figures are the mean of the layers that
hand their output to another layer, as all but the model's last do; the rest (embedding, final norm, head, loss)
is split into what runs before the layers (the first pipeline stage's) and after them (the last stage's)."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from torchcost.emulate.on_meta import CudaChoices
from torchcost.errors import ProfilingError, first_line
from torchcost.hardware.spec import Hardware
from torchcost.multi_gpu.expert_parallel import split_experts, top_k_of
from torchcost.multi_gpu.tensor_parallel import TensorPlan, split_for_rank
from torchcost.peak_memory import memory
from torchcost.peak_memory.memory_profile import TimelinePoint
from torchcost.predict import predict
from torchcost.predict.kernels import tensor_bytes
from torchcost.profiler import profile
from torchcost.records import OpRecord
from torchcost.tensors import dtype_name
from torchcost.units import SHORT_DTYPE_NAMES

PROBE_LAYERS = 3  # the mean layer is of all but the last: each of those hands its output to a layer, as in the model
CORE_ATTENTION = "core_attention"  # the module Megatron-LM's selective recomputation recomputes
TRANSIENT = ("temporaries", "workspace")  # the tracker's categories that last only while ops run


@dataclass(frozen=True)
class Part:
    """One piece of the rank's model: parameters (elements), activations kept for backward (bytes, one
    microbatch), and predicted kernel time forward and backward (seconds, one microbatch)."""

    params: int = 0
    activations: int = 0
    forward_s: float = 0.0
    backward_s: float = 0.0
    recompute_s: float = 0.0  # forward time run again in backward by the recomputation asked for
    flops: float = 0.0  # forward and backward FLOPs (without recomputation)
    expert_params: int = 0  # of ``params``: the routed experts' (split by expert parallelism)


@dataclass(frozen=True)
class Share:
    """Which share of the model and of each step one rank takes: its tensor-parallel split, its sequences per
    microbatch, the part of each sequence (context parallelism) and what it recomputes."""

    tp: int
    microbatch: int
    recompute: str
    cp: int = 1
    ep: int = 1
    sp: bool = False  # sequence parallelism: what every tensor-parallel rank repeats runs on 1/tp of the tokens


@dataclass(frozen=True)
class RankCosts:
    """One tensor-parallel rank at one microbatch: a mean layer, and the parts before and after the layers."""

    layer: Part
    first: Part
    last: Part
    transient: int  # bytes of temporaries and kernel workspaces alive at the peak of the run
    layer_transient: int  # ... the most alive while a layer's backward runs
    kv_bytes: int  # one layer's keys and values for the rank's part of a microbatch (what a ring passes on)
    moe_layers: float  # the share of layers with routed experts
    top_k: int  # experts each token goes to (1 without experts)
    attention_s: float  # one layer's attention kernels, forward and backward, against the whole sequence
    notes: tuple[str, ...] = ()


def layer_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The model's repeated blocks: its ``nn.ModuleList`` holding the most parameters."""
    lists = [
        (name, module) for name, module in model.named_modules() if isinstance(module, nn.ModuleList) and len(module)
    ]
    if not lists:
        raise ProfilingError(
            f"{type(model).__name__} has no nn.ModuleList of layers to split into pipeline stages; "
            "multi-GPU estimates need a model built from repeated blocks (a transformer)"
        )
    return max(lists, key=lambda item: sum(p.numel() for p in item[1].parameters()))


InputMaker = Callable[[int, int], tuple[tuple[Any, ...], dict[str, Any]]]  # (sequences, length) -> args, kwargs


def probe(
    model: nn.Module,
    make_inputs: InputMaker,
    seq_len: int,
    share: Share,
    hardware: Hardware,
    dtype: torch.dtype = torch.bfloat16,
    plan: TensorPlan | None = None,
) -> RankCosts:
    """Costs of one rank of ``model`` (on meta) running its share of one microbatch of ``seq_len`` in ``dtype``.
    Under context parallelism the rank runs ``seq_len / cp`` tokens, and its attention, whose queries see the
    whole sequence, takes ``cp`` times what it takes on that part alone."""
    tp, recompute = share.tp, share.recompute
    path, layers = layer_list(model)
    kept = min(PROBE_LAYERS, len(layers))
    cut = _cut(model, path, kept)
    if recompute == "selective" and not any(n.endswith(CORE_ATTENTION) for n, _ in cut.named_modules()):
        raise ProfilingError(
            f"selective recomputation recomputes the attention core, and {type(model).__name__} has no "
            f"'{CORE_ATTENTION}' module (transformers runs attention as a function; with SDPA it keeps no "
            "sequence x sequence tensor anyway): use recompute 'full' or 'none'"
        )
    split = split_for_rank(cut, tp, plan)
    blocks = split_experts(cut, share.ep)
    names = [f"{path}.{i}" for i in range(kept)]
    measured = names[:-1] if kept > 1 else names  # whose outputs the next layer keeps as the model's would
    args, kwargs = make_inputs(share.microbatch, seq_len // share.cp)
    try:
        with CudaChoices():  # the counts, as the memory below (target="cuda"), are CUDA's
            counted = profile(cut, *args, device="meta", backward=True, dtype=dtype, **kwargs)
    except ProfilingError as exc:
        if tp == 1:
            raise
        raise ProfilingError(
            f"one of {tp} tensor-parallel ranks of {type(model).__name__} failed to run ({first_line(exc)}); its "
            "attention may shape heads in a way the split does not know: name its modules with TensorPlan, or use tp 1"
        ) from exc
    timed = predict(counted, hardware, dtype=short_dtype(dtype))
    checkpoint = {"none": None, "full": f"{path}.*", "selective": f"*{CORE_ATTENTION}"}[recompute]
    tracked = memory(
        cut, *args, train=True, dtype=dtype, device="meta", target="cuda", checkpoint=checkpoint, loss=_loss, **kwargs
    )
    saved = {m.name: m.activation_bytes for m in tracked.modules}
    device_s = [0.0] * len(counted.records)
    for op in timed.ops:
        device_s[op.index] += op.device_s
    attention = [i for i, record in enumerate(counted.records) if _is_attention(record)]
    for index in attention:
        device_s[index] *= share.cp
    notes = list(split.notes)
    if share.sp and tp > 1:
        whole = _cut(model, path, kept)
        split_experts(whole, share.ep)
        with CudaChoices():
            unsplit = profile(whole, *args, device="meta", backward=True, dtype=dtype, **kwargs).records
        for index in repeated_by_tp_ranks(counted.records, unsplit):
            device_s[index] /= tp
    times = _times(counted.records, device_s, names, recompute)
    before = _modules_before(counted.records, names[0])
    params = _params(cut, names, before)
    layer_saved = sum(saved.get(n, 0) for n in measured) / len(measured)
    first_saved = _saved_before(tracked.timeline, names[0])
    rest_saved = saved.get("", 0) - sum(saved.get(n, 0) for n in names) - first_saved
    return RankCosts(
        layer=Part(round(params["layer"] / kept), round(layer_saved), *times["layer"], round(params["experts"] / kept)),
        first=Part(params["first"], first_saved, *times["first"]),
        last=Part(params["last"], round(rest_saved), *times["last"]),
        transient=sum(tracked.breakdown.get(kind, 0) for kind in TRANSIENT),
        layer_transient=_layer_transient(tracked.timeline, names),
        kv_bytes=_kv_bytes(counted.records, model, share.cp),
        moe_layers=sum(any(_within(b, n) for b in blocks) for n in names) / kept,
        top_k=top_k_of(cut) if blocks else 1,
        attention_s=sum(device_s[i] for i in attention) / kept,
        notes=tuple(notes),
    )


def hidden_size(model: nn.Module) -> int:
    """The width of the residual stream: the config's ``hidden_size`` (``n_embd``), else the widest embedding's."""
    config = getattr(model, "config", None)
    for key in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    widths = [m.embedding_dim for m in model.modules() if isinstance(m, nn.Embedding)]
    if not widths:
        raise ProfilingError(
            f"cannot tell the hidden size of {type(model).__name__}: it has no config and no embedding"
        )
    return max(widths)


def repeated_by_tp_ranks(rank: list[OpRecord], whole: list[OpRecord]) -> list[int]:
    """The ops of a tensor-parallel rank that every rank runs whole, which sequence parallelism splits over the
    ranks' tokens (Korthikanti et al. 2022, section 4.2.2): the norms, dropouts and residual adds, their gradients,
    and whatever the split left whole. Each op is matched with the unsplit model's (``whole``) by its phase, module
    and place among that module's ops of its name; it is repeated when their shapes are the same, attention aside
    (its queries need every key). An op one run has and the other not (a reshape that copies only when heads are
    split) is not."""
    unsplit = dict(zip(_op_keys(whole), whole, strict=True))
    return [
        index
        for index, (key, mine) in enumerate(zip(_op_keys(rank), rank, strict=True))
        if (other := unsplit.get(key)) is not None
        and (mine.input_shapes, mine.output_shapes) == (other.input_shapes, other.output_shapes)
        and not _is_attention(mine)
    ]


def _op_keys(records: list[OpRecord]) -> list[tuple[str, str, str, int]]:
    """(phase, innermost module, op, how many of that op the module ran before in that phase) per record."""
    seen: Counter[tuple[str, str, str]] = Counter()
    keys = []
    for record in records:
        where = (record.phase, record.modules[-1] if record.modules else "", record.op)
        keys.append((*where, seen[where]))
        seen[where] += 1
    return keys


def _cut(model: nn.Module, path: str, keep: int) -> nn.Module:
    """A copy of ``model`` (on meta: no weight is copied) with only its first ``keep`` layers."""
    layers = model.get_submodule(path)
    assert isinstance(layers, nn.ModuleList)
    memo = {id(layer): layer for layer in layers[keep:]}  # not copied: dropped below
    cut = copy.deepcopy(model, memo)
    parent, _, leaf = path.rpartition(".")
    owner = cut.get_submodule(parent) if parent else cut
    setattr(owner, leaf, nn.ModuleList(list(cut.get_submodule(path).children())[:keep]))
    return cut


def _loss(output: Any) -> torch.Tensor:
    loss = getattr(output, "loss", None)
    if isinstance(loss, torch.Tensor):
        return loss
    logits: torch.Tensor = output[0] if isinstance(output, tuple) else output
    return logits.float().sum()


def _is_attention(record: OpRecord) -> bool:
    """Fused attention, forward or backward, or an op of its reference where the device counted it that way."""
    return "scaled_dot_product" in record.op or record.fused.startswith("scaled_dot_product")


def _kv_bytes(records: list[OpRecord], model: nn.Module, cp: int) -> int:
    """Keys and values of one layer's fused attention (its second and third inputs), forward."""
    for record in records:
        if record.phase == "forward" and "scaled_dot_product" in record.op and len(record.input_shapes) >= 3:
            return sum(tensor_bytes(shape, record.input_dtypes[1]) for shape in record.input_shapes[1:3])
    if cp > 1:
        raise ProfilingError(
            f"context parallelism passes each layer's keys and values round a ring, and {type(model).__name__} runs "
            "no fused attention (F.scaled_dot_product_attention) to find them in: leave cp at 1"
        )
    return 0


def short_dtype(dtype: torch.dtype) -> str:
    """The name the hardware tables give ``dtype`` ("bf16")."""
    return SHORT_DTYPE_NAMES[dtype_name(dtype)]


def _within(path: str, module: str) -> bool:
    """``path`` is ``module`` or inside it."""
    return path == module or path.startswith(module + ".")


def _layer_transient(timeline: list[TimelinePoint], layers: list[str]) -> int:
    """The most bytes of temporaries and workspaces alive at once while a layer's backward runs."""
    inside = (
        point for point in timeline if point.phase == "backward" and any(_within(point.module, n) for n in layers)
    )
    return max((sum(point.bytes.get(kind, 0) for kind in TRANSIENT) for point in inside), default=0)


def _saved_before(timeline: list[TimelinePoint], first_layer: str) -> int:
    """Bytes of activations (kept for backward) made before the first layer's first op."""
    saved = 0
    for point in timeline:
        if _within(point.module, first_layer):
            break
        saved = point.bytes.get("activations", 0)
    return saved


def _modules_before(records: list[OpRecord], first_layer: str) -> list[str]:
    """The outermost modules that run before the first layer (the embedding's side of the model)."""
    found: list[str] = []
    for record in records:
        if record.phase != "forward":
            continue
        if first_layer in record.modules:
            break
        outer = next((m for m in record.modules if m and not _within(first_layer, m)), None)
        if outer is not None and not any(_within(outer, f) for f in found):
            found.append(outer)
    return found


def _params(model: nn.Module, layers: list[str], before: list[str]) -> dict[str, int]:
    """Parameter elements of the layers (and of their experts), of the modules before them and of the rest, each
    tensor once (``named_parameters`` names a tied one once)."""
    found = {"layer": 0, "first": 0, "last": 0, "experts": 0}
    for name, param in model.named_parameters():
        count = param.numel()
        if any(_within(name, layer) for layer in layers):
            found["layer"] += count
            found["experts"] += count if ".experts." in name else 0
        elif any(_within(name, module) for module in before):
            found["first"] += count
        else:
            found["last"] += count
    return found


def _times(
    records: list[OpRecord], device_s: list[float], layers: list[str], recompute: str
) -> dict[str, tuple[float, float, float, float]]:
    """(forward, backward, recomputed forward) kernel seconds and FLOPs of a mean layer, of the first part and
    of the last part. An op outside the layers is the first part's if it runs before them in its phase's order."""
    sums = {key: [0.0, 0.0, 0.0, 0.0] for key in ("layer", "first", "last")}
    kept = len(layers)
    seen_layer = {"forward": False, "backward": False}
    for record, seconds in zip(records, device_s, strict=True):
        column = 0 if record.phase == "forward" else 1
        in_layer = any(layer in record.modules for layer in layers)
        if in_layer:
            seen_layer[record.phase] = True
            sums["layer"][column] += seconds / kept
            sums["layer"][3] += record.cost.flops / kept
            again = recompute == "full" or any(m.endswith(CORE_ATTENTION) for m in record.modules)
            if record.phase == "forward" and recompute != "none" and again:
                sums["layer"][2] += seconds / kept
            continue
        before = not seen_layer[record.phase]
        part = ("first" if before else "last") if record.phase == "forward" else ("last" if before else "first")
        sums[part][column] += seconds
        sums[part][3] += record.cost.flops
    return {key: (values[0], values[1], values[2], values[3]) for key, values in sums.items()}
