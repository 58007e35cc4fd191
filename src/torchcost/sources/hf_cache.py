"""The keyword a transformers decoder takes its KV cache by: ``past_key_values`` until transformers 5.24,
``cache`` from 5.25 on (the old name is still accepted there, with a deprecation warning, until 5.40)."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

CACHE_KEYWORDS = ("cache", "past_key_values")  # the newer name first


def cache_keyword(model: nn.Module) -> str | None:
    """The name under which ``model.forward`` takes a KV cache object; None when it takes none."""
    parameters = inspect.signature(model.forward).parameters
    return next((name for name in CACHE_KEYWORDS if name in parameters), None)


def with_cache(model: nn.Module, cache: Any) -> dict[str, Any]:
    """The keyword arguments of a forward that reads and extends ``cache``."""
    return {cache_keyword(model) or "past_key_values": cache, "use_cache": True}
