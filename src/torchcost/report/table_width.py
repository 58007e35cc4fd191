"""Tables that fit the terminal: at the width they are printed at, the optional columns are dropped (the most
optional first) until the table fits; numbers are never wrapped or cut, and a long name is cut with "…" rather
than broken in the middle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from torchcost.report.columns import Column, Row

NAME_WIDTH = 24  # a name may be cut to this many characters before more columns are dropped
GAP = "..."  # the first cell of a row that stands for rows left out


class FittedTable(Generic[Row]):
    """``rows`` under ``columns``; a ``None`` row prints as ``...`` (rows left out)."""

    def __init__(
        self, columns: Sequence[Column[Row]], rows: Sequence[Row | None], title: str, caption: str | None = None
    ) -> None:
        self.columns = list(columns)
        self.cells = [[GAP] + [""] * (len(columns) - 1) if r is None else [c.cell(r) for c in columns] for r in rows]
        self.styles = [["" if r is None or c.style is None else c.style(r) for c in columns] for r in rows]
        self.title, self.caption = title, caption

    def table(self, width: int | None) -> Table:
        shown = fitted(self.columns, self.cells, width)
        table = Table(
            title=Text(self.title, style="table.title"),  # Text, not markup: a name may hold "[...]"
            caption=None if self.caption is None else Text(self.caption, style="table.caption"),
            title_justify="left",
            caption_justify="left",
        )
        for column in shown:
            justify: JustifyMethod = "right" if column.numeric else "left"
            table.add_column(column.header, justify=justify, no_wrap=column.numeric, overflow="ellipsis")
        indices = [self.columns.index(column) for column in shown]
        for cells, styles in zip(self.cells, self.styles, strict=True):
            table.add_row(*(Text(cells[i], style=styles[i]) for i in indices))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table(options.max_width))


def fitted(columns: Sequence[Column[Row]], cells: Sequence[Sequence[str]], width: int | None) -> list[Column[Row]]:
    """The columns to show in ``width`` terminal columns: drop the optional ones, most optional first, until the
    table fits with names cut to ``NAME_WIDTH``."""
    natural = [max([cell_len(c.header), *(cell_len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    needed = {id(c): n if c.numeric else min(n, NAME_WIDTH) for c, n in zip(columns, natural, strict=True)}
    shown = list(columns)
    for column in sorted((c for c in columns if c.drop), key=lambda c: -c.drop):
        if width is None or 1 + sum(needed[id(c)] + 3 for c in shown) <= width:
            break
        shown.remove(column)
    return shown
