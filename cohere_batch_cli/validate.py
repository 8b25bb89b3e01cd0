"""The local check of a batch input file before it is uploaded, in constant memory.

:func:`check_file` reads the file in binary, one bounded line at a time, and
feeds every line to :class:`~cohere_batch_cli.input_rules.InputChecker` (the
rules the sandbox applies too). What it adds is the handling of files that are
not line-shaped JSON text at all, so they give one clear sentence instead of a
thousand "invalid JSON" lines:

- a UTF-16 file (it has a byte order mark) and a binary file (a NUL byte in
  its first 8 KiB, or a gzip header) are reported once, and reading stops;
- a UTF-8 byte order mark and CRLF line ends are accepted;
- a line longer than :data:`MAX_LINE_BYTES` is reported by number and skipped
  in chunks, never held whole: reading ``for line in f`` on a 1 GB file with
  no newline would hold the whole gigabyte;
- a path that is missing, a directory or unreadable raises
  :class:`InputFileError`, which the CLI turns into exit code 2.

Only the first :data:`~cohere_batch_cli.input_rules.MAX_PROBLEMS` problems are
listed; every one is counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .input_rules import MAX_PROBLEMS, InputChecker, Problem

if TYPE_CHECKING:
    from .fingerprint import Block
    from .state.spill import SeenIds
from .units import binary_size

MAX_LINE_BYTES = 64 * 1024 * 1024
"""The longest line checked (64 MiB).

Far above any single request the API takes (a long chat with a few base64
images is a few MiB), and low enough that the line and its parsed form fit in
memory together on a small CI machine. A longer line is reported, not read.
"""

SNIFF_BYTES = 8192
"""How much of the start of a file is looked at to tell text from binary."""

_SKIP_CHUNK = 1024 * 1024
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_GZIP_MAGIC = b"\x1f\x8b"


from .errors import InputFileError  # noqa: E402 - raised here, defined with the others


@dataclass
class FileReport:
    """What the check of one file found.

    ``dataset_type`` is the type given, or the one inferred from the records
    (None when no record tells it, which is itself a problem). ``problems``
    lists at most ``MAX_PROBLEMS``; ``problem_count`` counts them all.
    """

    path: Path
    dataset_type: str | None
    rows: int = 0
    size_bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    notes: list[str] = field(default_factory=list)
    """Warnings about records that pass the check (fields the API's description lacks)."""
    fingerprint: str | None = None
    """The file's one fingerprint (:mod:`cohere_batch_cli.fingerprint`), hashed from the bytes the
    check read: what is recorded of the input, so nothing reads the file again to hash it."""
    blocks: list[Block] = field(default_factory=list)
    """The SHA-256 of each block the check read (:mod:`cohere_batch_cli.fingerprint`): an upload of
    the file sends a block only once it read back the same (:class:`~cohere_batch_cli.fingerprint.CheckedReader`)."""
    label: str | None = None
    """What messages call the input when ``path`` is a copy of it (``stdin`` for ``--file -``)."""

    @property
    def shown(self) -> Path:
        """The input as messages name it: its label, else its path."""
        return Path(self.label) if self.label else self.path

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problems: list[Problem]) -> None:
        """Count every problem, keep the first ``MAX_PROBLEMS`` for display."""
        self.problem_count += len(problems)
        room = MAX_PROBLEMS - len(self.problems)
        if room > 0:
            self.problems.extend(problems[:room])


