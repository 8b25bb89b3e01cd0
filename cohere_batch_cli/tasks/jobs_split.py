"""The split of a job's input: one streaming pass that checks every record and plans the parts.

The file is read once, a bounded line at a time, in ranges of at most
:data:`RANGE_BYTES` (never whole: a 20 GB input costs the memory of a line and
of a range's line lengths), through the same rules as the local check of
``cbatch create --file`` (:class:`~cohere_batch_cli.input_rules.InputChecker`),
and every ``custom_id`` is kept unique across the whole job, not only within a
part, by one :class:`~cohere_batch_cli.state.spill.SeenIds`, which spills to
disk past a bound so memory stays flat at any record count. What is read is
hashed as it is read (:mod:`cohere_batch_cli.fingerprint`). The outcome is a *plan*: each part's byte range of the input
and its record count, cut at record boundaries so a part is never over
``max_bytes`` nor ``max_records`` (a part begins and ends with a record: blank
lines between parts belong to none). Nothing is copied during the pass; a part's
bytes are copied to a file of its own only when it is uploaded
(:func:`write_part`), so the plan is what the state store keeps, and what a
resume or ``jobs attach`` computes again from the same file and options.
"""

from __future__ import annotations

import itertools
import os
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import InputRejected
from ..fingerprint import BLOCK_BYTES, Block, BlockHasher

_COPY_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class PartPlan:
    """One part: bytes ``start`` up to ``stop`` of the input, holding ``records`` records."""

    start: int
    stop: int
    records: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class SplitPlan:
    """The parts of one input, and what the check found."""

    parts: list[PartPlan] = field(default_factory=list)
    records: int = 0
    size: int = 0
    dataset_type: str | None = None
    blocks: list[Block] = field(default_factory=list)
    """The SHA-256 of each block the check read (:mod:`cohere_batch_cli.fingerprint`): a part is sent
    only if its blocks read back the same."""
    undecided: set[int] = field(default_factory=set)
    """With a context to check against: the lines of the records whose bytes do not prove they fit
    it (:func:`~cohere_batch_cli.tokens.rule.line_bound`), the only ones the tokenizer counts."""

    @property
    def fingerprint(self) -> str:
        from ..fingerprint import fingerprint

        return fingerprint(self.blocks)


@dataclass
class _Cutter:
    """Gathers lines into parts: a new part starts when the next record would overflow a limit.

    A part begins at its first record and ends after its last: blank lines
    between two records of a part are in it (and counted against
    ``max_bytes``), blank lines between two parts (or after the last record)
    are in none, so they can never take a part over the limit.
    """

    max_bytes: int
    max_records: int | None
    parts: list[PartPlan] = field(default_factory=list)
    start: int = 0
    """Where the part being gathered begins: its first record."""
    end: int = 0
    """Just past its last record."""
    offset: int = 0
    """Where the next line begins."""
    records: int = 0

    def add(self, length: int, is_record: bool, line_no: int) -> None:
        if not is_record:
            self.offset += length
            return
        if length > self.max_bytes:
            raise InputRejected(
                f"line {line_no} is {length:,} bytes, over the {self.max_bytes:,} bytes a part may hold: "
                "no split can make it smaller"
            )
        full = self.records > 0 and (
            self.offset + length - self.start > self.max_bytes
            or (self.max_records is not None and self.records >= self.max_records)
        )
        if full:
            self.close()
        if not self.records:
            self.start = self.offset
        self.offset += length
        self.end = self.offset
        self.records += 1

    def close(self) -> None:
        if self.records:
            self.parts.append(PartPlan(self.start, self.end, self.records))
        self.records = 0


PARALLEL_BYTES = 64 * 1024 * 1024
"""Inputs at least this large are checked by two worker processes (when a core is free)."""
RANGE_BYTES = 64 * 1024 * 1024
"""The largest range one task checks: what it hands back (each line's length, each id) stays small
whatever the size of the file."""
_CHUNKS_PER_WORKER = 4


class _RangeIds:
    """The ids of one range as they come, for the caller's one check across ranges (none here)."""

    def __init__(self) -> None:
        self.hashes: array[int] = array("Q")
        self.lines: array[int] = array("Q")

    def add(self, digest: int, line: int) -> int | None:
        self.hashes.append(digest)
        self.lines.append(line)
        return None


