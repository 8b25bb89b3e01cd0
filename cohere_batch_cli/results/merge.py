"""Merged results of a chain of attempts: one record per ``custom_id``, never one twice, none lost.

A batch that was retried has its records spread over several outputs: the
original's, then each retry's (which holds only what was sent again). The
merged file has, for each ``custom_id``, the record of its **latest success,
else its latest failure**, with the ``attempt`` it came from, as a key of
its JSON line (a column in CSV).

How, with flat memory and one pass over the largest output:

1. every part of every attempt is downloaded at once (:class:`.parts.Fetcher`);
2. the retries' records (small: only what failed before) go to a scratch
   SQLite table, one row per id, each later record replacing an earlier one
   unless that one succeeded and the later one failed;
3. the original's records are streamed in their order, a block at a time:
   an id the retries answered is written with the retries' winner in its
   place, unless the original succeeded and the retries only failed;
4. the retries' winners whose id the original never returned (records that
   were missing) follow, in the order they came.

The file is written as ``cbatch results`` writes one batch's: atomically
(:func:`cohere_batch_cli.atomic.atomic_write`) or streamed to stdout, the
parts deleted as they are read, every part file removed on any exception.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson as _orjson

from . import ResultsSummary, fetch_and_write
from .columns import TableOptions
from .decode import decoded_records
from .parts import DEFAULT_STALL_TIMEOUT, Fetcher, RefreshLinks, ordered_parts
from .reconcile import Reported
from .writer import BinaryStdout, OutputFormat

if TYPE_CHECKING:
    from .._httpx import httpx
    from ..api.models import DatasetPart
    from ..output.progress import ProgressSink

_BLOCK = 2000
"""Records of the original looked up in the retries' table at once."""


@dataclass(frozen=True)
class AttemptOutput:
    """One attempt's output: its number (1 for the original), its batch, its parts."""

    number: int
    batch_id: str
    parts: Sequence[DatasetPart]
    expected_records: int | None = None


@dataclass(frozen=True)
class MergedSummary:
    """What a merged download wrote: the usual summary, and the records each attempt gave."""

    summary: ResultsSummary
    from_attempt: dict[int, int]
    """Records written from each attempt, by attempt number."""
    read: dict[int, int]
    """Records read from each attempt's output."""


def download_merged(
    attempts: Sequence[AttemptOutput],
    destination: Path | None,
    *,
    fmt: OutputFormat = "jsonl",
    failed_only: bool = False,
    join: Path | None = None,
    http: httpx.Client,
    concurrency: int = 4,
    progress: ProgressSink | None = None,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    stdout: BinaryStdout | None = None,
    refresh_links: RefreshLinks | None = None,
    table: TableOptions | None = None,
) -> MergedSummary:
    """Download every attempt's output and write the merged records to ``destination`` (None: stdout).

    ``attempts`` must hold the original (number 1) and at least one retry.
    The same guarantees and errors as :func:`cohere_batch_cli.results.download_results`,
    through the same pipeline (:func:`cohere_batch_cli.results.fetch_and_write`);
    CSV and Parquet gain an ``attempt`` column.
    """
    if len(attempts) < 2:
        raise ValueError("a merge needs the original attempt and at least one retry")
    return download_job(  # a batch and its retries are a job of one part
        [attempts], destination, fmt=fmt, failed_only=failed_only, join=join, http=http,
        concurrency=concurrency, progress=progress, stall_timeout=stall_timeout, stdout=stdout,
        refresh_links=refresh_links, table=table,
    )  # fmt: skip


