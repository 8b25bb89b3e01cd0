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
   place, unless the original succeeded and the retries only failed (only
   the ids a small in-memory filter of the retries' ids lets through are
   looked up: most records were never sent again);
4. the retries' winners whose id the original never returned (records that
   were missing) follow, in the order they came.

The file is written as ``cbatch results`` writes one batch's: atomically
(:func:`cohere_batch_cli.atomic.atomic_write`) or streamed to stdout, the
parts deleted as they are read, every part file removed on any exception.
"""

from __future__ import annotations

import dataclasses
import json
import marshal
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson as _orjson

from ..state.spill import connect_scratch
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
    from .order import InputOrder

_BLOCK = 2000
"""Records of the original read, and their ids looked up in the retries' table, at once."""
_CACHE_KIB = 2048
"""Page cache of the retries' table: lookups land all over it, and the OS's file cache holds the rest."""
_FILTER_BITS_PER_ID = 64
"""Bits of :class:`_IdFilter` per row of the table: about 1.5 % of the ids not in it are looked up."""
_FILTER_MAX_BITS = 1 << 25
"""4 MiB: memory stays flat however many records were sent again."""


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
    input_order: InputOrder | None = None,
) -> MergedSummary:
    """A job's results: every part's attempts merged into one file, one record per ``custom_id``.

    A job's ``custom_id``s are unique across its parts (the split checks
    it), so the parts' originals stream one after the other, in part order
    and each in the order it came, and every part's retries go to the one
    table of winners: the same merge as one batch's attempts, over many
    originals. ``attempt`` counts within a part. ``input_order`` is the job's
    input: the records are written in its order (:mod:`.order`), once it read back as checked.
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
    input_order: InputOrder | None = None,
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
    """The retries' table of winners: one row per ``custom_id``, its record kept as bytes."""
    db = connect_scratch(workdir / "merge.sqlite3", cache_kib=_CACHE_KIB)
    db.execute(
        "CREATE TABLE best (id TEXT NOT NULL UNIQUE, attempt INTEGER NOT NULL, ok INTEGER NOT NULL,"
        " record BLOB NOT NULL)"
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
    rows: list[tuple[str, int, int, bytearray]] = []
    count = read[number]
    for record in records:
        count += 1
        custom_id = record.get("custom_id")
        if not isinstance(custom_id, str):  # not mergeable, but never dropped: an id of its own
            custom_id = f"\x00{number}:{count}"
        error = record.get("error")
        ok = 0 if error is not None and error != "" and error != {} else 1  # an int: see _encode
        rows.append((custom_id, number, ok, _encode(record)))
        if len(rows) >= _BLOCK:
            db.executemany(upsert, rows)
            rows = []
    db.executemany(upsert, rows)
    db.execute("COMMIT")
    read[number] = count


class _Merged:
    """The merged records, in order: the original's (with the retries' winners in place), then the rest.

    Most of the original's records were never sent again, so each block of
    them is first tested against :class:`_IdFilter` (the retries' ids, a few
    bits each, in memory): only the ids it lets through are looked up in the
    table, in one query per block. Which winners were placed is a bit per row
    of the table (its rowid), so the table is only ever read after it is written.
    """

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

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # Blocks of the original in, records out, chained in C: a generator's frame for
        # every record was a tenth of the merge's own time.
        ids = _IdFilter.of_table(self._db) if self._any else None
        rows = self._db.execute("SELECT max(rowid) FROM best").fetchone()[0] or 0
        placed = bytearray(rows // 8 + 1)
        decoded = self._decoded
        blocks = iter(lambda: list(islice(decoded, _BLOCK)), [])
        resolved = map(partial(self._resolve, ids=ids, placed=placed), blocks)
        return chain(chain.from_iterable(resolved), self._unplaced(rows, placed))

    def _resolve(
        self, block: list[dict[str, Any]], ids: _IdFilter | None, placed: bytearray
    ) -> list[dict[str, Any]]:
        """The original's block, each record replaced by the retries' winner where that one wins."""
        self._read[1] += len(block)
        if ids is None:
            for record in block:
                record["attempt"] = 1
            wanted = None
        else:
            wanted = ids.candidates(block)
        if not wanted:  # none of these ids was sent again (or nothing was)
            self.written[1] += len(block)
            return block
        keys = [block[k]["custom_id"] for k in wanted]
        replaced = 0
        for key, rowid, attempt, ok, blob in self._db.execute(
            "SELECT j.key, b.rowid, b.attempt, b.ok, b.record FROM json_each(?) AS j"
            " JOIN best AS b ON b.id = j.value",
            (_dumps(keys),),
        ):
            placed[rowid >> 3] |= 1 << (rowid & 7)
            position = wanted[key]
            if ok or _failed(block[position]):
                record = _decode(blob)
                record["attempt"] = attempt
                block[position] = record
                self.written[attempt] += 1
                replaced += 1
        self.written[1] += len(block) - replaced
        return block

    def _unplaced(self, rows: int, placed: bytearray) -> Iterator[dict[str, Any]]:
        """The winners whose id the original never returned, in the order they came."""
        for chunk in _unplaced(rows, placed):
            for attempt, blob in self._db.execute(
                "SELECT b.attempt, b.record FROM json_each(?) AS j JOIN best AS b ON b.rowid = j.value"
                " ORDER BY b.rowid",
                (_dumps(chunk),),
            ):
                record = _decode(blob)
                record["attempt"] = attempt
                self.written[attempt] += 1
                yield record


def _unplaced(rows: int, placed: bytearray) -> Iterator[list[int]]:
    """The rowids of the table not placed among the original's records, a block at a time, in order."""
    chunk = []
    for rowid in range(1, rows + 1):
        if not placed[rowid >> 3] >> (rowid & 7) & 1:
            chunk.append(rowid)
            if len(chunk) >= _BLOCK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


class _IdFilter:
    """Which ``custom_id``s may be in the retries' table: a Bloom filter of one hash, in a few bits per id.

    An id it rules out is certainly not in the table; one it lets through is
    looked up (a few in a hundred are not there). Its size follows the table's
    rows, up to ``_FILTER_MAX_BITS``: past that, more ids are let through and
    looked up in vain, and none is ever missed. The hash is Python's own for
    a ``str``, which the process keeps the same from building to testing.
    """

    def __init__(self, count: int) -> None:
        size = 1 << 13
        while size < count * _FILTER_BITS_PER_ID and size < _FILTER_MAX_BITS:
            size <<= 1
        self._mask = size - 1
        self._bits = bytearray(size >> 3)

    @classmethod
    def of_table(cls, db: sqlite3.Connection) -> _IdFilter:
        count = db.execute("SELECT count(*) FROM best").fetchone()[0]
        made = cls(count)
        bits, mask = made._bits, made._mask
        for (custom_id,) in db.execute("SELECT id FROM best"):
            h = hash(custom_id) & mask
            bits[h >> 3] |= 1 << (h & 7)
        return made

    def candidates(self, block: list[dict[str, Any]]) -> list[int]:
        """The positions in ``block`` of the records whose ``custom_id`` may be in the table.

        Each record is given ``attempt`` 1 on the way: one pass over the block,
        the merge's hottest loop, rather than two.
        """
        bits, mask = self._bits, self._mask
        out = []
        for position, record in enumerate(block):
            record["attempt"] = 1
            custom_id = record.get("custom_id")
            if isinstance(custom_id, str):
                h = hash(custom_id) & mask
                if bits[h >> 3] >> (h & 7) & 1:
                    out.append(position)
        return out


def _failed(record: dict[str, Any]) -> bool:
    error = record.get("error")
    return error is not None and error != "" and error != {}


def _dumps(value: Any) -> str | bytes:
    return _orjson.dumps(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _encode(record: dict[str, Any]) -> bytearray:
    """A decoded Avro record as bytes, to keep in the table until it is written.

    A record of plain values (the output schema's strings and nulls) is kept
    by ``marshal``, ten times quicker both ways than JSON text and the same
    record when read back. Anything else is kept as the JSON text it always
    was (bytes and other types as text, what the written line then shows),
    itself marshalled. A ``bytearray``, since sqlite3 binds one as it is where
    ``bytes`` go through its adapters first (twice the time of the insert).
    """
    for value in record.values():
        if type(value) not in _PLAIN:
            return bytearray(marshal.dumps(json.dumps(record, ensure_ascii=False, default=str)))
    return bytearray(marshal.dumps(record))


def _decode(blob: bytes) -> dict[str, Any]:
    value = marshal.loads(blob)
    if isinstance(value, str):  # the JSON text of a record that was not plain
        value = json.loads(value)
    return value if isinstance(value, dict) else {"value": value}
