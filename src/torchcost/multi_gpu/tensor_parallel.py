"""One tensor-parallel rank's share of a model, made by narrowing its weights on a meta copy as Megatron-LM splits
them (Shoeybi et al. 2019, section 3): the first matmul of attention and of the MLP is column-parallel (its
output features split, heads split), the second row-parallel (its input features split, its bias whole), the
embedding and the output head split by vocabulary. The rank's own forward then runs with the rank's shapes, so
its FLOPs, bytes and saved activations are what one GPU of the group does and keeps."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchcost.errors import ProfilingError

# Module names (the last part of the path) split by output features: attention's query/key/value projections
# and the MLP's first matmul, under the names transformers and Megatron give them.
COLUMN = (
    "q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value", "c_attn", "query", "key", "value", "Wqkv",
    "gate_proj", "up_proj", "gate_up_proj", "fc1", "c_fc", "w1", "w3", "dense_h_to_4h", "linear_qkv", "linear_fc1",
)  # fmt: skip
# ... and by input features: attention's output projection and the MLP's second matmul
ROW = ("o_proj", "out_proj", "c_proj", "dense", "down_proj", "fc2", "w2", "dense_4h_to_h", "linear_proj", "linear_fc2")
# Head counts an attention module keeps and uses to shape its tensors: divided by tp on the modules that own a
# column-parallel matmul (GPT-2 splits its fused projection by ``split_size``)
HEAD_ATTRIBUTES = ("num_heads", "num_attention_heads", "num_key_value_heads", "n_head", "n_heads", "split_size")


@dataclass(frozen=True)
class TensorPlan:
    """Which modules tensor parallelism splits, by name pattern (fnmatch on the last part of the path)."""

    column: tuple[str, ...] = COLUMN
    row: tuple[str, ...] = ROW
    vocab: bool = True  # split the largest embedding and a head of the same size by vocabulary


@dataclass
class RankSplit:
    """What ``split_for_rank`` did: the paths it split each way, and notes (vocabulary padding)."""

    column: list[str] = field(default_factory=list)
    row: list[str] = field(default_factory=list)
    vocab: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def split_for_rank(model: nn.Module, tp: int, plan: TensorPlan | None = None) -> RankSplit:
    """Narrow ``model`` (a meta copy: it is changed) to one of ``tp`` tensor-parallel ranks."""
    plan = plan or TensorPlan()
    done = RankSplit()
    if tp == 1:
        return done
    heads = _divide_config_heads(model, tp)
    replaced: dict[int, nn.Parameter] = {}  # id(old weight) -> its rank's share (tied weights stay tied)
    vocab_size = _vocab_size(model) if plan.vocab else None
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(module, nn.Embedding) and vocab_size == module.num_embeddings:
            _split_weight(module, name, 0, tp, replaced, done, pad=True)
            module.num_embeddings = module.weight.shape[0]
            module.padding_idx = None  # a rank's rows are a slice of the vocabulary (no padding row of its own)
            done.vocab.append(name)
        elif _is_matmul(module) and vocab_size is not None and _features(module)[0] == vocab_size:
            _split_matmul(module, name, tp, column=True, replaced=replaced, done=done, pad=True)
            done.vocab.append(name)
        elif _is_matmul(module) and _matches(leaf, plan.column):
            _split_matmul(module, name, tp, column=True, replaced=replaced, done=done)
            done.column.append(name)
        elif _is_matmul(module) and _matches(leaf, plan.row):
            _split_matmul(module, name, tp, column=False, replaced=replaced, done=done)
            done.row.append(name)
    if done.vocab and vocab_size is not None:  # the loss sees the rank's share of the logits (Megatron's
        # vocabulary-parallel cross entropy adds only per-token all-reduces of maxima and sums)
        for holder in (module for owner in model.modules() for module in (owner, getattr(owner, "config", None))):
            if getattr(holder, "vocab_size", None) == vocab_size:
                setattr(holder, "vocab_size", -(-vocab_size // tp))  # noqa: B010 (a module or a config)
    owners = {name.rsplit(".", 1)[0] if "." in name else "" for name in done.column}
    for name, module in model.named_modules():
        if name in owners:
            _divide_heads(module, name, tp, heads, replaced)
    whole = _left_whole(model, set(map(id, replaced.values())))
    if whole:
        shown = ", ".join(whole[:3]) + (f" and {len(whole) - 3} more" if len(whole) > 3 else "")
        done.notes.append(f"tensor parallelism leaves these weights whole on every rank: {shown}")
    if not done.column or not done.row:
        missing, looked = ("column", plan.column) if not done.column else ("row", plan.row)
        raise ProfilingError(
            f"tensor parallelism found no {missing}-parallel matmul in {type(model).__name__} (names looked for: "
            f"{', '.join(looked[:6])}, ...); name them with TensorPlan(column=..., row=...)"
        )
    return done


def _left_whole(model: nn.Module, shares: set[int]) -> list[str]:
    """Matrices (2-D or more) no split touched, by owning module: experts kept as one tensor, convolutions
    (position tables are whole on every rank in Megatron-LM too)."""
    owners: list[str] = []
    for name, param in model.named_parameters():
        owner = name.rpartition(".")[0]
        embedding = isinstance(model.get_submodule(owner), nn.Embedding)
        if param.dim() >= 2 and id(param) not in shares and not embedding and owner not in owners:
            owners.append(owner)
    return owners


def _divide_config_heads(model: nn.Module, tp: int) -> set[int]:
    """Each rank takes whole heads: refuse a tp that does not divide a head count the config gives, and give the
    rank's config (the copy's own) its share, for forwards that read it (Phi-3 slices its fused projection by
    ``config.num_attention_heads``); ``head_dim`` is written down first, so that nothing derives it anew."""
    config: Any = getattr(model, "config", None)
    keys = ("num_attention_heads", "num_key_value_heads", "n_head")
    found: dict[str, int] = {key: getattr(config, key) for key in keys if isinstance(getattr(config, key, None), int)}
    for key, heads in found.items():
        if heads % tp:
            raise ProfilingError(
                f"tp {tp} does not divide the {heads} heads of {type(model).__name__} (config {key}); give a tp "
                f"that divides {heads}"
            )
    hidden, attention_heads = getattr(config, "hidden_size", None), found.get("num_attention_heads")
    if attention_heads and isinstance(hidden, int) and getattr(config, "head_dim", None) is None:
        config.head_dim = hidden // attention_heads
    for key, heads in found.items():
        setattr(config, key, heads // tp)
    return set(found.values())


def _matches(leaf: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(leaf, pattern) for pattern in patterns)


def _is_matmul(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or _is_conv1d(module)


def _is_conv1d(module: nn.Module) -> bool:
    """transformers' Conv1D (GPT-2): a linear layer whose weight is stored (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def _features(module: nn.Module) -> tuple[int, int]:
    """(out, in) features of a matmul module."""
    rows, columns = _weight(module).shape
    return (columns, rows) if _is_conv1d(module) else (rows, columns)


