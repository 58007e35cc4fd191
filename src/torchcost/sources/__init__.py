"""Model specs: where a model comes from and what its default example input is.

=================================  ====================================================================
``torchvision:NAME``               any torchvision model, random weights
``timm:NAME``                      a timm model, random weights, its pretrained config's input size
``hf:MODEL_TYPE``                  a transformers model from its default config (``hf:gpt2``, ``hf:bert``)
``hf:ORG/NAME[@REVISION]``         a Hub checkpoint's config.json, from huggingface_hub's cache or the Hub
``PRESET`` or ``hf:PRESET``        a shipped checkpoint config (``llama-3.1-8b``; ``torchcost list``)
``hf:path/to/config.json``         a transformers model from a config file (or a checkpoint folder)
``path/to/model.py:NAME``          calls NAME() from that file (this runs your code)
``model.pt2``                      a ``torch.export`` program
``model.pt``                       a TorchScript archive; a whole pickled model only with ``trust_pickle``
=================================  ====================================================================

No weights are downloaded (a Hub id fetches the config files only). A state dict alone has no architecture: load
it into a model with ``weights=``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from torchcost.prepare import checked_device
from torchcost.sources import files, hf, hub, presets, timm_models, vision
from torchcost.sources.base import (
    LoadedModel,
    MissingPackageError,
    ModelSourceError,
    UnknownModelError,
    build_on,
    closest,
)

SOURCES = ("torchvision", "timm", "hf")
MODEL_FILE_SUFFIXES = (".pt2", ".pt", ".pth", ".ts", ".jit", ".pkl", ".bin", ".ckpt")  # a spec ending so is a file
_PYTHON_SPEC = re.compile(r"^(?P<path>.+\.py):(?P<name>[A-Za-z_]\w*)$")

__all__ = [
    "SOURCES",
    "LoadedModel",
    "MissingPackageError",
    "ModelSourceError",
    "UnknownModelError",
    "build_on",
    "closest",
    "load_model",
]


def load_model(
    spec: str,
    device: torch.device | str = "cpu",
    *,
    trust_pickle: bool = False,
    weights: str | Path | None = None,
) -> LoadedModel:
    """Build the model a spec names, on ``device`` (``"meta"`` allocates no weights).

    Args:
        spec: see the module docstring.
        trust_pickle: allow unpickling a whole model from a file (this runs code from the file).
        weights: a state dict or checkpoint file to load into the model (``weights_only=True``).
    """
    run_on = checked_device(device)
    loaded = _load(spec, run_on, trust_pickle)
    if weights is not None:
        files.load_weights(loaded, Path(weights), run_on)
    return loaded


def _load(spec: str, device: torch.device, trust_pickle: bool) -> LoadedModel:
    python = _PYTHON_SPEC.match(spec)
    if python:
        return files.load_python(spec, Path(python["path"]), python["name"], device)
    source, sep, name = spec.partition(":")
    if sep and source in SOURCES:
        load = {"torchvision": vision.load, "timm": timm_models.load, "hf": hf.load}[source]
        return load(spec, name, device)
    if presets.preset(spec) is not None:
        return hf.load(spec, spec, device)
    if spec.endswith(".py"):
        raise ModelSourceError(f"{spec}: name the class or function that builds the model, e.g. {spec}:build_model")
    if Path(spec).is_file():
        return files.load_file(spec, Path(spec), device, trust_pickle)
    if hub.hub_id(spec) is not None and Path(spec).suffix not in MODEL_FILE_SUFFIXES:
        raise ModelSourceError(f"no such file: {spec}; for a Hub checkpoint write hf:{spec}")
    if Path(spec).suffix in MODEL_FILE_SUFFIXES or "/" in spec:
        raise ModelSourceError(f"no such file: {spec}")
    raise UnknownModelError(
        f"cannot read model spec {spec!r}: write torchvision:NAME, timm:NAME, hf:MODEL_TYPE, hf:ORG/NAME, "
        "hf:path/to/config.json, a checkpoint preset (torchcost list), path/to/model.py:NAME, or the path of a "
        ".pt2 or TorchScript file"
    )
