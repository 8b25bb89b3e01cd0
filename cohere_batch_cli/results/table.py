"""Results as a table, CSV or Parquet: records in chunks, the columns chosen from the first chunk.

A table's columns must be known before its first row (a CSV header, a
Parquet schema), and which columns an output has depends on what it holds
(chat or embed, which embedding types): so the first chunk of records is
read before anything is written, and decides (:func:`.columns.detect`).
Each chunk is then turned into column values at once and handed to the
format's writer, so memory is bounded by a chunk (and, for Parquet, a row
group) whatever the number of records.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from .columns import (
    Chosen,
    Column,
    Layout,
    Record,
    TableOptions,
    cell,
    detect,
    table_columns,
    uncovered_embeddings,
)
from .counts import Counts
from .records import body_not_json, is_failed

if TYPE_CHECKING:
    from ..output.progress import ProgressSink
    from .join import Joiner

CHUNK_ROWS = 2_000
CHUNK_CHARS = 2 * 1024 * 1024
"""Body text gathered per chunk: about 240 embed records of 1,024 floats, or 2,000 chat records."""
PROGRESS_EVERY = 1000


class TableWriter(Protocol):
    """What a format's writer does: a chunk's column values at a time, then close (or abandon)."""

    bad: Counter[str]
    """Values written as null because they did not fit their column's type, by column name."""

    def write(self, values: list[list[Any]]) -> None: ...
    def close(self) -> None: ...
    def abandon(self) -> None: ...


def write_table(
    records: Iterable[dict[str, Any]],
    out: IO[bytes],
    *,
    fmt: Literal["csv", "parquet"],
    failed_only: bool,
    joiner: Joiner | None,
    sink: ProgressSink,
    options: TableOptions,
    spool_dir: Path,
) -> Counts:
    """Write ``records`` as a CSV or Parquet table into ``out``; count every record, written or not."""
    counts = Counts()
    chunk: list[Record] = []
    chars = pending = 0
    table: _Started | None = None
    try:
        for raw in records:
            counts.total += 1
            failed = is_failed(raw)
            counts.failed += failed
            pending += 1
            if pending >= PROGRESS_EVERY:
                sink.advance(records=pending)
                pending = 0
            if failed_only and not failed:
                continue
            counts.written += 1
            request = joiner.request(raw.get("custom_id")) if joiner is not None else None
            record = Record(raw, request)
            counts.not_json += body_not_json(raw, record.body)
            chunk.append(record)
            body = raw.get("body")
            chars += len(body) if isinstance(body, (str, bytes)) else 0
            if len(chunk) >= CHUNK_ROWS or chars >= CHUNK_CHARS:
                table = _write_chunk(table, chunk, fmt, out, options, joiner is not None, spool_dir)
                chunk, chars = [], 0
        table = _write_chunk(table, chunk, fmt, out, options, joiner is not None, spool_dir)
        table.writer.close()
    except BaseException:
        if table is not None:
            table.writer.abandon()
        raise
    if pending:
        sink.advance(records=pending)
    counts.warnings.extend(table.warnings())
    return counts


@dataclass
class _Started:
    """A table under way: its layout and columns (fixed by the first chunk), its writer, its tallies."""

    layout: Layout
    columns: list[Column]
    writer: TableWriter
    uncovered: int = 0

    def warnings(self) -> list[str]:
        out = []
        if self.uncovered:
            n = self.uncovered
            kinds = ", ".join(self.layout.embedding_types)
            out.append(
                f"{n:,} record{' holds' if n == 1 else 's hold'} embedding types beyond the columns "
                f"({kinds}, from the first records): add --body to keep the whole response"
            )
        for column in self.columns:
            chosen = column.get
            if isinstance(chosen, Chosen) and chosen.failures:
                n = chosen.failures
                out.append(
                    f"--column {column.name} failed on {n:,} record{'' if n == 1 else 's'} "
                    f"(written as null): {chosen.reason}"
                )
        for name, n in self.writer.bad.items():
            out.append(
                f"{n:,} value{'' if n == 1 else 's'} of column {name} did not fit its type and {'was' if n == 1 else 'were'} written as null"
            )
        return out


def _write_chunk(
    table: _Started | None,
    chunk: Sequence[Record],
    fmt: Literal["csv", "parquet"],
    out: IO[bytes],
    options: TableOptions,
    joined: bool,
    spool_dir: Path,
) -> _Started:
    if table is None:
        layout = detect(chunk, options.kind)
        columns = table_columns(layout, options, joined=joined)
        writer: TableWriter
        if fmt == "parquet":
            from .parquet import ParquetTable

            writer = ParquetTable(out, columns, spool_dir)
        else:
            writer = CsvTable(out, columns)
        table = _Started(layout, columns, writer)
    if not chunk:
        return table
    if table.layout.kind == "embed":
        covered = table.layout.embedding_types
        table.uncovered += sum(uncovered_embeddings(record, covered) for record in chunk)
    table.writer.write([[column.get(record) for record in chunk] for column in table.columns])
    return table


class CsvTable:
    """CSV: the header, then each chunk's rows encoded and written in one call."""

    def __init__(self, out: IO[bytes], columns: Sequence[Column]) -> None:
        self._out = out
        self.bad: Counter[str] = Counter()  # text holds every value: none is ever left out
        self._write_rows([[c.name for c in columns]])

    def write(self, values: list[list[Any]]) -> None:
        self._write_rows([[cell(v) for v in row] for row in zip(*values, strict=True)])

    def close(self) -> None:
        """Every row went out with its chunk: nothing is left to write."""

    def abandon(self) -> None:
        """Nothing is buffered: the atomic write removes what was written."""

    def _write_rows(self, rows: list[list[str]]) -> None:
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        self._out.write(text.getvalue().encode("utf-8"))
