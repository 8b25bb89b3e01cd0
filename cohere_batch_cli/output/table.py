"""Tables for a person, laid out the way ``gh`` does: one row one line, whatever the width.

Rich's ``Table`` wraps cells inside words when a terminal is narrow (``comple/ted``),
and costs about 0.4 ms a row, which is why listings used to fall back to unaligned
tab-separated lines past 500 rows. This layout is plain string work instead:

- the widths are decided once, from the header and the first :data:`SAMPLE_ROWS`
  rows, and every later row uses the same widths, so a listing streams and stays
  aligned at row 5,000 as at row 1;
- columns have a priority: when the widest layout does not fit, flexible columns
  (names, models) are cut first, with an ellipsis; when that is not enough, whole
  columns are dropped, the least important first;
- a column marked ``whole`` (ids, statuses) is never cut or split: an id must stay
  copyable and a status readable;
- every cell goes through :func:`.sanitize.clean`, so a row is always one line.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from .printer import FLUSH, Column
from .sanitize import clean

SAMPLE_ROWS = 200
"""Rows read before the widths are fixed; later rows are cut to fit them."""

GAP = "  "
MIN_FLEX = 6
"""The narrowest a flexible column is cut to (5 characters and an ellipsis)."""

ELLIPSIS = "…"

_SGR = {
    "bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34",
    "magenta": "35", "cyan": "36", "bright_black": "90",
}  # fmt: skip


def terminal_width(stdout: IO[str] | Any, *others: IO[str] | Any) -> int:
    """The width of stdout's terminal; piped, ``COLUMNS``, else another stream's terminal, else 80.

    A terminal's own size is never stale, so it wins when stdout is one.
    ``cbatch list --format table | less`` has no terminal on stdout, but
    stderr still is one: its width is the one the person sees.
    """
    size = _size_of(stdout)
    if size:
        return size
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    for stream in others:
        size = _size_of(stream)
        if size:
            return size
    return 80


def _size_of(stream: IO[str] | Any) -> int | None:
    try:
        if not stream.isatty():
            return None
        return os.get_terminal_size(stream.fileno()).columns or None
    except (AttributeError, OSError, ValueError):
        return None


def cell_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide East Asian characters count two."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns, its end replaced by an ellipsis when cut."""
    if cell_width(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    kept, used = [], 0
    for char in text:
        w = cell_width(char)
        if used + w > width - 1:
            break
        kept.append(char)
        used += w
    return "".join(kept) + ELLIPSIS


@dataclass(frozen=True)
class Layout:
    """Which columns are shown, and how wide each is."""

    columns: tuple[Column, ...]
    widths: tuple[int, ...]


COMFORT = 20
"""A name is cut below this many columns only once every less important column is gone."""


def plan(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> Layout:
    """The widths for ``rows`` (cells already clean) within ``width`` columns.

    Natural widths when they fit. Otherwise flexible columns give up space, the
    widest first, down to :data:`COMFORT` (or their natural width): a name keeps
    that much while a column less important than it (a higher ``priority``) can
    be dropped instead; those go first, the least important first. Then flexible
    columns give up space down to :data:`MIN_FLEX`, and the least important
    column still shown is dropped (a ``whole`` column of priority 0 never), and
    so on until the row fits.
    """
    shown = list(range(len(columns)))
    natural = [
        max([cell_width(columns[i].header), *(cell_width(row[i]) for row in rows)])
        for i in range(len(columns))
    ]
    while True:
        widths = {i: natural[i] for i in shown}
        flexible = [i for i in shown if not columns[i].whole]
        room = width - len(GAP) * (len(shown) - 1)
        _shrink(widths, flexible, room, columns, comfort=True)
        if sum(widths.values()) <= room:
            return Layout(tuple(columns[i] for i in shown), tuple(widths[i] for i in shown))
        names = [columns[i].priority for i in flexible]
        less = [
            i
            for i in shown
            if columns[i].whole and columns[i].priority > 0 and names
            and columns[i].priority > min(names)
        ]  # fmt: skip
        if not less:
            break
        shown.remove(max(less, key=lambda i: (columns[i].priority, i)))
    while True:
        widths = {i: natural[i] for i in shown}
        room = width - len(GAP) * (len(shown) - 1)
        _shrink(widths, [i for i in shown if not columns[i].whole], room, columns)
        if sum(widths.values()) <= room or len(shown) == 1:
            return Layout(tuple(columns[i] for i in shown), tuple(widths[i] for i in shown))
        droppable = [i for i in shown if columns[i].priority > 0]
        if not droppable:
            return Layout(tuple(columns[i] for i in shown), tuple(widths[i] for i in shown))
        shown.remove(max(droppable, key=lambda i: (columns[i].priority, i)))


def _shrink(
    widths: dict[int, int],
    flexible: list[int],
    room: int,
    columns: Sequence[Column],
    *,
    comfort: bool = False,
) -> None:
    """Narrow the widest flexible columns, one column at a time, until the row fits.

    ``comfort``: no narrower than :data:`COMFORT` (or the column's natural width).
    """
    least = COMFORT if comfort else MIN_FLEX
    floor = {
        i: min(widths[i], max(least, columns[i].min_width, cell_width(columns[i].header)))
        for i in flexible
    }
    while sum(widths.values()) > room:
        candidates = [i for i in flexible if widths[i] > floor[i]]
        if not candidates:
            return
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1


class TableWriter:
    """Writes a listing as an aligned table, streaming once the widths are fixed."""

    def __init__(
        self,
        stream: Any,
        columns: Sequence[Column],
        *,
        width: int,
        color: bool,
        key: Callable[[Any], str] | None = None,
    ) -> None:
        self._stream = stream
        self._columns = tuple(columns)
        self._width = width
        self._color = color
        self._key = key
        self._last: dict[str, str] = {}
        """The last line written for each item's key: a row that reads the same is not written again."""

    def write(self, items: Iterable[Any]) -> int:
        """Write the header and a line per item; returns the number of rows."""
        iterator = iter(items)
        sample: list[tuple[Any, list[str]]] = []
        flushed = False
        for item in iterator:
            if item is FLUSH:
                flushed = True
                break
            sample.append((item, self._cells(item)))
            if len(sample) >= SAMPLE_ROWS:
                break
        if not sample and not flushed:
            return 0
        # Nothing listed yet (``list --watch``): room for names as for a short listing.
        widths_from = [self._planned(item, row) for item, row in sample] or [
            [col.header.ljust(col.min_width * 2) for col in self._columns]
        ]
        layout = plan(self._columns, widths_from, self._width)
        index = [self._columns.index(col) for col in layout.columns]
        header = [col.header for col in layout.columns]
        self._stream.write(self._line(layout, header, None, bold=True) + "\n")
        count = 0
        for item, cells in self._rows(sample, iterator):
            line = self._line(layout, [cells[i] for i in index], item)
            if self._key is not None:
                # ``list --watch`` adds a row per change; at 80 columns the changed cells
                # (the progress) may be the ones dropped, and the row reads as the last one.
                key = self._key(item)
                if self._last.get(key) == line:
                    continue
                self._last[key] = line
            self._stream.write(line + "\n")
            count += 1
            if count % 100 == 0 or flushed:
                self._stream.flush()
        self._stream.flush()
        return count

    def _rows(
        self, sample: list[tuple[Any, list[str]]], rest: Iterator[Any]
    ) -> Iterator[tuple[Any, list[str]]]:
        yield from sample
        for item in rest:
            if item is FLUSH:
                self._stream.flush()
                continue
            yield item, self._cells(item)

    def _planned(self, item: Any, cells: list[str]) -> list[str]:
        """The cells a row is planned with: the widest each can come to, where a column knows it."""
        return [
            clean(col.widest(item)) if col.widest is not None else cell
            for col, cell in zip(self._columns, cells, strict=True)
        ]

    def _cells(self, item: Any) -> list[str]:
        return [clean(col.cell(item)) for col in self._columns]

    def _line(self, layout: Layout, cells: Sequence[str], item: Any, *, bold: bool = False) -> str:
        parts = []
        last = len(cells) - 1
        for n, (col, width, text) in enumerate(
            zip(layout.columns, layout.widths, cells, strict=True)
        ):
            text = text if col.whole else cut(text, width)
            pad = " " * max(0, width - cell_width(text))
            if col.justify == "right":
                text, tail = pad + text, ""
            else:
                tail = "" if n == last else pad
            style = "bold" if bold else (col.style(item) if col.style and item is not None else "")
            parts.append(self._paint(text, style) + tail)
        return GAP.join(parts)

    def _paint(self, text: str, style: str) -> str:
        codes = (
            ";".join(_SGR[s] for s in style.split() if s in _SGR) if self._color and style else ""
        )
        return f"\x1b[{codes}m{text}\x1b[0m" if codes else text