def check_file(
    path: Path,
    dataset_type: str | None = None,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    on_bytes: Callable[[int], None] | None = None,
) -> FileReport:
    """Check a JSONL input file line by line; raise :class:`InputFileError` if it cannot be read.

    ``on_bytes`` is told how many bytes each line held, for a progress bar (a
    100 MB file takes seconds to check).
    """
    path = Path(path)
    with _open_for_reading(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(fh, "peek") else b""
        not_text = _not_text(head)
        if not_text is not None:
            report = FileReport(path=path, dataset_type=dataset_type, size_bytes=size)
            report.add([not_text])
            return report
        from .fingerprint import BlockHasher, HashingReader

        hasher = BlockHasher()
        reader = HashingReader(fh, hasher)
        with _LineCheck(path, dataset_type, max_line_bytes) as check:
            try:
                for line_no, raw, too_long in _bounded_lines(reader, max_line_bytes):  # type: ignore[arg-type]
                    if on_bytes is not None:
                        on_bytes(len(raw) or max_line_bytes)
                    check.feed(line_no, raw, too_long)
                check.spilled_repeats()
            except OSError as exc:
                raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return check.finish(hasher.finish(), size)


class CheckedWriter:
    """A JSONL file checked as it is written: the report :func:`check_file` would give once it is whole.

    A table's requests are written by cbatch itself and then sent; checking
    them as they are written, through the same per-line check (:class:`_LineCheck`)
    and hashing the same bytes into the same blocks, gives the same problems
    on the same lines and the same fingerprint as reading the file back,
    without reading it back. :meth:`write` takes whole lines (each ending
    with a newline), one or many at a time; :meth:`finish` flushes the file
    and gives the report. The file is the caller's to close.
    """

    def __init__(
        self,
        out: BinaryIO,
        path: Path,
        dataset_type: str | None,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        from .fingerprint import BlockHasher

        self._out = out
        self._path = path
        self._max = max_line_bytes
        self._hasher = BlockHasher()
        self._check = _LineCheck(path, dataset_type, max_line_bytes)
        self._line_no = 0
        self._size = 0
        self._head = b""
        """The file's first bytes, for the sniff :func:`check_file` makes of them."""

    def write(self, data: bytes) -> int:
        """Write whole lines (``data`` ends with a newline) and check each as :func:`check_file` reads it."""
        self._out.write(data)
        self._hasher.feed(data)
        if len(self._head) < SNIFF_BYTES:
            self._head += data[: SNIFF_BYTES - len(self._head)]
        self._size += len(data)
        lines = data.split(b"\n")
        lines.pop()  # the empty piece after the last newline
        feed, limit, line_no = self._check.feed, self._max, self._line_no
        # Each line without its newline: the check reads the same record, and the file's size
        # is counted once, in finish (as check_file counts it from the file).
        for raw in lines:
            line_no += 1
            if len(raw) > limit:  # as check_file's read of it: too long, not read
                feed(line_no, b"", True)
            else:
                feed(line_no, raw, False)
        self._line_no = line_no
        return len(data)

    def finish(self) -> FileReport:
        """The report of the whole file, flushed to disk (a repeat found past memory is read back from it)."""
        self._out.flush()
        with self._check as check:
            not_text = _not_text(self._head)
            if not_text is not None:
                report = FileReport(self._path, check.report.dataset_type, size_bytes=self._size)
                report.add([not_text])
                return report
            check.spilled_repeats()
        return check.finish(self._hasher.finish(), self._size)

    def close(self) -> None:
        """Let go of the ids noted so far (a write that failed): the file stays the caller's."""
        self._check.close()


class _LineCheck:
    """One file's lines checked in order, wherever they come from: read (:func:`check_file`) or written
    (:class:`CheckedWriter`). The one loop body both run; the rules are :class:`InputChecker`'s."""

    def __init__(self, path: Path, dataset_type: str | None, max_line_bytes: int) -> None:
        from .state.spill import SeenIds

        self.report = FileReport(path=path, dataset_type=dataset_type)
        self._max = max_line_bytes
        self._seen = SeenIds()
        self._checker = InputChecker(dataset_type, self._seen)
        self._unreadable = 0

    def __enter__(self) -> _LineCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._seen.close()

    def feed(self, line_no: int, raw: bytes, too_long: bool) -> None:
        """One line (``too_long``: past the limit, not read, ``raw`` empty)."""
        if too_long:
            self._checker.rows += 1
            problems = [
                Problem(line_no, f"the line is longer than {binary_size(self._max)}; not checked")
            ]
        else:
            problems = self._checker.feed(line_no, raw)
            if not problems:  # the usual line: nothing to count
                return
        self._unreadable += too_long or _unreadable(problems)
        self.report.add(problems)

    def spilled_repeats(self) -> None:
        """The repeated ids found only once every line was fed (the file is read for the few shown)."""
        _add_spilled_repeats(self.report, self._seen, self.report.path)

    def finish(self, blocks: list[Block], size: int) -> FileReport:
        """The report, once every line was fed: the file's blocks and size, its problems as a whole."""
        from .fingerprint import fingerprint

        report, checker = self.report, self._checker
        report.size_bytes = size
        report.blocks = blocks
        report.fingerprint = fingerprint(blocks)
        checker.size_bytes = size  # skipped long lines were never fed, yet they count
        report.add(checker.finish())
        report.rows = checker.rows
        report.dataset_type = checker.dataset_type
        report.notes = checker.notes()
        if report.dataset_type is None and checker.rows > self._unreadable:
            # Some record was read and none told the type. (When no line could be read at
            # all, those lines' own problems are the news; this would be noise.)
            report.add(
                [
                    Problem(
                        0,
                        "cannot tell the dataset type from the records; pass --type batch-chat-v2-input or batch-embed-v2-input",
                    )
                ]
            )
        return report


def _add_spilled_repeats(report: FileReport, seen: SeenIds, path: Path) -> None:
    """The repeated custom_ids found only once the check ended (past what memory holds): each counted,
    those shown read back from their lines."""
    from .input_rules import duplicate_message

    room = max(0, MAX_PROBLEMS - len(report.problems))
    shown: list[tuple[int, int]] = []
    count = 0
    for line, first in seen.spilled_repeats():
        count += 1
        if len(shown) < room:
            shown.append((line, first))
    if not count:
        return
    ids = ids_on_lines(path, {line for line, _ in shown})
    report.add(
        [
            Problem(line, duplicate_message(ids.get(line, "?"), first))
            for line, first in sorted(shown)
        ]
    )
    report.problem_count += count - len(shown)


def ids_on_lines(path: Path, lines: set[int]) -> dict[int, str]:
    """The ``custom_id`` on each of ``lines`` (1-based) of a file: read again, for the few problems shown."""
    import json

    found: dict[int, str] = {}
    if not lines:
        return found
    last = max(lines)
    with open(path, "rb") as fh:
        for line_no, raw, too_long in _bounded_lines(fh, MAX_LINE_BYTES):
            if line_no in lines and not too_long:
                try:
                    record = json.loads(raw.lstrip(b"\xef\xbb\xbf"))
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("custom_id"), str):
                    found[line_no] = record["custom_id"]
            if line_no >= last:
                break
    return found


def _open_for_reading(path: Path) -> BinaryIO:
    """Open in binary, turning every reason it fails into one clear sentence."""
    if path.is_dir():
        raise InputFileError(f"{path} is a directory, not a JSONL file")
    try:
        return open(path, "rb")
    except FileNotFoundError as exc:
        raise InputFileError(f"{path} does not exist") from exc
    except PermissionError as exc:
        raise InputFileError(f"{path} cannot be read: permission denied") from exc
    except OSError as exc:
        raise InputFileError(f"cannot open {path}: {exc.strerror or exc}") from exc


def _not_text(head: bytes) -> Problem | None:
    """One whole-file problem when the file is not UTF-8 text, judged from its first bytes."""
    if head.startswith(_UTF16_BOMS):
        return Problem(0, "the file is UTF-16 encoded; save it as UTF-8")
    if head.startswith(_GZIP_MAGIC):
        return Problem(0, "the file is gzip-compressed; decompress it first (gunzip)")
    if b"\x00" in head:
        return Problem(
            0,
            "the file is binary (it holds NUL bytes), not JSONL text; UTF-16 without a byte order mark looks like this too",
        )
    return None


def _unreadable(problems: list[Problem]) -> bool:
    """Whether a line's problems say it could not be parsed at all (so it tells no type)."""
    return any(p.message.startswith(("invalid JSON", "not valid UTF-8")) for p in problems)


def _bounded_lines(fh: BinaryIO, limit: int) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, raw line, too long)`` for every line, never holding more than ``limit`` bytes.

    A line over the limit is yielded as ``(n, b"", True)`` after the rest of it
    was read through in fixed chunks and dropped.
    """
    line_no = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield line_no, raw, False
            continue
        del raw
        _skip_rest_of_line(fh)
        yield line_no, b"", True


def _skip_rest_of_line(fh: BinaryIO) -> None:
    while True:
        chunk = fh.readline(_SKIP_CHUNK)
        if not chunk or chunk.endswith(b"\n"):
            return