def download_job(
    parts: Sequence[Sequence[AttemptOutput]],
    destination: Path | None,
    *,
    fmt: OutputFormat = "jsonl",
    failed_only: bool = False,
    join: Path | None = None,
    http: httpx.Client,
    concurrency: int = 4,
    progress: ProgressSink | None = None,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    stdout: BinaryStdout | None = None,
    refresh_links: RefreshLinks | None = None,
    table: TableOptions | None = None,
    input_order: Path | None = None,
) -> MergedSummary:
    """A job's results: every part's attempts merged into one file, one record per ``custom_id``.

    A job's ``custom_id``s are unique across its parts (the split checks
    it), so the parts' originals stream one after the other, in part order
    and each in the order it came, and every part's retries go to the one
    table of winners: the same merge as one batch's attempts, over many
    originals. ``attempt`` counts within a part. ``input_order`` is the job's
    input: the records are written in its order (:mod:`.order`).
    """
    originals = []
    retries = []
    for attempts in parts:
        ordered = sorted(attempts, key=lambda a: a.number)
        if not ordered or ordered[0].number != 1:
            raise ValueError("every part of a job needs its original attempt")
        originals.append(ordered[0])
        retries.extend(ordered[1:])
    counts = [a.expected_records for a in originals]
    expected = None if any(c is None for c in counts) else sum(c or 0 for c in counts)
    return _merge(
        originals, retries, destination, expected=expected, fmt=fmt, failed_only=failed_only, join=join,
        http=http, concurrency=concurrency, progress=progress, stall_timeout=stall_timeout, stdout=stdout,
        refresh_links=refresh_links, table=table, input_order=input_order,
    )  # fmt: skip


def _merge(
    originals: Sequence[AttemptOutput],
    retries: Sequence[AttemptOutput],
    destination: Path | None,
    *,
    expected: int | None,
    fmt: OutputFormat,
    failed_only: bool,
    join: Path | None,
    http: httpx.Client,
    concurrency: int,
    progress: ProgressSink | None,
    stall_timeout: float,
    stdout: BinaryStdout | None,
    refresh_links: RefreshLinks | None,
    table: TableOptions | None,
    input_order: Path | None = None,
) -> MergedSummary:
    # The retries' parts first: they are read whole before the originals stream.
    groups = [ordered_parts(a.parts) for a in retries]
    first = [part for a in originals for part in ordered_parts(a.parts)]
    parts = [part for group in groups for part in group] + first
    read: Counter[int] = Counter()
    merged: list[_Merged] = []

    def records(
        fetcher: Fetcher, per_part: list[int], cleanup: ExitStack
    ) -> Iterable[dict[str, Any]]:
        workdir = fetcher.workdir
        db = cleanup.enter_context(closing(_scratch(workdir)))
        offset = 0
        for attempt, group in zip(retries, groups, strict=True):
            decoded = decoded_records(group, _waiter(fetcher, offset), per_part)
            _index_retries(db, cleanup.enter_context(closing(decoded)), attempt.number, read)
            offset += len(group)
        rest = cleanup.enter_context(
            closing(decoded_records(first, _waiter(fetcher, offset), per_part))
        )
        merged.append(_Merged(db, rest, read, any_retries=bool(read)))
        if input_order is not None:
            from .order import in_input_order

            return in_input_order(merged[0], input_order, workdir)
        return merged[0]

    summary = fetch_and_write(
        parts, records, destination, fmt=fmt, failed_only=failed_only, join=join,
        reported=Reported(records=expected), http=http, concurrency=concurrency,
        progress=progress, stall_timeout=stall_timeout, stdout=stdout, refresh_links=refresh_links,
        table=dataclasses.replace(table or TableOptions(), attempts=True),
    )  # fmt: skip
    return MergedSummary(summary, dict(merged[0].written) if merged else {}, dict(read))


def _scratch(workdir: Path) -> sqlite3.Connection:
    db = sqlite3.connect(workdir / "merge.sqlite3", isolation_level=None)
    for pragma in (
        "journal_mode = OFF",
        "synchronous = OFF",
        "cache_size = -16384",
        "temp_store = FILE",
    ):
        db.execute(f"PRAGMA {pragma}")
    db.execute(
        "CREATE TABLE best (id TEXT NOT NULL UNIQUE, attempt INTEGER NOT NULL, ok INTEGER NOT NULL,"
        " used INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL)"
    )
    return db


