"""Models from files: ``model.py:factory`` (runs your code), ``.pt2`` exports, TorchScript, checkpoints.

Nothing here unpickles arbitrary objects unless asked: checkpoints load with ``weights_only=True``; a whole
pickled model needs ``trust_pickle=True``.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchcost.sources.base import LoadedModel, ModelSourceError, Shape, build_on

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module")  # where checkpoints usually keep weights
PICKLE_HINT = "or better, profile the code that builds it: path/to/model.py:factory"


def load_python(spec: str, path: Path, attribute: str, device: torch.device) -> LoadedModel:
    """Run ``path`` as a module and call ``attribute`` (a class or function taking no arguments).

    A module-level ``INPUT_SIZE`` (one shape or a list of shapes) gives the default example input.
    """
    module = import_file(path)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ModelSourceError(f"{path} has no class or function {attribute!r}; it defines: {', '.join(names)}")
    try:
        model = build_on(device, factory)
    except TypeError as exc:
        raise ModelSourceError(
            f"calling {attribute}() from {path} failed ({exc}); name a class or function that takes no arguments"
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelSourceError(f"{attribute}() from {path} returned a {type(model).__name__}, not an nn.Module")
    return LoadedModel(spec, model, _sizes(getattr(module, "INPUT_SIZE", None)))


def import_file(path: Path) -> Any:
    if not path.is_file():
        raise ModelSourceError(f"no such file: {path}")
    name = f"torchcost_user_model_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelSourceError(f"cannot import {path} as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:  # the file is not Python: bad input, like a file that is not there
        raise ModelSourceError(f"{path}, line {exc.lineno}: not valid Python ({exc.msg})") from None
    return module


def _sizes(value: Any) -> list[Shape] | None:
    if value is None:
        return None
    if all(isinstance(v, int) for v in value):
        return [tuple(value)]
    return [tuple(int(d) for d in shape) for shape in value]


def load_file(spec: str, path: Path, device: torch.device, trust_pickle: bool = False) -> LoadedModel:
    """A ``.pt2`` export, a TorchScript archive, or (with ``trust_pickle``) a whole pickled model."""
    if not path.is_file():
        raise ModelSourceError(f"no such file: {path}")
    if path.suffix == ".pt2":
        return _exported(spec, path)
    if _is_torchscript(path):
        return _scripted(spec, path)
    return _pickled(spec, path, trust_pickle)


def _exported(spec: str, path: Path) -> LoadedModel:
    """A ``torch.export`` program, unflattened so that its module tree is reported as it was written."""
    with warnings.catch_warnings():
        # torch's own code, reading the archive and copying its tree specs (torch 2.11), warns about itself
        warnings.filterwarnings("ignore", message="The given buffer is not writable")
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        program = torch.export.load(path)
        try:
            model: nn.Module = torch.export.unflatten(program)
        except Exception:  # some programs cannot be unflattened; the flat graph still counts the same ops
            model = program.module()
    values = {node.name: node.meta.get("val") for node in program.graph.nodes if node.op == "placeholder"}
    inputs = [values.get(name) for name in program.graph_signature.user_inputs]
    if not all(isinstance(v, torch.Tensor) and all(isinstance(d, int) for d in v.shape) for v in inputs):
        hint = "this program has non-tensor or dynamic-shape inputs"
        return LoadedModel(spec, model, None, input_hint=hint)
    tensors: list[torch.Tensor] = inputs  # type: ignore[assignment]
    return LoadedModel(spec, model, [tuple(t.shape) for t in tensors], input_dtypes=[t.dtype for t in tensors])


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def _scripted(spec: str, path: Path) -> LoadedModel:
    """A TorchScript archive. Its ops are counted; they all land on the root module (scripted code calls its
    submodules without Python, so the per-module tree is not filled in)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, but files of it abound
        model = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    return LoadedModel(spec, model, None, input_hint="TorchScript files keep no example input")


def _pickled(spec: str, path: Path, trust_pickle: bool) -> LoadedModel:
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust_pickle:
            said = (
                f"{path} holds pickled Python objects (e.g. a whole model saved with torch.save(model)); "
                "loading it runs code from the file. If you trust the file, pass {}, " + PICKLE_HINT
            )
            raise ModelSourceError(said.format("trust_pickle=True"), cli=said.format("--trust-pickle")) from None
        try:
            content = torch.load(path, map_location="cpu", weights_only=False)
        except (ModuleNotFoundError, AttributeError) as exc:
            raise ModelSourceError(
                f"{path} holds a model whose class cannot be imported here ({exc}); run from the directory that "
                "holds its module, or add that directory to PYTHONPATH"
            ) from None
    except Exception as exc:  # the weights-only unpickler fails in many ways on other files
        raise ModelSourceError(
            f"{path} is not a PyTorch file torchcost can read ({type(exc).__name__}: {exc})"
        ) from None
    if isinstance(content, nn.Module):
        return LoadedModel(spec, content, None, input_hint="a pickled model keeps no example input")
    weights = state_dict_in(content)
    if weights is not None:
        said = (
            f"{path} is a state dict ({len(weights)} tensors) and holds no architecture; profile the code that "
            "builds the model and give it these weights: "
        )
        raise ModelSourceError(
            said + f"profile_spec('path/to/model.py:factory', weights='{path}')",
            cli=said + f"torchcost profile path/to/model.py:factory --weights {path}",
        )
    raise ModelSourceError(f"{path} holds a {type(content).__name__}, neither a model nor a state dict")


def state_dict_in(content: Any) -> dict[str, torch.Tensor] | None:
    """The tensors of a state dict, or of a checkpoint that keeps one under a usual key."""
    if isinstance(content, Mapping) and content and all(isinstance(v, torch.Tensor) for v in content.values()):
        return dict(content)
    if isinstance(content, Mapping):
        for key in STATE_DICT_KEYS:
            found = state_dict_in(content.get(key))
            if found is not None:
                return found
    return None


def load_weights(loaded: LoadedModel, path: Path, device: torch.device) -> None:
    """Put the tensors of a state dict or checkpoint (loaded with ``weights_only=True``) into the model,
    at their stored dtypes (so an fp16 checkpoint gives an fp16 size)."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        raise ModelSourceError(f"no such weights file: {path}") from None
    except pickle.UnpicklingError:
        raise ModelSourceError(
            f"{path} holds pickled objects, not only tensors; --weights takes a state dict"
        ) from None
    weights = state_dict_in(content)
    if weights is None:
        raise ModelSourceError(f"{path} holds no state dict (a mapping of names to tensors)")
    try:
        loaded.model.load_state_dict({k: v.to(device) for k, v in weights.items()}, assign=True)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())  # one line: missing and unexpected keys
        raise ModelSourceError(f"the weights in {path} do not fit {loaded.spec}: {reason}") from None