def _weight(module: nn.Module) -> nn.Parameter:
    weight = module.weight
    assert isinstance(weight, nn.Parameter), f"{type(module).__name__}.weight is not a parameter"
    return weight


def _vocab_size(model: nn.Module) -> int | None:
    """The vocabulary: the config's ``vocab_size``, else an embedding's size that a matmul also outputs (a
    head); a position table is neither."""
    sizes = {m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)}
    configured = getattr(getattr(model, "config", None), "vocab_size", None)
    if configured in sizes:
        return int(configured)
    heads = sizes & {_features(m)[0] for m in model.modules() if _is_matmul(m)}
    return max(heads) if heads else None


def _split_matmul(
    module: nn.Module,
    name: str,
    tp: int,
    column: bool,
    replaced: dict[int, nn.Parameter],
    done: RankSplit,
    pad: bool = False,
) -> None:
    conv1d = _is_conv1d(module)
    out_dim = 1 if conv1d else 0
    _split_weight(module, name, out_dim if column else 1 - out_dim, tp, replaced, done, pad)
    bias = getattr(module, "bias", None)
    if column and isinstance(bias, nn.Parameter):  # a row-parallel matmul adds its whole bias after the all-reduce
        module.bias = share_of(bias, 0, tp, replaced)
    out, inp = _features(module)
    features = {"nf": out} if conv1d else {"out_features": out, "in_features": inp}
    for key, value in features.items():
        setattr(module, key, value)


def _split_weight(
    module: nn.Module, name: str, dim: int, tp: int, replaced: dict[int, nn.Parameter], done: RankSplit, pad: bool
) -> None:
    size = _weight(module).shape[dim]
    if size % tp and not pad:
        raise ProfilingError(f"tp {tp} does not divide the {size} features of {name}; give a tp that divides {size}")
    note = f"the vocabulary of {size:,} is padded to {-(-size // tp) * tp:,} to split over {tp} ranks"
    if size % tp and note not in done.notes:
        done.notes.append(note)
    module.weight = share_of(_weight(module), dim, tp, replaced)


def share_of(param: nn.Parameter, dim: int, parts: int, replaced: dict[int, nn.Parameter]) -> nn.Parameter:
    """One of ``parts`` ranks' share of ``param`` along ``dim`` (on its device: meta), the same share for a tensor
    seen before (tied weights)."""
    known = replaced.get(id(param))
    if known is not None:
        return known
    shape = list(param.shape)
    shape[dim] = -(-shape[dim] // parts)
    share = nn.Parameter(torch.empty(shape, dtype=param.dtype, device=param.device), requires_grad=param.requires_grad)
    replaced[id(param)] = share
    return share


def _divide_heads(module: nn.Module, name: str, tp: int, heads: set[int], replaced: dict[int, nn.Parameter]) -> None:
    """An attention module's head counts, and its per-head vectors (gpt-oss's attention sinks), split."""
    for attribute in HEAD_ATTRIBUTES:
        value = getattr(module, attribute, None)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if value % tp:
            raise ProfilingError(
                f"tp {tp} does not divide the {value} {attribute.replace('_', ' ')} of {name}; "
                f"give a tp that divides {value}"
            )
        setattr(module, attribute, value // tp)
    for key, param in list(module.named_parameters(recurse=False)):
        if param.dim() == 1 and param.shape[0] in heads:
            setattr(module, key, share_of(param, 0, tp, replaced))
