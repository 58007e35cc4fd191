"""The error torchcost raises when a model, its inputs or the options given cannot be profiled as they are."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable
from typing import Any


class ProfilingError(RuntimeError, ValueError):
    """What is wrong and how to fix it, in one line (a forward failure adds a hint line).

    ``str(error)`` speaks Python (``input_size=(1, 3, 224, 224)``); ``error.cli`` says the same with the command
    line's flags (``--input-size 1,3,224,224``). It is a ``ValueError`` for bad arguments and a ``RuntimeError``
    for a model that fails to run, so code catching either keeps working.
    """

    def __init__(self, message: str, *, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli = message if cli is None else cli


class InputMismatchError(ProfilingError):
    """The forward failed on inputs that do not fit the model (a shape or a type), not for lack of real values:
    running it on the CPU instead would fail the same way, so nothing retries it there."""


def input_mismatch(where: str, exc: BaseException, inputs: str = "", flags: str = "") -> InputMismatchError:
    """One line: what failed, why (the first line of ``exc``), and to check the input shapes (``inputs`` names them
    in Python's words, ``flags`` in the command line's)."""
    failed = f"{where} failed: {type(exc).__name__}: {first_line(exc).rstrip('.')}; check the input shapes"
    python, cli = (f" ({named})" if named else "" for named in (inputs, flags))
    expects = " against what the model expects"
    return InputMismatchError(failed + python + expects, cli=failed + cli + expects)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ("" when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


# What PyTorch's fake tensors (memory() on meta) raise for an op whose output depends on values, or that they cannot
# run (torch/_subclasses/fake_tensor.py)
FAKE_TENSOR_LIMITS = ("DynamicOutputShapeException", "DataDependentOutputException", "UnsupportedOperatorException")


def needs_real_values(exc: BaseException) -> bool:
    """A forward that failed on meta for lack of values (``.item()``, a data-dependent shape, an op with no meta
    kernel), which a run on real data may not; any other failure is the inputs' or the model's own."""
    if isinstance(exc, NotImplementedError) or type(exc).__name__ in FAKE_TENSOR_LIMITS:
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in ("meta", "item", "data-dependent"))


def renamed(module: str, names: dict[str, Any]) -> Callable[[str], Any]:
    """A module's ``__getattr__`` that still answers the old names of objects renamed or moved (old name -> the
    object, or for a value without a name of its own, such as a table, ``(value, "where.it.is.now")``), with a
    ``DeprecationWarning``; kept for one release."""

    def old_name(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new = names[name]
        new, where = new if isinstance(new, tuple) else (new, f"{new.__module__}.{new.__name__}")
        message = f"{module}.{name} is now {where}; the old name goes in the next release"
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return new

    return old_name


def moved_module(old: str, new: str) -> None:
    """Make the module ``old`` the module ``new`` that replaced it, with a ``DeprecationWarning`` on import; called
    by the few lines left at the old path, kept for one release."""
    message = f"{old} is now {new}; the old module goes in the next release"
    warnings.warn(message, DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
