"""How the plain data types show themselves (``print``, ``repr``, a notebook's ``_repr_html_``) without importing
the renderers: ``torchcost.report`` installs its views here when it loads, so data never imports the floors above
it. Until then a value shows as its type's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

VIEWS = ("text", "line", "html")  # print(), repr() and a notebook's rich display
_installed: dict[tuple[type, str], Callable[[Any], str]] = {}


def install(kind: type, **views: Callable[[Any], str]) -> None:
    """Show values of ``kind`` with these views (any of ``text``, ``line``, ``html``)."""
    for name, view in views.items():
        if name not in VIEWS:
            raise ValueError(f"unknown view {name!r}: use one of {', '.join(VIEWS)}")
        _installed[kind, name] = view


class Shown:
    """A base for data types: ``print()``, ``repr()`` and a notebook show them through the views installed for
    their type (a dataclass takes ``repr=False``, or it writes its own ``__repr__``)."""

    def __str__(self) -> str:
        return show(self, "text")

    def __repr__(self) -> str:
        return show(self, "line")

    def _repr_html_(self) -> str:
        return show(self, "html")


def show(value: Any, view: str) -> str:
    """``value`` in the view installed for its type; ``text`` falls back to ``line``, both to the type's name."""
    for name in (view, "line") if view == "text" else (view,):
        shown = _installed.get((type(value), name))
        if shown is not None:
            return shown(value)
    return f"<{type(value).__name__}>"
