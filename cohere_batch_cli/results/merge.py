"""Merged results of a chain of attempts: one record per ``custom_id``, never one twice, none lost.

A batch that was retried has its records spread over several outputs: the
original's, then each retry's (which holds only what was sent again). The
merged file has, for each ``custom_id``, the record of its **latest success,
else its latest failure**, with the ``attempt`` it came from, as a key of
its JSON line (a column in CSV). For a run with an answer schema, a success
whose answer is invalid (:mod:`.validity`) is no success here: a later valid
answer wins over it, and when every attempt's answer is invalid the latest
one stays, with its reason.

How, with flat memory and one pass over the largest output:

1. every part of every attempt is downloaded at once (:class:`.parts.Fetcher`);
2. the retries' records (small: only what failed before) are kept by
   :mod:`.winners`, one per id, each later record replacing an earlier one
   unless that one succeeded and the later one failed: records in a scratch
   file and their ids' hashes in memory, spilled into a scratch SQLite table
   past a bound;
3. the original's records are streamed in their order, a block at a time:
   an id the retries answered is written with the retries' winner in its
   place, unless the original succeeded and the retries only failed (an id
   never sent again, most of them, costs one probe in memory);
4. the retries' winners whose id the original never returned (records that
   were missing) follow, in the order they came.

The file is written as ``cbatch results`` writes one batch's: atomically
(:func:`cohere_batch_cli.atomic.atomic_write`) or streamed to stdout, the
parts deleted as they are read, every part file removed on any exception.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ResultsSummary, fetch_and_write
from .columns import TableOptions
from .decode import decoded_records
from .parts import DEFAULT_STALL_TIMEOUT, Fetcher, RefreshLinks, ordered_parts
from .reconcile import Reported
from .validity import usable
from .winners import MemoryWinners, Winners, decode
from .writer import BinaryStdout, OutputFormat

if TYPE_CHECKING:
    from .._httpx import httpx
    from ..api.models import DatasetPart
    from ..output.progress import ProgressSink
    from .order import InputOrder

_BLOCK = 500
"""Records of the original held at once, their ids asked of the winners in one call (more held: more memory)."""
_NO_SCHEMA = usable(None)
"""A success is a record without an error (a run with no answer schema)."""


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
    typed = table.input_table.typed if table is not None and table.input_table is not None else None
    counts = usable(typed)  # an invalid answer of a schema run is no success: it never wins as one

    def records(
        fetcher: Fetcher, per_part: list[int], cleanup: ExitStack
    ) -> Iterable[dict[str, Any]]:
        workdir = fetcher.workdir
        expected = sum(part.num_rows or 0 for group in groups for part in group)
        winners: Winners = MemoryWinners(workdir, expected=expected)
        cleanup.callback(lambda: winners.close())  # the store in use at the end, spilled or not
        offset = 0
        for attempt, group in zip(retries, groups, strict=True):
            decoded = decoded_records(group, _waiter(fetcher, offset), per_part)
            winners = _index_retries(
                winners, cleanup.enter_context(closing(decoded)), attempt.number, read, counts
            )
            offset += len(group)
        winners.finish()
        rest = cleanup.enter_context(
            closing(decoded_records(first, _waiter(fetcher, offset), per_part))
        )
        merged.append(_Merged(winners, rest, read, counts))
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


def _waiter(fetcher: Fetcher, offset: int) -> Callable[[int], Path]:
    """``wait`` for a group of parts that starts at ``offset`` in the fetcher's list."""
    return lambda position: fetcher.wait(offset + position)


def _index_retries(
    winners: Winners,
    records: Iterable[dict[str, Any]],
    number: int,
    read: Counter[int],
    counts: Callable[[dict[str, Any]], bool] = _NO_SCHEMA,
) -> Winners:
    """One retry's records into ``winners``, after the earlier ones'; the store to use from now on.

    ``counts`` (:func:`.validity.usable`) says whether a record is a success.
    """
    count = read[number]
    for record in records:
        count += 1
        custom_id = record.get("custom_id")
        if not isinstance(custom_id, str):  # not mergeable, but never dropped: an id of its own
            custom_id = f"\x00{number}:{count}"
        ok = 1 if counts(record) else 0  # an int: see winners._encode
        winners = winners.add(custom_id, number, ok, record)
    read[number] = count
    return winners


class _Merged:
    """The merged records, in order: the original's (with the retries' winners in place), then the rest.

    Each block of the original asks ``winners`` (finished) which of its ids a
    retry answered, in one call; the winners no block held follow at the end.
    """

    def __init__(
        self,
        winners: Winners,
        decoded: Iterator[dict[str, Any]],
        read: Counter[int],
        counts: Callable[[dict[str, Any]], bool] = _NO_SCHEMA,
    ) -> None:
        self._winners = winners
        self._counts = counts
        self._decoded = decoded
        self._read = read
        self.written: Counter[int] = Counter()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # Blocks of the original in, records out, chained in C: a generator's frame for
        # every record was a tenth of the merge's own time.
        decoded = self._decoded
        blocks = iter(lambda: list(islice(decoded, _BLOCK)), [])
        resolve = self._resolve if len(self._winners) else self._alone
        return chain(chain.from_iterable(map(resolve, blocks)), self._unplaced())

    def _alone(self, block: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A block of the original when nothing was sent again (or nothing came back)."""
        self._read[1] += len(block)
        for record in block:
            record["attempt"] = 1
        self.written[1] += len(block)
        return block

    def _resolve(self, block: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The original's block, each record replaced by the retries' winner where that one wins."""
        self._read[1] += len(block)
        replaced = 0
        for position, attempt, ok, winner in self._winners.found(block):
            if ok or not self._counts(block[position]):
                winner["attempt"] = attempt
                block[position] = winner
                self.written[attempt] += 1
                replaced += 1
        self.written[1] += len(block) - replaced
        return block

    def _unplaced(self) -> Iterator[dict[str, Any]]:
        """The winners whose id the original never returned, in the order they came."""
        for attempt, blob in self._winners.unplaced():
            record = decode(blob)
            record["attempt"] = attempt
            self.written[attempt] += 1
            yield record
