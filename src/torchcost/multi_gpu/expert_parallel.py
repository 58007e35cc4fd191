"""One expert-parallel rank's share of a mixture-of-experts model, made on a meta copy: each MoE block keeps
``num_experts / ep`` of its experts, and its router chooses among those. With tokens spread evenly over the
experts (as torchcost's meta run spreads a router's picks), each kept expert then gets the tokens it gets under
expert parallelism, where the ep ranks send it their tokens: ``tokens x top_k x ep / num_experts`` (Megatron-LM's
expert parallelism, after GShard, Lepikhin et al. 2020)."""

from __future__ import annotations

from typing import Any

from torch import nn

from torchcost.errors import ProfilingError
from torchcost.multi_gpu.tensor_parallel import share_of

EXPERT_COUNTS = ("num_local_experts", "num_experts", "n_routed_experts")  # config and module attributes
TOP_K = ("num_experts_per_tok", "top_k", "moe_top_k")


def experts_of(model: nn.Module) -> int | None:
    """The number of routed experts of each MoE block, from the model's config (None: not a mixture of experts)."""
    config = getattr(model, "config", None)
    found = (getattr(config, key, None) for key in EXPERT_COUNTS)
    return next((value for value in found if isinstance(value, int) and value > 1), None)


def top_k_of(model: nn.Module) -> int:
    """Experts each token goes to, from the config (1 when it does not say)."""
    config = getattr(model, "config", None)
    found = (getattr(config, key, None) for key in TOP_K)
    return next((value for value in found if isinstance(value, int) and value > 0), 1)


def moe_blocks(model: nn.Module) -> list[str]:
    """Paths of the modules that hold a child named ``experts``: the MoE blocks."""
    return [name for name, module in model.named_modules() if isinstance(getattr(module, "experts", None), nn.Module)]


def split_experts(model: nn.Module, ep: int) -> list[str]:
    """Narrow ``model`` (a meta copy: it is changed) to one of ``ep`` expert-parallel ranks; returns the MoE blocks."""
    experts = experts_of(model)
    blocks = moe_blocks(model)
    if ep == 1:
        return blocks
    if experts is None or not blocks:
        raise ProfilingError(
            f"{type(model).__name__} has no experts to split: expert parallelism needs a mixture of experts"
        )
    if experts % ep:
        raise ProfilingError(
            f"ep {ep} does not divide the {experts} experts of {type(model).__name__}; "
            f"give an ep that divides {experts}"
        )
    config: Any = getattr(model, "config", None)
    top_k = top_k_of(model)
    if top_k > experts // ep:
        raise ProfilingError(
            f"each token goes to {top_k} experts, more than the {experts // ep} each of {ep} ranks holds, and the "
            "rank's router picks among its own (torchcost's way of giving each expert its tokens); "
            f"give an ep of at most {experts // top_k}"
        )
    for path in blocks:
        for module in model.get_submodule(path).modules():
            _narrow(module, experts, ep)
    for key in EXPERT_COUNTS:
        if getattr(config, key, None) == experts:
            setattr(config, key, experts // ep)
    return blocks


def _narrow(module: nn.Module, experts: int, ep: int) -> None:
    for key, param in list(module.named_parameters(recurse=False)):
        if param.dim() >= 1 and param.shape[0] == experts:
            setattr(module, key, share_of(param, 0, ep, {}))
    for key in (*EXPERT_COUNTS, "out_features"):
        if getattr(module, key, None) == experts:
            setattr(module, key, experts // ep)
