"""Writing decoded records: where they go (a file, atomically, or stdout) and in which shape.

A file destination is checked before a byte is downloaded and written through
:func:`cohere_batch_cli.atomic.atomic_write`: all or nothing. Stdout is
streamed as records are decoded (a pipe cannot be taken back). JSON lines are
written here; CSV and Parquet are tables, written by :mod:`.table`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..atomic import STDOUT, atomic_write, describe_destination
from ..errors import InputFileError, LocalWriteError
from .columns import TableOptions
from .counts import Counts
from .formats import OutputFormat
from .records import body_not_json, dumps, joined_record, jsonl_record, spliced_jsonl_line

if TYPE_CHECKING:
    from ..output.progress import ProgressSink
    from .join import Joiner

__all__ = ["Counts", "OutputFormat", "write_records"]

_PROGRESS_EVERY = 1000


def write_records(
    records: Iterable[dict[str, Any]],
    out: IO[bytes],
    *,
    fmt: OutputFormat,
    failed_only: bool,
    joiner: Joiner | None,
    sink: ProgressSink,
    table: TableOptions | None = None,
    spool_dir: Path | None = None,
) -> Counts:
    """Write records as they are decoded; count every record, written or filtered out.

    CSV and Parquet go to :func:`.table.write_table` with ``table``'s columns;
    ``spool_dir`` is where Parquet may spool (the download's own folder).

    JSON lines are gathered a few hundred at a time and written in one call:
    per-line writes were a fifth of a results run (docs/performance.md, P4),
    and the check that every body is JSON needed that time back. Merged results
    carry an ``attempt`` key in each JSON line as any other key (a column of
    CSV and Parquet, with ``TableOptions.attempts``).
    """
    if (
        table is not None and table.input_table is not None
    ):  # a table run: its table, answers beside
        if spool_dir is None or joiner is not None:
            raise ValueError("a table run's table needs a folder to spool in, and no --join index")
        from .table_out import write_table_out

        return write_table_out(
            records, out, fmt=fmt, failed_only=failed_only, sink=sink, options=table,
            spool_dir=spool_dir,
        )  # fmt: skip
    if fmt != "jsonl":
        if spool_dir is None:
            raise ValueError("a table needs a folder to spool in")
        from .table import write_table

        return write_table(
            records, out, fmt=fmt, failed_only=failed_only, joiner=joiner, sink=sink,
            options=table or TableOptions(), spool_dir=spool_dir,
        )  # fmt: skip
    counts = Counts()
    text = _Utf8(out)
    lines: list[str] = []
    pending = total = failures = 0
    for record in records:
        total += 1
        error = record.get("error")
        failed = error is not None and error != "" and error != {}
        failures += failed
        pending += 1
        if pending >= _PROGRESS_EVERY:
            sink.advance(records=pending)
            pending = 0
            if lines:
                text.write_lines(lines)
                lines = []
        if failed_only and not failed:
            continue
        counts.written += 1
        line = None if joiner is not None or failed else spliced_jsonl_line(record)
        if line is None:
            if joiner is not None:
                shaped = joined_record(record, joiner.request(record.get("custom_id")))
                counts.not_json += body_not_json(record, shaped["response"])
            else:
                shaped = jsonl_record(record)
                counts.not_json += body_not_json(record, shaped.get("body"))
            line = dumps(shaped)
        lines.append(line)
    if lines:
        text.write_lines(lines)
    if pending:
        sink.advance(records=pending)
    counts.total, counts.failed = total, failures
    return counts


class _Utf8:
    """JSON lines into a binary stream."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write_lines(self, lines: list[str]) -> None:
        """Several lines in one write: each ends with a newline, and a multi-byte character is never split."""
        self._out.write(("\n".join(lines) + "\n").encode("utf-8"))


def check_destination(destination: Path) -> None:
    """Refuse a destination that cannot be written before a byte is downloaded.

    A folder, or a file in a folder that does not exist, is a mistake in the
    command (exit 2); a folder cbatch may not write in is a local write
    failure (exit 11), found now rather than after the download.
    """
    target = describe_destination(destination)
    if target.kind == "folder":
        raise InputFileError(f"cannot write results to {destination}: it is a directory")
    folder = target.folder
    if folder is None:
        return  # a device, FIFO or socket: written in place
    if not folder.is_dir():
        raise InputFileError(
            f"cannot write results to {destination}: the directory {folder} does not exist"
        )
    if not os.access(folder, os.W_OK):
        raise LocalWriteError(f"cannot write results to {destination}: {_why_not_writable(folder)}")


def _why_not_writable(folder: Path) -> str:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"Read-only file system ({folder})"
    except (OSError, AttributeError):
        pass
    return f"Permission denied ({folder})"


def workdir_parent(destination: Path | None) -> str | None:
    """Part files go beside the file written (same disk, cleaned with it), else in the temp dir.

    Beside a symlink's target, not the link; never beside a device or a FIFO
    (``-o /dev/null`` must not make a folder in ``/dev``).
    """
    if destination is None:
        return None
    folder = describe_destination(destination).folder
    return None if folder is None else str(folder)


def workdir_prefix(destination: Path | None) -> str:
    if destination is None:
        return ".cbatch-parts-"
    target = describe_destination(destination)
    return f".{target.path.name}.parts-" if target.folder is not None else ".cbatch-parts-"


BinaryStdout = Callable[[], AbstractContextManager[IO[bytes]]]
"""Opens stdout as a binary stream: the output object's ``Output.binary``."""


def output_stream(
    destination: Path | None, stdout: BinaryStdout | None
) -> AbstractContextManager[IO[bytes]]:
    """A binary stream to write into: stdout (None), or the destination as :mod:`..atomic` writes it."""
    return atomic_write(STDOUT if destination is None else destination, stdout=stdout)  # type: ignore[arg-type]
