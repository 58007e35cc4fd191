"""Writing a report's text to a file, or to stdout for ``-``: the one thing every report format shares."""

from __future__ import annotations

import sys


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path``, or to stdout when ``path`` is ``-``."""
    if path == "-":
        sys.stdout.write(text)
        return
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