@dataclass
class _Chunk:
    """What the check of one byte range found: each line's length (negative: not a record), problems, ids."""

    start: int
    stop: int
    lengths: array[int]
    problems: list[tuple[int, str]]
    problem_count: int
    rows: int
    dataset_type: str | None
    ids: _RangeIds
    """The 64-bit hash and line of every custom_id in the range: the caller looks for repeats
    across the whole file, in one :class:`~cohere_batch_cli.state.spill.SeenIds`."""
    blocks: list[Block]
    """The SHA-256 of each block of the range, hashed from the very bytes checked."""
    undecided: array[int]
    """The lines (within the range) of records whose bytes do not prove they fit the context."""


ContextRoom = tuple[int, int]
"""A model's context length and the output bound assumed of a record without ``max_tokens``."""


def _check_range(
    args: tuple[str, int, int, str | None, bool, int, ContextRoom | None],
) -> _Chunk:
    """Check bytes ``start`` to ``stop`` of a file (whole blocks), hashing what is checked: the work
    of one worker, or of the caller. With a context, each record is bounded by its bytes as it is read."""
    from ..fingerprint import BlockHasher
    from ..input_rules import CHAT_V2_INPUT, MAX_PROBLEMS, InputChecker
    from ..tokens.rule import kind_of, line_bound
    from ..validate import MAX_LINE_BYTES, _bounded_lines

    name, start, stop, dataset_type, first, block_bytes, room = args
    undecided: array[int] = array("Q")
    hasher = BlockHasher(start, block_bytes)
    ids = _RangeIds()
    checker = InputChecker(dataset_type, ids)
    lengths: array[int] = array("q")
    problems: list[tuple[int, str]] = []
    count = 0
    with open(name, "rb") as fh:
        fh.seek(start)
        reader = _Limited(fh, stop - start, hasher)
        shift = (
            0 if first else 1
        )  # the checker treats line 1 as the file's first (a byte order mark)
        for line_no, raw, too_long in _bounded_lines(reader, MAX_LINE_BYTES):  # type: ignore[arg-type]
            if too_long:
                count += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append(
                        (
                            line_no,
                            "the line is longer than the longest a record may be; not checked",
                        )
                    )
                lengths.append(-1)
                continue
            rows = checker.rows
            for problem in checker.feed(line_no + shift, raw):
                count += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append((problem.line - shift, problem.message))
            is_record = checker.rows > rows
            lengths.append(len(raw) if is_record else -len(raw))
            if is_record and room is not None:
                kind = kind_of(checker.dataset_type or CHAT_V2_INPUT)
                bound = line_bound(raw.rstrip(b"\r\n"), kind, *room)
                if not bound.fits or not bound.decided:
                    undecided.append(line_no)
    return _Chunk(
        start,
        stop,
        lengths,
        problems,
        count,
        checker.rows,
        checker.dataset_type,
        ids,
        hasher.finish(),
        undecided,
    )


