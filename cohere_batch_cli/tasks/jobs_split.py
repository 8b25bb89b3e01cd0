"""The split of a job's input: one streaming pass that checks every record and plans the parts.

The file is read once, a bounded line at a time (never whole: a 20 GB input
costs the memory of one line and of the ``custom_id`` set), through the same
rules as the local check of ``cbatch create --file``
(:class:`~cohere_batch_cli.input_rules.InputChecker`), whose compact set of
64-bit hashes keeps every ``custom_id`` unique across the whole job, not only
within a part. The outcome is a *plan*: each part's byte range of the input
and its record count, cut at record boundaries so a part is never over
``max_bytes`` nor ``max_records``. Nothing is copied during the pass; a part's
bytes are copied to a file of its own only when it is uploaded
(:func:`write_part`), so the plan is what the state store keeps, and what a
resume or ``jobs attach`` computes again from the same file and options.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputRejected

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


@dataclass
class _Cutter:
    """Gathers lines into parts: a new part starts when the next record would overflow a limit."""

    max_bytes: int
    max_records: int | None
    parts: list[PartPlan] = field(default_factory=list)
    start: int = 0
    offset: int = 0
    records: int = 0

    def add(self, length: int, is_record: bool, line_no: int) -> None:
        if is_record and length > self.max_bytes:
            raise InputRejected(
                f"line {line_no} is {length:,} bytes, over the {self.max_bytes:,} bytes a part may hold: "
                "no split can make it smaller"
            )
        full = self.records > 0 and (
            self.offset - self.start + length > self.max_bytes
            or (self.max_records is not None and self.records >= self.max_records)
        )
        if is_record and full:
            self.close()
        self.offset += length
        self.records += is_record

    def close(self) -> None:
        if self.records:
            self.parts.append(PartPlan(self.start, self.offset, self.records))
        self.start, self.records = self.offset, 0


def plan_split(
    path: Path,
    dataset_type: str | None,
    *,
    max_bytes: int,
    max_records: int | None,
    on_bytes: Callable[[int], None] | None = None,
    problems_out: Callable[[str], None] | None = None,
) -> SplitPlan:
    """Check ``path`` and plan its parts, in one pass; raise :class:`InputRejected` on any problem.

    ``problems_out`` is told each problem, as ``path:LINE: message`` (the
    first :data:`~cohere_batch_cli.input_rules.MAX_PROBLEMS`).
    """
    from ..input_rules import MAX_PROBLEMS, InputChecker
    from ..validate import MAX_LINE_BYTES, SNIFF_BYTES, _bounded_lines, _not_text, _open_for_reading

    if max_bytes < 1 or (max_records is not None and max_records < 1):
        raise ValueError("a part holds at least one byte and one record")
    cutter = _Cutter(max_bytes, max_records)
    checker = InputChecker(dataset_type)
    shown = 0
    problems = 0

    def tell(line: int, message: str) -> None:
        nonlocal shown, problems
        problems += 1
        if problems_out is not None and shown < MAX_PROBLEMS:
            shown += 1
            problems_out(f"{path}:{line}: {message}" if line else f"{path}: {message}")

    with _open_for_reading(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(fh, "peek") else b""
        not_text = _not_text(head)
        if not_text is not None:
            tell(0, not_text.message)
        else:
            try:
                for line_no, raw, too_long in _bounded_lines(fh, MAX_LINE_BYTES):
                    if too_long:
                        tell(line_no, "the line is longer than the longest a record may be; not checked")
                        continue
                    rows = checker.rows
                    for problem in checker.feed(line_no, raw):
                        tell(problem.line, problem.message)
                    cutter.add(len(raw), checker.rows > rows, line_no)
                    if on_bytes is not None:
                        on_bytes(len(raw))
            except OSError as exc:
                from ..errors import InputFileError

                raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    cutter.close()
    if checker.rows == 0 and not problems:
        tell(0, "the file holds no records")
    if checker.dataset_type is None and not problems:
        tell(0, "cannot tell the dataset type from the records; pass --type batch-chat-v2-input or batch-embed-v2-input")
    if problems:
        hidden = problems - shown
        if hidden > 0 and problems_out is not None:
            problems_out(f"... and {hidden} more problems")
        raise InputRejected(f"{path} has {problems} problem{'s' if problems != 1 else ''}; nothing was uploaded")
    return SplitPlan(cutter.parts, checker.rows, size, checker.dataset_type)


def write_part(source: Path, part: PartPlan, destination: Path) -> Path:
    """Copy one part's bytes of ``source`` to ``destination``, a chunk at a time (never whole)."""
    left = part.size
    with open(source, "rb") as src, open(destination, "wb") as dst:
        src.seek(part.start)
        while left > 0:
            chunk = src.read(min(_COPY_CHUNK, left))
            if not chunk:
                raise InputRejected(f"{source} is shorter than when it was split: it changed")
            dst.write(chunk)
            left -= len(chunk)
    return destination
