"""Calls a GPU runs as one fused kernel where the counted device may run their parts: the records of each such
call are marked with its name (``OpRecord.fused``), forward and backward, so that a GPU prediction can run them
as the one kernel CUDA would.

``F.scaled_dot_product_attention``: on a CPU (and so on meta, which counts as a CPU runs) PyTorch takes the math
reference whenever its flash kernel does not apply (dropout in training, some masks), writing the whole score
matrix; on CUDA the flash and memory-efficient kernels cover those cases, reading Q, K and V once. The count
stays what the counted device runs; the mark says which records a GPU fuses.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.graph import register_multi_grad_hook

from torchcost.counting.mode import CountingMode
from torchcost.tensors import tensors_in

SDPA = "scaled_dot_product_attention"


class FusedCalls:
    """While active, ``F.scaled_dot_product_attention`` marks the records of its forward and of its backward."""

    def __init__(self, mode: CountingMode) -> None:
        self.mode = mode
        self._calls = itertools.count()
        self._saved: Callable[..., Any] | None = None

    def __enter__(self) -> FusedCalls:
        self._saved = original = F.scaled_dot_product_attention

        def marked(*args: Any, **kwargs: Any) -> Any:
            causal = bool(kwargs.get("is_causal", args[5] if len(args) > 5 else False))
            name = f"{SDPA}#{next(self._calls)}" + (" causal" if causal else "")
            return self._run(name, original, args, kwargs)

        F.scaled_dot_product_attention = marked
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            F.scaled_dot_product_attention = self._saved
            self._saved = None

    def _run(self, name: str, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        outer, self.mode.fused = self.mode.fused, name
        try:
            out = call(*args, **kwargs)
        finally:
            self.mode.fused = outer
        inputs = [t for t in tensors_in(args[:3]) if t.requires_grad]
        if isinstance(out, torch.Tensor) and out.grad_fn is not None and inputs and torch.is_grad_enabled():
            out.grad_fn.register_prehook(lambda grads: self._set(name))
            register_multi_grad_hook(inputs, lambda grads: self._set(""), mode="all")
        return out

    def _set(self, name: str) -> None:
        self.mode.fused = name
