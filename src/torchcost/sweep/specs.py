"""What to sweep: model specs, hub patterns, lists of specs and search spaces, crossed with the input grid.

=====================================  ==============================================================
``timm:NAME``, ``hf:gpt2``, ...        any profile spec (see ``torchcost.sources``)
``timm:*``, ``timm:convnext*``         every timm model matching the pattern (``timm.list_models``)
``torchvision:*``, ``torchvision:vit*`` every torchvision model matching it (``list_models``)
``hf:*``, ``hf:llama*``                every transformers model type matching it
``@list.txt``                          one spec (or pattern) per line; blank lines and ``#`` comments skipped
``space.py:NAME``                      a search space: ``NAME()`` is a generator yielding
                                       ``(name, model or zero-argument builder, example inputs)``
=====================================  ==============================================================

A search space runs your code (as ``path/to/model.py:NAME`` specs do): it is imported here to list its
entries, and in each worker to build the one it profiles. Yield builders, not models, so that listing the
space builds nothing.
"""

from __future__ import annotations

import fnmatch
import inspect
import itertools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from torchcost.sources import SOURCES
from torchcost.sources.base import closest, require
from torchcost.sources.files import import_file
from torchcost.sweep.rows import Shape, SpaceEntry, Task, shapes_text

PATTERN_CHARS = re.compile(r"[*?\[]")
PYTHON_SPEC = re.compile(r"^(?P<path>.+\.py):(?P<name>[A-Za-z_]\w*)$")


class SpecError(ValueError):
    """A spec of the sweep names nothing: a pattern that matches no model, a missing list, a broken space."""


Model = str | SpaceEntry  # a profile spec, or one entry of a search space


def expand(specs: Sequence[str]) -> list[Model]:
    """Every model the specs name, in order, each once."""
    models: list[Model] = []
    for spec in specs:
        models += _expand(spec, seen=set())
    unique: dict[str, Model] = {}
    for model in models:
        unique.setdefault(model_spec(model), model)
    return list(unique.values())


def tasks(
    models: Sequence[Model],
    input_sizes: Sequence[Sequence[Shape]] | None = None,
    batches: Sequence[int] | None = None,
    dtypes: Sequence[str] | None = None,
) -> list[Task]:
    """One task per model and grid point (input sizes x batch sizes x dtypes); an empty axis is the default."""
    sizes = [shapes_text([tuple(s) for s in point]) for point in input_sizes or []] or [""]
    batch_sizes: list[int | None] = [*batches] if batches else [None]
    grid = itertools.product(models, sizes, batch_sizes, list(dtypes or []) or [""])
    return [
        Task(model_spec(model), size, batch, dtype, model if isinstance(model, SpaceEntry) else None)
        for model, size, batch, dtype in grid
    ]


def model_spec(model: Model) -> str:
    """The spec a row names: the spec itself, or ``path.py:NAME/entry`` for a search-space entry."""
    if isinstance(model, SpaceEntry):
        return f"{model.spec}/{model.name}"
    return model


def _expand(spec: str, seen: set[Path]) -> list[Model]:
    spec = spec.strip()
    if spec.startswith("@"):
        return _from_list(Path(spec[1:]), seen)
    python = PYTHON_SPEC.match(spec)
    if python:
        return _from_python(spec, Path(python["path"]), python["name"])
    source, sep, name = spec.partition(":")
    if sep and source in SOURCES and PATTERN_CHARS.search(name):
        return list(_matching(source, name))
    return [spec]


def _from_list(path: Path, seen: set[Path]) -> list[Model]:
    if path.resolve() in seen:
        raise SpecError(f"@{path} includes itself")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SpecError(f"cannot read the spec list @{path}: {exc.strerror}") from None
    models: list[Model] = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            models += _expand(line, seen | {path.resolve()})
    return models


def _matching(source: str, pattern: str) -> Iterator[str]:
    known = _names(source)
    matched = fnmatch.filter(known, pattern)
    if not matched:
        stem = PATTERN_CHARS.split(pattern)[0] or pattern
        raise SpecError(
            f"{source}:{pattern} matches no {source} model; closest names: {', '.join(closest(stem, known))}"
        )
    return (f"{source}:{name}" for name in matched)


def _names(source: str) -> list[str]:
    """Every model name (timm, torchvision) or model type (transformers) of a hub, sorted."""
    if source == "timm":
        names: list[str] = require("timm", "timm").list_models()
        return names
    if source == "torchvision":
        return sorted(require("torchvision", "torchvision").models.list_models())
    return sorted(require("transformers", "transformers").CONFIG_MAPPING.keys())


def _from_python(spec: str, path: Path, function: str) -> list[Model]:
    """A generator function is a search space; anything else is a model spec (``model.py:build``)."""
    module = import_file(path)
    factory = getattr(module, function, None)
    if not inspect.isgeneratorfunction(factory):
        return [spec]
    entries: list[Model] = []
    names: set[str] = set()
    try:
        for index, item in enumerate(factory()):
            name = entry_name(item, spec, index)
            if name in names:
                raise SpecError(f"{spec} yields the name {name!r} twice; each entry needs its own name")
            names.add(name)
            entries.append(SpaceEntry(spec, path.resolve(), function, index, name))
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError(f"listing the search space {spec} failed: {type(exc).__name__}: {exc}") from exc
    return entries


def entry_name(item: object, spec: str, index: int) -> str:
    """The name of one item a search space yields, after checking its form."""
    if not (isinstance(item, tuple) and len(item) == 3 and isinstance(item[0], str) and item[0]):
        raise SpecError(
            f"{spec}: item {index} is not (name, model or builder, example inputs); "
            'yield e.g. ("w32", lambda: Net(32), torch.randn(1, 3, 32, 32))'
        )
    return item[0]
