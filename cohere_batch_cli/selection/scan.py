"""Reading the ``custom_id`` of every line of a JSONL input, a few megabytes at a time.

A retry reads the whole input (a million requests of a kilobyte each is a
gigabyte) only to learn each line's ``custom_id``: parsing every line as JSON
would cost most of the retry's time. Almost every input is written by a JSON
encoder that puts ``custom_id`` first (``{"custom_id": "r1", "body": ...}``),
so a block of lines is read by slicing when the whole block proves it safe:

- every line starts with ``{"custom_id": "`` (or ``{"custom_id":"``), and
- the block holds the token ``"custom_id"`` exactly once per line (a second
  key of that name, nested or not, or a string equal to it, counts), and
- no ASCII character in the block is written as a ``\\u00XX`` escape (the
  only way the key could be spelled so that the count misses it), and
- no extracted id holds a backslash (an escape inside the id).

Then the first top-level key of each line is its only ``custom_id``, and
the slice is exactly what a JSON parser would read. Any block that fails a
check is parsed line by line instead (orjson when installed), so the answer
is always the parser's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import orjson as _orjson

BLOCK_BYTES = 1024 * 1024
"""Read at a time: the block and its lines are what a reader holds (4 MiB cost 15 MiB more, for 8 % less time)."""
_LINE_START = re.compile(rb'\n\{"custom_id": ?"([^"\\\n]*)"')
"""A line that starts with its custom_id, an id without escapes; the id is the group."""
_HEAD_BYTES = 64 * 1024
_TOKEN = b'"custom_id"'
_ASCII_ESCAPE = re.compile(rb"\\u00[2-7]")
_BOM = b"\xef\xbb\xbf"


class BadLine(Exception):
    """A line that is not a JSON object with a string ``custom_id``; ``offset`` is where it starts."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


@dataclass
class Block:
    """Whole lines read from one offset, each with its ``custom_id`` (None for a blank line)."""

    offset: int
    lines: list[bytes]
    """Each line without its ``\\n`` (a ``\\r`` before it is kept)."""
    ids: list[str | None]


def read_blocks(fh: BinaryIO, start: int = 0, end: int | None = None) -> Iterator[Block]:
    """The lines that start in ``[start, end)`` of ``fh``, a block at a time, with their ids.

    ``start`` must be the start of a line (see :func:`line_starts`). Raises
    :class:`BadLine` at the first line that has no readable ``custom_id``.
    Each block is split where it lies: only a line cut by the block's end is
    copied, to join it with its rest.
    """
    fh.seek(start)
    position = start  # where the first line of the next block starts
    rest = b""  # the start of a line the last block cut
    left = None if end is None else end - start
    while left is None or left > 0:
        chunk = fh.read(BLOCK_BYTES if left is None else min(BLOCK_BYTES, left))
        if not chunk:
            break
        if left is not None:
            left -= len(chunk)
        first_end = chunk.find(b"\n")
        if first_end < 0:
            rest += chunk  # a line longer than a block: read on until it ends
            continue
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if rest:
            lines[0] = rest + lines[0]
        yield _block(position, lines, chunk, first_end, len(chunk) - len(tail))
        position += len(rest) + len(chunk) - len(tail)
        rest = tail
    if rest:
        yield _block(position, [rest], rest, len(rest), len(rest))


def _block(offset: int, lines: list[bytes], chunk: bytes, first_end: int, cut: int) -> Block:
    """A block of ``lines``; all but the first lie in ``chunk[first_end + 1 : cut]``."""
    skew = 0
    if offset == 0 and lines and lines[0].startswith(_BOM):
        lines[0] = lines[0][len(_BOM) :]
        skew = len(_BOM)
    ids = None if skew else _fast_ids(lines, chunk, first_end, cut)
    if ids is None:
        ids = _parsed_ids(offset, lines, skew)
    return Block(offset, lines, ids)


def _fast_ids(
    lines: list[bytes], chunk: bytes, first_end: int, cut: int
) -> list[str | None] | None:
    """The ids by slicing, when the block proves it is safe (see the module docstring); else None."""
    first = lines[0]
    tokens = first.count(_TOKEN) + chunk.count(_TOKEN, first_end + 1, cut)
    if (
        tokens != len(lines)
        or _escapes(first, 0, len(first))
        or _escapes(chunk, first_end + 1, cut)
    ):
        return None
    head = _LINE_START.match(b"\n" + first[:_HEAD_BYTES])
    if head is None:
        return None
    found = _LINE_START.findall(chunk, first_end, cut - 1)  # the lines after the first
    if len(found) != len(lines) - 1:
        return None  # a line that does not start with its custom_id, or one with an escape in it
    try:
        return [head.group(1).decode("utf-8"), *(raw.decode("utf-8") for raw in found)]
    except UnicodeDecodeError:
        return None


def _escapes(data: bytes, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` writes an ASCII character as a ``\\u00XX`` escape."""
    return _ASCII_ESCAPE.search(data, start, end) is not None


def _parsed_ids(offset: int, lines: list[bytes], skew: int = 0) -> list[str | None]:
    """Each line parsed as JSON; blank lines have no id. ``skew``: bytes taken off the first line."""
    ids: list[str | None] = []
    position = offset
    for line in lines:
        if not line.strip():
            ids.append(None)
        else:
            ids.append(_parse_id(position, line))
        position += len(line) + 1 + skew
        skew = 0
    return ids


def _parse_id(offset: int, line: bytes) -> str:
    try:
        record = _orjson.loads(line)
    except ValueError:
        try:  # what orjson refuses and the standard library reads (an integer past 64 bits)
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise BadLine(offset, "not a JSON line") from None
    if not isinstance(record, dict):
        raise BadLine(offset, "not a JSON object")
    custom_id = record.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise BadLine(offset, "it has no custom_id")
    return custom_id


def line_starts(fh: BinaryIO, size: int, pieces: int) -> list[int]:
    """Offsets that cut a file of ``size`` bytes into about ``pieces`` runs of whole lines."""
    starts = [0]
    for k in range(1, pieces):
        fh.seek(max(starts[-1], size * k // pieces))
        fh.readline()
        offset = fh.tell()
        if offset >= size:
            break
        if offset > starts[-1]:
            starts.append(offset)
    return starts


def line_number(fh: BinaryIO, offset: int) -> int:
    """The 1-based number of the line that starts at ``offset`` (for an error message)."""
    fh.seek(0)
    count = 0
    done = 0
    while done < offset:
        chunk = fh.read(min(BLOCK_BYTES, offset - done))
        if not chunk:
            break
        count += chunk.count(b"\n")
        done += len(chunk)
    return count + 1