def _waiter(fetcher: Fetcher, offset: int) -> Callable[[int], Path]:
    """``wait`` for a group of parts that starts at ``offset`` in the fetcher's list."""
    return lambda position: fetcher.wait(offset + position)


def _index_retries(
    db: sqlite3.Connection, records: Iterable[dict[str, Any]], number: int, read: Counter[int]
) -> None:
    """One retry's records into ``best``, after the earlier ones': latest success, else latest failure."""
    upsert = (
        "INSERT INTO best (id, attempt, ok, record) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
        " attempt = excluded.attempt, ok = excluded.ok, record = excluded.record"
        " WHERE excluded.ok = 1 OR best.ok = 0"
    )
    db.execute("BEGIN")
    rows: list[tuple[str, int, bool, str]] = []
    for record in records:
        read[number] += 1
        custom_id = record.get("custom_id")
        if not isinstance(
            custom_id, str
        ):  # not mergeable, but never dropped: kept under an id of its own
            custom_id = f"\x00{number}:{read[number]}"
        rows.append((custom_id, number, not _failed(record), _encode(record)))
        if len(rows) >= _BLOCK:
            db.executemany(upsert, rows)
            rows = []
    db.executemany(upsert, rows)
    db.execute("COMMIT")


class _Merged:
    """The merged records, in order: the original's (with the retries' winners in place), then the rest."""

    def __init__(
        self,
        db: sqlite3.Connection,
        decoded: Iterator[dict[str, Any]],
        read: Counter[int],
        *,
        any_retries: bool = True,
    ) -> None:
        self._db = db
        self._any = any_retries
        self._decoded = decoded
        self._read = read
        self.written: Counter[int] = Counter()

    def __iter__(self) -> Generator[dict[str, Any], None, None]:
        block: list[dict[str, Any]] = []
        for record in self._decoded:
            self._read[1] += 1
            block.append(record)
            if len(block) >= _BLOCK:
                yield from self._resolve(block)
                block = []
        yield from self._resolve(block)
        for attempt, text in self._db.execute(
            "SELECT attempt, record FROM best WHERE used = 0 ORDER BY rowid"
        ):
            record = _decode(text)
            record["attempt"] = attempt
            self.written[attempt] += 1
            yield record

    def _resolve(self, block: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        """The original's block, each record replaced by the retries' winner where that one wins."""
        if not block:
            return []
        if not self._any:  # no retry answered anything: every record is its original's
            for record in block:
                record["attempt"] = 1
            self.written[1] += len(block)
            return block
        ids = [r.get("custom_id") if isinstance(r.get("custom_id"), str) else None for r in block]
        answered = {
            key: (attempt, ok, text)
            for key, attempt, ok, text in self._db.execute(
                "SELECT j.key, b.attempt, b.ok, b.record FROM json_each(?) AS j JOIN best AS b ON b.id = j.value",
                (_dumps(ids),),
            )
        }
        if answered:
            self._db.execute(
                "UPDATE best SET used = 1 WHERE id IN (SELECT value FROM json_each(?))",
                (_dumps([ids[k] for k in answered]),),
            )
        out = []
        for key, record in enumerate(block):
            hit = answered.get(key)
            if hit is not None and (hit[1] or _failed(record)):
                record = _decode(hit[2])
                record["attempt"] = hit[0]
            else:
                record["attempt"] = 1
            self.written[record["attempt"]] += 1
            out.append(record)
        return out


def _failed(record: dict[str, Any]) -> bool:
    error = record.get("error")
    return error is not None and error != "" and error != {}


def _dumps(value: Any) -> str | bytes:
    return _orjson.dumps(value)


def _encode(record: dict[str, Any]) -> str:
    """A decoded Avro record as JSON text, to keep in the table (bytes and other types as text)."""
    return json.dumps(record, ensure_ascii=False, default=str)


def _decode(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}
