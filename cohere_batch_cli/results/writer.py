"""Writing decoded records: where they go (a file, atomically, or stdout) and in which shape.

A file destination is checked before a byte is downloaded and written through
:func:`cohere_batch_cli.atomic.atomic_write`: all or nothing. Stdout is
streamed as records are decoded (a pipe cannot be taken back).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from ..atomic import atomic_write
from ..errors import InputFileError
from .records import (
    CSV_COLUMNS,
    csv_row,
    dumps,
    is_failed,
    joined_record,
    jsonl_record,
    spliced_jsonl_line,
)

if TYPE_CHECKING:
    from ..output.progress import ProgressSink
    from .join import Joiner

OutputFormat = Literal["jsonl", "csv"]

_PROGRESS_EVERY = 1000


@dataclass
class Counts:
    """Records seen, written (after ``failed_only``) and failed."""

    total: int = 0
    written: int = 0
    failed: int = 0


def write_records(
    records: Iterable[dict[str, Any]],
    out: IO[bytes],
    *,
    fmt: OutputFormat,
    failed_only: bool,
    joiner: Joiner | None,
    sink: ProgressSink,
) -> Counts:
    """Write records as they are decoded; count every record, written or filtered out."""
    counts = Counts()
    text = _Utf8(out)
    writer = csv.writer(text) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS + (("request",) if joiner is not None else ()))
    pending = 0
    for record in records:
        counts.total += 1
        failed = is_failed(record)
        counts.failed += failed
        pending += 1
        if pending >= _PROGRESS_EVERY:
            sink.advance(records=pending)
            pending = 0
        if failed_only and not failed:
            continue
        request = joiner.request(record.get("custom_id")) if joiner is not None else None
        if writer is not None:
            row = csv_row(record)
            if joiner is not None:
                row.append("" if request is None else dumps(request))
            writer.writerow(row)
        else:
            line = spliced_jsonl_line(record) if joiner is None else None
            if line is None:
                shaped = joined_record(record, request) if joiner is not None else jsonl_record(record)
                line = dumps(shaped)
            text.write(line + "\n")
        counts.written += 1
    if pending:
        sink.advance(records=pending)
    return counts


class _Utf8:
    """A ``write(str)`` target over a binary stream, for ``csv.writer`` and JSON lines alike."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(text.encode("utf-8"))
        return len(text)


def check_destination(destination: Path) -> None:
    """Refuse a destination that cannot be written before a byte is downloaded."""
    if destination.is_dir():
        raise InputFileError(f"cannot write results to {destination}: it is a directory")
    parent = destination.parent
    if not parent.is_dir():
        raise InputFileError(f"cannot write results to {destination}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputFileError(f"cannot write results to {destination}: {parent} is not writable")


def workdir_parent(destination: Path | None) -> str | None:
    """Part files go beside the destination (same disk, cleaned with it), else in the temp dir."""
    return None if destination is None else str(destination.parent)


def workdir_prefix(destination: Path | None) -> str:
    return ".cbatch-parts-" if destination is None else f".{destination.name}.parts-"


BinaryStdout = Callable[[], AbstractContextManager[IO[bytes]]]
"""Opens stdout as a binary stream: the output object's ``Output.binary``."""


@contextmanager
def output_stream(destination: Path | None, stdout: BinaryStdout | None) -> Iterator[IO[bytes]]:
    """A binary stream to write into: the output object's stdout, or the destination written atomically."""
    if destination is None:
        if stdout is None:
            raise ValueError("results to stdout need the output object's binary stream")
        with stdout() as out:
            yield out
        return
    with atomic_write(destination) as fh:
        yield fh