class _Limited:
    """A binary file read no further than ``left`` bytes: one range of it, line by line."""

    def __init__(self, fh: BinaryIO, left: int, hasher: BlockHasher | None = None) -> None:
        self._fh = fh
        self._left = left
        self._hasher = hasher

    def readline(self, limit: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if limit < 0 else min(limit, self._left)
        line = self._fh.readline(size)
        self._left -= len(line)
        if self._hasher is not None:
            self._hasher.feed(line)
        return line


def _ranges(path: Path, size: int, count: int, block_bytes: int) -> list[tuple[int, int]]:
    """``count`` byte ranges of about equal size, each ending on a block boundary (a line end)."""
    from ..fingerprint import block_cut

    cuts = [0]
    with open(path, "rb") as fh:
        for k in range(1, count):
            at = block_cut(fh, size * k // count, block_bytes)
            cuts.append(min(size, max(cuts[-1], at)))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _first_type(path: Path) -> str | None:
    """The dataset type the first record tells, read alone (every range is then checked as it)."""
    import json

    from ..input_rules import infer_type

    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    return infer_type(json.loads(raw.lstrip(b"\xef\xbb\xbf").decode("utf-8")))
                except (ValueError, UnicodeDecodeError):
                    return None
    return None


def relabel(path: Path, label: str | None, out: Callable[[str], None]) -> Callable[[str], None]:
    """``out`` for :func:`plan_split`'s problems, with ``path`` named ``label`` (a file cbatch wrote itself)."""
    if label is None:
        return out
    prefix = f"{path}:"
    return lambda line: out(label + line[len(prefix) - 1 :] if line.startswith(prefix) else line)


def plan_split(
    path: Path,
    dataset_type: str | None,
    *,
    max_bytes: int,
    max_records: int | None,
    on_bytes: Callable[[int], None] | None = None,
    problems_out: Callable[[str], None] | None = None,
    processes: int | None = None,
    block_bytes: int = BLOCK_BYTES,
    room: ContextRoom | None = None,
) -> SplitPlan:
    """Check ``path`` and plan its parts; raise :class:`InputRejected` on any problem.

    A large input is checked in ranges by two worker processes when a core is
    free (``processes``: how many, None to decide, 0 for none), each with the
    checker's own rules; the ``custom_id``s of every range are then checked
    against the others', so they are unique across the whole job. The plan
    is cut here, from the lines' lengths, in input order. ``problems_out`` is
    told each problem, as ``path:LINE: message`` (the first
    :data:`~cohere_batch_cli.input_rules.MAX_PROBLEMS`). With ``room`` (a
    context check), every record is bounded by its bytes in the same pass, and
    the plan names the lines that bound cannot clear (``undecided``): the
    context check reads nothing more unless some are left.
    """
    from ..input_rules import MAX_PROBLEMS, duplicate_message
    from ..selection.pool import Workers, worker_count
    from ..state.spill import SeenIds
    from ..validate import SNIFF_BYTES, _not_text, _open_for_reading, ids_on_lines

    if max_bytes < 1 or (max_records is not None and max_records < 1):
        raise ValueError("a part holds at least one byte and one record")
    with _open_for_reading(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(fh, "peek") else b""
    shown: list[str] = []
    problems = 0

    def tell(line: int, message: str) -> None:
        nonlocal problems
        problems += 1
        if len(shown) < MAX_PROBLEMS:
            shown.append(f"{path}:{line}: {message}" if line else f"{path}: {message}")

    not_text = _not_text(head)
    cutter = _Cutter(max_bytes, max_records)
    repeats = _Repeats()
    blocks: list[Block] = []
    types: set[str] = set()
    undecided: set[int] = set()
    first_type: str | None = None
    rows = 0
    if not_text is not None:
        tell(0, not_text.message)
    else:
        workers = worker_count(size, PARALLEL_BYTES) if processes is None else processes
        try:
            kind = dataset_type or _first_type(path)
            count = max(1, workers * _CHUNKS_PER_WORKER, -(-size // RANGE_BYTES))
            if kind is None:  # the type comes from a later record: one checker reads it all
                workers = 0
                count = 1
            ranges = _ranges(path, size, count, block_bytes)
            with Workers(workers) as pool, SeenIds() as seen:
                tasks = [(str(path), a, b, kind, a == 0, block_bytes, room) for a, b in ranges]
                line_base = 0
                for chunk in pool.map(_check_range, tasks):
                    if on_bytes is not None:
                        on_bytes(chunk.stop - chunk.start)
                    for line, message in chunk.problems:
                        tell(line_base + line, message)
                    problems += chunk.problem_count - len(chunk.problems)
                    shift = line_base - (0 if chunk.start == 0 else 1)
                    for digest, line in zip(chunk.ids.hashes, chunk.ids.lines, strict=True):
                        first = seen.add(digest, shift + line)
                        if first is not None:
                            repeats.add(shift + line, first)
                    if chunk.dataset_type:
                        types.add(chunk.dataset_type)
                        first_type = first_type or chunk.dataset_type
                    rows += chunk.rows
                    blocks.extend(chunk.blocks)
                    undecided.update(line_base + line for line in chunk.undecided)
                    if not problems and not repeats.count:
                        for number, length in enumerate(chunk.lengths, start=line_base + 1):
                            cutter.add(abs(length), length > 0, number)
                    line_base += len(chunk.lengths)
                for line, first in seen.spilled_repeats():
                    repeats.add(line, first)
        except OSError as exc:
            raise _unreadable(path, exc) from None
    if repeats.count:
        shown_ids = ids_on_lines(path, {line for line, _ in repeats.shown})
        for line, first in sorted(repeats.shown):
            tell(line, duplicate_message(shown_ids.get(line, "?"), first))
        problems += repeats.count - len(repeats.shown)
    cutter.close()
    if not_text is None and rows == 0 and not problems:
        tell(0, "the file holds no records")
    if not_text is None and not types and not problems:
        tell(
            0,
            "cannot tell the dataset type from the records; pass --type batch-chat-v2-input or batch-embed-v2-input",
        )
    if problems:
        if problems_out is not None:
            for text in shown:
                problems_out(text)
            if problems > len(shown):
                problems_out(f"... and {problems - len(shown)} more problems")
        from .datasets import table_hint

        raise InputRejected(
            f"{path} has {problems} problem{'s' if problems != 1 else ''}; nothing was uploaded",
            hint=table_hint(Path(path)),
        )
    return SplitPlan(
        cutter.parts, rows, size, dataset_type or first_type or next(iter(types), None), blocks,
        undecided,
    )  # fmt: skip


@dataclass
class _Repeats:
    """The repeated custom_ids found: every one counted, the first MAX_PROBLEMS kept to show."""

    shown: list[tuple[int, int]] = field(default_factory=list)
    """(line, the line it was first on)."""
    count: int = 0

    def add(self, line: int, first: int) -> None:
        from ..input_rules import MAX_PROBLEMS

        self.count += 1
        if len(self.shown) < MAX_PROBLEMS:
            self.shown.append((line, first))


def _unreadable(path: Path, exc: OSError) -> Exception:
    """A file that could be read when the job began and cannot now: said plainly (exit 2)."""
    from ..errors import InputFileError

    if isinstance(exc, FileNotFoundError):
        return InputFileError(
            f"{path} is gone: it was deleted or moved after cbatch began reading it"
        )
    return InputFileError(f"cannot read {path}: {exc.strerror or exc}")


def write_part(
    source: Path, part: PartPlan, destination: Path, blocks: Sequence[Block] | None
) -> Path:
    """Copy one part's bytes of ``source`` to ``destination``, a chunk at a time (never whole).

    With the ``blocks`` the check recorded, the part is read by whole blocks and
    each is compared with its SHA-256: :class:`~cohere_batch_cli.errors.InputChanged`
    if the file no longer holds the bytes that were checked (``destination`` is
    then left for the caller's work folder to remove; nothing of it is sent).
    Without them (a job recorded before fingerprints), the bytes are copied as
    they are.
    """
    try:
        src = open(source, "rb")  # noqa: SIM115 - closed below, with the destination
    except OSError as exc:
        raise _unreadable(source, exc) from None
    with src, open(destination, "wb") as dst:
        if blocks is None:
            return _copy(source, src, part, dst, destination)
        from ..errors import InputChanged
        from ..fingerprint import Changed, copy_checked

        try:
            copy_checked(src, part.start, part.stop, blocks, dst)
        except Changed as exc:
            raise InputChanged(
                f"{source} changed after it was checked ({exc} differ from what the check read): "
                "nothing of it was sent"
            ) from None
        except OSError as exc:
            raise _unreadable(source, exc) from None
    return destination


def _copy(source: Path, src: BinaryIO, part: PartPlan, dst: BinaryIO, destination: Path) -> Path:
    """The copy itself: by the kernel where it can, else a chunk at a time."""
    left = part.size
    copy = getattr(os, "copy_file_range", None)
    if copy is not None:  # Linux: the kernel copies, no byte passes through Python
        offset = part.start
        try:
            while left > 0:
                done = copy(src.fileno(), dst.fileno(), min(left, 1 << 30), offset)
                if done == 0:
                    raise InputRejected(f"{source} is shorter than when it was split: it changed")
                offset += done
                left -= done
            return destination
        except OSError:  # a file system that does not take it: copy by hand from where it stopped
            dst.seek(offset - part.start)
    src.seek(part.start + (part.size - left))
    while left > 0:
        chunk = src.read(min(_COPY_CHUNK, left))
        if not chunk:
            raise InputRejected(f"{source} is shorter than when it was split: it changed")
        dst.write(chunk)
        left -= len(chunk)
    return destination
