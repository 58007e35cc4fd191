"""The sweep's table on disk: CSV, JSON Lines or Parquet, chosen by the extension; each row is written (and
flushed) as it finishes, so an interrupted sweep keeps every finished row and ``--resume`` picks up from them.

Parquet cannot be appended to row by row: rows go to a JSON Lines journal beside it (``PATH.partial.jsonl``),
and the Parquet file is written from the old rows and the journal when the sweep ends.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import IO, Any

from torchcost.sweep.rows import PREDICTED, Row

FORMATS = (".csv", ".jsonl", ".parquet")


class SweepError(ValueError):
    """The sweep cannot run as asked; the message says what to change."""


def check_path(path: Path) -> None:
    """Refuse an unknown extension, or Parquet without pyarrow, before anything runs."""
    if path.suffix not in FORMATS:
        raise SweepError(f"--out {path}: the extension picks the format; use one of {', '.join(FORMATS)}")
    if path.suffix == ".parquet":
        _pyarrow()


def journal(path: Path) -> Path:
    return path.with_name(path.name + ".partial.jsonl")


def read_rows(path: Path) -> tuple[list[Row], list[str] | None]:
    """The rows already in ``path`` (and in a Parquet file's journal), with the file's columns."""
    rows: list[Row] = []
    columns: list[str] | None = None
    if path.suffix == ".parquet":
        if path.exists():
            table = _pyarrow().parquet.read_table(path)
            columns = list(table.column_names)
            rows = [Row.from_record(record) for record in table.to_pylist()]
        more, journal_columns = _read_jsonl(journal(path))
        return rows + more, columns or journal_columns
    if not path.exists():
        return [], None
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(_complete_lines(path), newline=""))
        rows = [Row.from_record(record) for record in reader]
        return rows, list(reader.fieldnames) if reader.fieldnames else None
    return _read_jsonl(path)


def _read_jsonl(path: Path) -> tuple[list[Row], list[str] | None]:
    if not path.exists():
        return [], None
    records = []
    for number, line in enumerate(_complete_lines(path).splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise SweepError(f"line {number} of {path} is not JSON; is it the output of a sweep?") from None
    return [Row.from_record(r) for r in records], list(records[0]) if records else None


def _complete_lines(path: Path) -> str:
    """The text up to its last newline: a line cut short by an interrupted write is left out."""
    text = path.read_text(encoding="utf-8")
    return text[: text.rfind("\n") + 1]


class RowWriter:
    """Appends rows to the output (or to its journal) as they finish."""

    def __init__(self, path: Path, columns: list[str], append: bool) -> None:
        self.path, self.columns, self.append = path, columns, append
        target = journal(path) if path.suffix == ".parquet" else path
        if append:
            _drop_partial_line(target)
        else:
            target.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        fresh = not target.exists() or target.stat().st_size == 0
        self.file: IO[str] = target.open("a", newline="", encoding="utf-8")
        self.csv = csv.DictWriter(self.file, columns, lineterminator="\n") if path.suffix == ".csv" else None
        if self.csv is not None and fresh:
            self.csv.writeheader()
            self.file.flush()

    def write(self, row: Row) -> None:
        record = row.to_record(self.hardware)
        if self.csv is not None:
            self.csv.writerow(record)
        else:
            self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    @property
    def hardware(self) -> list[str]:
        return [c.removeprefix(PREDICTED) for c in self.columns if c.startswith(PREDICTED)]

    def close(self) -> None:
        """Close the file; for Parquet, write the table from the old rows and the journal."""
        self.file.close()
        if self.path.suffix != ".parquet":
            return
        rows, _ = read_rows(self.path) if self.append else _read_jsonl(journal(self.path))
        write_parquet(self.path, [row.to_record(self.hardware) for row in rows], self.columns)
        journal(self.path).unlink(missing_ok=True)


def write_parquet(path: Path, records: list[dict[str, Any]], columns: list[str]) -> None:
    pa = _pyarrow()
    kinds = {item.name: str(item.type) for item in dataclasses.fields(Row)}
    schema = pa.schema([(name, _arrow_type(pa, kinds.get(name, "float | None"))) for name in columns])
    table = pa.Table.from_pylist(records, schema=schema)
    temporary = path.with_name(path.name + ".tmp")
    pa.parquet.write_table(table, temporary)
    temporary.replace(path)  # the old file stays whole until the new one is


def _arrow_type(pa: Any, kind: str) -> Any:
    if kind.startswith("int"):
        return pa.int64()
    if kind.startswith("float"):
        return pa.float64()
    return pa.string()


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise SweepError(
            "Parquet output needs pyarrow, which is not installed: pip install 'torchcost[parquet]'"
        ) from None
    return pyarrow


def _drop_partial_line(path: Path) -> None:
    """Cut an unfinished last line (a write interrupted by a kill), so appended rows start on their own line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)
