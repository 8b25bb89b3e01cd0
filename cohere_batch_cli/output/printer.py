"""One object that owns stdout, with a mode chosen once per command.

Modes: ``table`` (rich, for a person at a terminal), ``plain`` (tab-separated
lines, no colour, no boxes: stdout is not a terminal), ``json`` (the API's own
objects, a single JSON value), ``jsonl`` (one object a line) and ``ids`` (one
id a line, for ``xargs``). Commands hand it plain rows; tables, TSV and JSON
are all made from the same rows, so the modes cannot drift apart. Rows are
written as they come, so a listing of thousands streams instead of waiting.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

TABLE, PLAIN, JSON, JSONL, IDS, CSV = "table", "plain", "json", "jsonl", "ids", "csv"
FORMATS = (TABLE, PLAIN, JSON, JSONL, CSV, IDS)

MAX_TABLE_ROWS = 500
"""Past this many rows a rich table costs seconds (PERF-NOTES: ~0.4 ms a row); stream instead."""


from ..errors import OutputOptionError  # noqa: E402 - raised here, defined with the others


def choose_mode(
    *, json_out: bool, jsonl: bool, quiet: bool, stdout_is_tty: bool, fmt: str | None = None
) -> str:
    """The mode from the shorthands (--json, --jsonl, -q) or --format; else by terminal."""
    if fmt:
        if fmt not in FORMATS:
            raise OutputOptionError(f"--format must be one of {', '.join(FORMATS)}")
        return fmt
    if jsonl:
        return JSONL
    if json_out:
        return JSON
    if quiet:
        return IDS
    return TABLE if stdout_is_tty else PLAIN


@dataclass(frozen=True)
class Column:
    """A column of a listing: its header, and how to read its cell from one item."""

    header: str
    cell: Callable[[Any], str]
    style: Callable[[Any], str] | None = None
    justify: str = "left"
    min_width: int | None = None
    """Cells never cut below this: ids must stay whole to be copied."""


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


class Printer:
    """Writes a command's data to stdout in one mode; messages go to stderr elsewhere."""

    def __init__(
        self,
        mode: str,
        console_factory: Callable[[], Console],
        stream: IO[str] | None = None,
        query: str | None = None,
    ) -> None:
        self.mode = mode
        self._console_factory = console_factory
        self._stream = stream or sys.stdout
        self._query = compile_query(query) if query else None

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")

    def item(self, raw: Any, item_id: str, detail: Callable[[], None]) -> None:
        """One object: its JSON as the API sent it, its id, or a detail view for people."""
        if self._query is not None:
            self._write(json.dumps(self._query.search(raw), ensure_ascii=False, indent=2))
        elif self.mode in (JSON, JSONL):
            self._write(json.dumps(raw, ensure_ascii=False, indent=2 if self.mode == JSON else None))
        elif self.mode == IDS:
            self._write(item_id)
        else:
            detail()
        self._stream.flush()

    def items(
        self,
        items: Iterable[Any],
        *,
        columns: Sequence[Column],
        raw: Callable[[Any], Any],
        item_id: Callable[[Any], str],
        title: str | None = None,
        empty: str = "nothing to show",
        on_empty: Callable[[str], None] | None = None,
        csv_fields: Sequence[str] = (),
    ) -> int:
        """Write a listing in the chosen mode, streaming where the mode allows; returns the count.

        With a query, the listing is gathered into one JSON array first (a
        JMESPath expression sees the whole array) and the result is printed.
        """
        if self._query is not None:
            everything = [raw(item) for item in items]
            self._write(json.dumps(self._query.search(everything), ensure_ascii=False, indent=2))
            return len(everything)
        if self.mode == TABLE:
            return self._table(items, columns, title, empty, on_empty)
        # Fetch the first item before writing anything: a request that fails at once
        # must leave stdout empty, not holding a lone "[" or a CSV header.
        iterator = iter(items)
        first = next(iterator, _END)
        items = iterator if first is _END else itertools.chain([first], iterator)
        if self.mode == CSV:
            return self._csv(items, raw, csv_fields)
        count = 0
        if self.mode == JSON:
            self._stream.write("[")
        for item in items:
            if self.mode == JSON:
                self._stream.write(("\n  " if count == 0 else ",\n  ") + dumps(raw(item)))
            elif self.mode == JSONL:
                self._write(dumps(raw(item)))
            elif self.mode == IDS:
                self._write(item_id(item))
            else:
                self._write("\t".join(_plain_cell(col.cell(item)) for col in columns))
            count += 1
            if count % 100 == 1:
                self._stream.flush()
        if self.mode == JSON:
            self._stream.write("\n]\n" if count else "]\n")
        self._stream.flush()
        if count == 0 and on_empty and self.mode in (PLAIN, IDS):
            on_empty(empty)
        return count

    def _table(
        self,
        items: Iterable[Any],
        columns: Sequence[Column],
        title: str | None,
        empty: str,
        on_empty: Callable[[str], None] | None,
    ) -> int:
        """A rich table; past MAX_TABLE_ROWS rows, the rest streams as plain lines."""
        from rich.table import Table
        from rich.text import Text

        console = self._console_factory()
        table = Table(title=title, box=None, header_style="bold", pad_edge=False)
        for col in columns:
            table.add_column(
                col.header,
                justify=col.justify,  # type: ignore[arg-type]
                min_width=col.min_width,
                no_wrap=col.min_width is not None,
                overflow="fold" if col.min_width is None else "ellipsis",
            )
        count = 0
        iterator = iter(items)
        for item in iterator:
            cells = [
                Text(col.cell(item), style=col.style(item) if col.style else "") for col in columns
            ]
            table.add_row(*cells)
            count += 1
            if count >= MAX_TABLE_ROWS:
                break
        if count == 0:
            (on_empty or (lambda m: sys.stderr.write(m + "\n")))(empty)
            return 0
        console.print(table)
        for item in iterator:
            self._write("\t".join(_plain_cell(col.cell(item)) for col in columns))
            count += 1
        return count


    def _csv(self, items: Iterable[Any], raw: Callable[[Any], Any], fields: Sequence[str]) -> int:
        """CSV with a header of the API's own field names: stable for scripts and spreadsheets."""
        import csv

        writer = csv.writer(self._stream, lineterminator="\n")
        writer.writerow(fields)
        count = 0
        for item in items:
            obj = raw(item)
            writer.writerow(["" if obj.get(f) is None else _csv_cell(obj.get(f)) for f in fields])
            count += 1
        self._stream.flush()
        return count


def _csv_cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def compile_query(expression: str) -> Any:
    """A compiled JMESPath expression; a malformed one is a usage error with its position."""
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise OutputOptionError(f"--query is not valid JMESPath: {str(exc).splitlines()[0]}") from None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_END = object()


def plain_text(value: str) -> str:
    """Text safe for a log or a TSV field: no tabs, line breaks or terminal escapes.

    Names and messages come from the API; a name holding an escape sequence must
    not recolour or rewrite a CI log.
    """
    return _CONTROL.sub(" ", value)


def _plain_cell(value: str) -> str:
    return plain_text(value)
