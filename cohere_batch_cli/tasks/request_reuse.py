"""No request paid for twice: a table's rows that ask the same thing are sent once, and cached answers not at all.

``create --from TABLE`` hands each row's request here (:class:`RequestMap`).
Rows are taken a block at a time; each request's key is BLAKE2b-128 of the
model and the body's canonical JSON (:func:`~cohere_batch_cli.state.answer_cache.request_key`),
so two rows whose prompts, options and schema render alike are one request:

- the first row of a key is its **representative**: its request is written
  to the file that is sent, unless the answer cache holds the key (a **cache
  hit**: nothing sent, the cache's answer copied into the map);
- every later row of the key is a **duplicate**: nothing sent, its answer is
  its representative's.

Both the seen keys and the map of rows that are not sent live in a scratch
SQLite database (:func:`~cohere_batch_cli.state.spill.connect_scratch`, its
page cache bounded), never in a Python set: memory is the same at a thousand
rows and at ten million. After the batch is made, the database is kept in the
state folder under the input dataset's id (:meth:`RequestMap.keep`, recorded
by :meth:`~cohere_batch_cli.state.store.StateStore.record_table_requests`),
for ``results`` to give each row its answer.

A run is whole without the cache: each cache hit's reply and billed tokens
are copied into the map (its ``answers`` table) as the hit is decided, in
SQL with the cache's file attached, in the map's one transaction. The cache
may then be cleared, pruned or evict the entry before ``results``, which
reads the answer from the map alone. A dry run (nothing kept) only looks the
keys up.

A batch needs one record at least: when the cache answers every row, the
first row's request is sent all the same, so the run still has a batch whose
results write the whole table.

``--no-dedupe`` (sampling at a temperature above 0) sends every row as a
request of its own and neither reads nor fills the cache: a sample is not an
answer to give another row. ``--no-cache`` keeps the dedupe and leaves the
cache alone.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from ..state.answer_cache import ATTACHED, KeyMaker
from ..units import counted

if TYPE_CHECKING:
    from ..config import Prices
    from ..state.answer_cache import AnswerCache
    from ..state.store import StateStore, TableRequests
    from .reporting import Reporter
    from .table_prompts import TableSpec

MAP_FOLDER = "table-requests"
"""The state folder's sub-folder of kept maps, one file a table run's input dataset."""


@dataclass(frozen=True)
class Reuse:
    """How a table run reuses answers: its model (part of every key), dedupe and cache on or off, prices."""

    model: str
    dedupe: bool = True
    cache: bool = True
    prices: Prices | None = None
    """The model's prices, to say what the cache saved in money; None: tokens alone."""
    kept: bool = True
    """The map is kept for ``results`` (a run that is sent): cache hits' answers are copied into it.
    False (a dry run, an estimate): the cache is only looked in."""


@dataclass
class Summary:
    """What the rows came to: how many, how many distinct requests, how many sent and answered from the cache."""

    rows: int = 0
    distinct: int = 0
    sent: int = 0
    cached: int = 0
    """Distinct requests the cache answered (not sent)."""
    saved_input_tokens: int = 0
    saved_output_tokens: int = 0
    saved_money: Decimal | None = None
    dedupe: bool = True
    cache: bool = True
    notes: list[str] = field(default_factory=list)


class LineSink(Protocol):
    """Where the requests to send are written: whole lines, one or many a call (a binary file, or a
    :class:`~cohere_batch_cli.validate.CheckedWriter` that checks each line it takes)."""

    def write(self, data: bytes, /) -> int: ...


class RequestMap:
    """The rows of one table run, each written as a request or mapped to the answer it reuses.

    Two passes, in flat memory. While the table is read, each row's request
    line goes to a private file and its key, with its row, to one of 256
    buckets (by the key's first byte), spilled a page a bucket to a scratch
    database whenever :data:`KEYS_IN_MEMORY` keys wait. Then each bucket in
    turn (a 256th of the keys) finds its keys' first rows, its duplicates and,
    for its new keys, the cache's hits, and writes them to the map
    (``requests (row, key, cached)`` for each distinct request, ``reused (row,
    rep)`` for each duplicate row, ``answers (row, body, input_tokens,
    output_tokens)`` for each cache hit, its reply copied from the cache); a
    bitmap of one bit a row marks the rows not sent (a run that does not keep its map, a dry run or an
    estimate, writes no map: the bitmap alone decides). Last, the lines of the rows that are sent are
    copied to the output, which may check each as it takes it. Deciding row by row against an SQLite index instead took 4 us a
    row, a third of the budget of a table run's local work.
    """

    def __init__(self, reuse: Reuse, folder: Path, reporter: Reporter) -> None:
        self.reuse = reuse
        self.summary = Summary(dedupe=reuse.dedupe, cache=reuse.cache and reuse.dedupe)
        self._reporter = reporter
        self._folder = folder
        self._path = folder / "requests.sqlite3"
        self._lines_path = folder / "rendered.jsonl"
        self._out: LineSink | None = None
        self._lines: IO[bytes] | None = None
        self._keys: _KeyPages | None = None
        self._cache: AnswerCache | None = None
        self._key = KeyMaker(reuse.model)
        self._attached = False
        """The cache's file is attached to the map (:meth:`_attach`)."""
        self._first_tokens = (0, 0)
        """Row 0's billed tokens when the cache answers it: taken back if it is sent after all."""

    def start(self, out: LineSink) -> None:
        """Write the requests to send to ``out`` (each once; after the last row, with dedupe).

        ``out`` takes whole lines, one or many a call: a
        :class:`~cohere_batch_cli.validate.CheckedWriter` checks them as they are written.
        """
        self._out = out
        if self.reuse.dedupe:
            self._lines = open(self._lines_path, "wb", buffering=_BUFFER)  # noqa: SIM115 - closed by finish()
            self._keys = _KeyPages(self._folder)

    def add(self, custom_ids: Sequence[str], texts: Sequence[bytes]) -> None:
        """The next rows' requests, each body as its canonical JSON (rows from 0, in the table's order).

        A few hundred rows a call: one write of their lines, one loop over their keys.
        """
        lines = b"".join(
            [_line(custom_id, text) for custom_id, text in zip(custom_ids, texts, strict=True)]
        )
        s = self.summary
        if self._keys is None:  # --no-dedupe: every row a request of its own
            assert self._out is not None
            self._out.write(lines)
            s.rows += len(texts)
            s.distinct += len(texts)
            s.sent += len(texts)
            return
        assert self._lines is not None
        self._lines.write(lines)
        key = self._key
        self._keys.add([key(text) for text in texts], s.rows)
        s.rows += len(texts)

    def finish(self) -> Summary:
        """Decide which rows are sent, write them, and keep the map; the summary of every row."""
        s = self.summary
        if self._keys is None or self._lines is None:
            return s
        self._lines.close()
        self._lines = None
        if s.cache:
            self._cache = _open_cache(self._reporter)
            s.cache = self._cache is not None
            holds = None if self._cache is None else _holds_answers(self._cache, self._reporter)
            if self._cache is not None and not holds:
                # Empty (a first run): no look-ups, and the run is still one with the cache on.
                # None: it cannot be read, and the run is without it.
                s.cache = holds is not None
                self._cache.close()
                self._cache = None
        skip = bytearray((s.rows + 7) // 8)
        # The map is written only for a run that keeps it (a dry run or an estimate throws it
        # away): the decisions, the summary and the rows sent are the same without it.
        db = self._new_map() if self.reuse.kept else None
        try:
            if db is not None:
                self._attach(db)
                db.execute("BEGIN")
            for keys, rows in self._keys.buckets():
                self._bucket(db, keys, rows, skip)
            first_anyway = s.rows > 0 and s.distinct == s.cached
            if first_anyway:  # the cache answers every row: the first is sent all the same
                self._send_first(db, skip)
            if db is not None:
                create_map_indexes(db)  # once, after the inserts: cheaper than kept while inserting
                db.execute("COMMIT")
                if self._attached:
                    db.execute(f"DETACH DATABASE {ATTACHED}")
        finally:
            if db is not None:
                db.close()
            self._keys.close()
            self._keys = None
        s.sent = s.distinct - s.cached
        self._copy_sent(skip)
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        if s.cached and self.reuse.prices is not None:
            s.saved_money = self.reuse.prices.cost(s.saved_input_tokens, s.saved_output_tokens)
        return s

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
            self._lines = None
        if self._keys is not None:
            self._keys.close()
            self._keys = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def keep(self, dataset_id: str, reporter: Reporter) -> None:
        """Keep the map under the input dataset's id in the state folder, and record it; a failure is a warning."""
        if not self.reuse.dedupe or not self._path.exists():
            return
        from ..errors import StoreError
        from ..state.store import TableRequests, open_store, state_dir

        target_dir = state_dir()[0] / MAP_FOLDER
        target = target_dir / f"{dataset_id}.sqlite3"
        if target.exists():  # an earlier call made this run (an idempotency key's, found again):
            return  # its map says what its dataset holds; this call's may count the cache's answers since
        s = self.summary
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            with open(self._path, "rb") as fh:
                os.fsync(fh.fileno())
            shutil.move(self._path, target)
            open_store().record_table_requests(
                TableRequests(
                    dataset_id, self.reuse.model, s.rows, s.distinct, s.sent, s.cached,
                    s.cache, str(target),
                )
            )  # fmt: skip
        except (OSError, StoreError) as exc:
            reporter.warn(
                f"could not keep which rows of dataset {dataset_id} reuse another's answer ({exc}): "
                "results will show those rows as missing"
            )
        if s.cached:  # counted once the batch exists: a dry run saves nothing
            from ..state.answer_cache import CacheUnusable, open_cache

            try:
                with open_cache() as cache:
                    cache.count_saved(s.cached, s.saved_input_tokens, s.saved_output_tokens)
            except CacheUnusable as exc:  # the totals are a courtesy: never a failed run
                reporter.warn(f"{exc}")

    # -- the second pass ---------------------------------------------------------------

    def _new_map(self) -> sqlite3.Connection:
        """The map's database, its tables made: what :meth:`keep` keeps for ``results``."""
        from ..state.spill import connect_scratch

        db = connect_scratch(self._path)
        try:
            db.execute(
                "CREATE TABLE requests (row INTEGER NOT NULL, key BLOB NOT NULL, cached INTEGER NOT NULL)"
            )
            db.execute("CREATE TABLE reused (row INTEGER NOT NULL, rep INTEGER NOT NULL)")
            db.execute(
                "CREATE TABLE answers (row INTEGER NOT NULL, body BLOB NOT NULL,"
                " input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL)"
            )
        except BaseException:
            db.close()
            raise
        return db

    def _attach(self, db: sqlite3.Connection) -> None:
        """The cache's file attached to the map, for hits to be copied in SQL (a kept run's only)."""
        if self._cache is None or not self.reuse.kept:
            return
        from ..state.answer_cache import CacheUnusable

        try:
            self._cache.attach(db)
            self._attached = True
        except CacheUnusable as exc:
            self._reporter.warn(f"{exc}; the table is sent without it")
            self._drop_cache()

    def _drop_cache(self) -> None:
        assert self._cache is not None
        self._cache.close()
        self._cache = None
        self.summary.cache = False

    def _send_first(self, db: sqlite3.Connection | None, skip: bytearray) -> None:
        """Row 0 sent after all, though the cache answers it: neither its copy nor its tokens are saved."""
        s = self.summary
        tin, tout = self._first_tokens
        if db is not None:
            db.execute("UPDATE requests SET cached = 0 WHERE row = 0")
            db.execute("DELETE FROM answers WHERE row = 0")
        skip[0] &= 0xFE
        s.cached -= 1
        s.saved_input_tokens -= tin
        s.saved_output_tokens -= tout
        s.notes.append(
            "the cache answers every row: the first is sent all the same, so the run has a batch"
        )

    def _bucket(
        self, db: sqlite3.Connection | None, keys: bytes, rows: Any, skip: bytearray
    ) -> None:
        """One bucket's keys (16 bytes each) and rows, in row order: its map rows (``db``: the map,
        None when it is not kept), its cache hits."""
        first: dict[bytes, int] = {}
        reused: list[tuple[int, int]] = []
        for i, row in enumerate(rows):
            key = keys[16 * i : 16 * i + 16]
            rep = first.setdefault(key, row)
            if rep != row:
                reused.append((row, rep))
                skip[row >> 3] |= 1 << (row & 7)
        hits: dict[bytes, tuple[int, int]] = {}
        if self._cache is not None and first:
            try:
                found = (
                    self._cache.take_into(db, list(first.items()), "answers")
                    if self._attached and db is not None
                    else self._cache.take(list(first))
                )
                hits = {h.key: (h.input_tokens, h.output_tokens) for h in found}
            except Exception as exc:  # a cache that fails mid-run: the rest is sent
                self._reporter.warn(f"{exc}; the rest of the table is sent without it")
                self._drop_cache()
        s = self.summary
        for key, (tin, tout) in hits.items():
            row = first[key]
            if row == 0:
                self._first_tokens = (tin, tout)
            skip[row >> 3] |= 1 << (row & 7)
            s.saved_input_tokens += tin
            s.saved_output_tokens += tout
        if db is not None:
            db.executemany(
                "INSERT INTO requests (row, key, cached) VALUES (?, ?, ?)",
                [(row, key, key in hits) for key, row in first.items()],
            )
            db.executemany("INSERT INTO reused (row, rep) VALUES (?, ?)", reused)
        s.distinct += len(first)
        s.cached += len(hits)

    def _copy_sent(self, skip: bytearray) -> None:
        """The lines of the rows that are sent, from the first pass's file to the output, in row order.

        Written a few thousand lines a call: the output may check each line it takes.
        """
        assert self._out is not None
        write = self._out.write
        sent: list[bytes] = []
        with open(self._lines_path, "rb", buffering=_BUFFER) as lines:
            for row, line in enumerate(lines):
                if not skip[row >> 3] & (1 << (row & 7)):
                    sent.append(line)
                    if len(sent) == _COPY_LINES:
                        write(b"".join(sent))
                        sent.clear()
        if sent:
            write(b"".join(sent))
        self._lines_path.unlink(missing_ok=True)


MAP_INDEXES = {
    "requests_by_row": "requests (row)",
    "reused_by_row": "reused (row, rep)",
    "answers_by_row": "answers (row)",
}
"""What ``results`` looks up a chunk of rows by, in each of the map's tables (:class:`.table_results.MapReuse`).

Without them every chunk of a table's ``results`` scans a whole table: time
quadratic in the table's size.
"""


def create_map_indexes(db: sqlite3.Connection) -> None:
    """The map's indexes by row, for a map being finished or one kept before they existed."""
    for name, on in MAP_INDEXES.items():
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")


def prune_maps(store: StateStore, *, older_than: float, everything: bool = False) -> list[str]:
    """Remove the maps of runs whose table was last written more than ``older_than`` seconds ago.

    ``jobs prune`` calls it: a map is the run's local state, needed each time
    ``results`` writes the run's table, so one is removed only once its table
    was written (``everything``: also a run whose table never was, counted
    from when it was made). The run's record stays, so a later ``results``
    says why its reused rows are missing. The input datasets' ids, in the
    order the runs were made.
    """
    import time

    gone = []
    for record in store.table_maps_done_with(time.time() - older_than, everything=everything):
        remove_map(store, record)
        gone.append(record.dataset_id)
    return gone


def remove_map(store: StateStore, record: TableRequests) -> None:
    """Delete a run's kept map (only a file of the state folder's ``table-requests/``) and note it gone."""
    from ..state.store import state_dir

    path = Path(record.map_file)
    if path.parent.resolve() == (state_dir()[0] / MAP_FOLDER).resolve():
        path.unlink(missing_ok=True)
    store.forget_table_map(record.dataset_id)


KEYS_IN_MEMORY = 200_000
"""Keys (16 bytes and a row number each) the first pass holds before it writes them to disk."""
_BUCKETS = 256


class _KeyPages:
    """Keys and their rows in 256 buckets by their first byte, spilled a page a bucket to a scratch database."""

    def __init__(self, folder: Path) -> None:
        from array import array

        self._folder = folder
        self._keys = [bytearray() for _ in range(_BUCKETS)]
        self._rows = [array("Q") for _ in range(_BUCKETS)]
        self._waiting = 0
        self._db: sqlite3.Connection | None = None
        self._page = 0

    def add(self, keys: list[bytes], row: int) -> None:
        """The keys of rows ``row``, ``row + 1``, ... in order."""
        pages, rows = self._keys, self._rows
        for key in keys:
            bucket = key[0]
            pages[bucket] += key
            rows[bucket].append(row)
            row += 1
        self._waiting += len(keys)
        if self._waiting >= KEYS_IN_MEMORY:
            self._spill()

    def buckets(self) -> Iterator[tuple[bytes, Any]]:
        """Each bucket's keys (concatenated) and rows, in row order."""
        from array import array

        if self._db is None:  # all in memory
            for bucket in range(_BUCKETS):
                yield bytes(self._keys[bucket]), self._rows[bucket]
            return
        self._spill()
        self._db.execute("CREATE INDEX pages_by_bucket ON pages (bucket, page)")
        for bucket in range(_BUCKETS):
            keys = bytearray()
            rows = array("Q")
            for blob_keys, blob_rows in self._db.execute(
                "SELECT keys, rows FROM pages WHERE bucket = ? ORDER BY page", (bucket,)
            ):
                keys += blob_keys
                rows.frombytes(blob_rows)
            yield bytes(keys), rows

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            (self._folder / "keys.sqlite3").unlink(missing_ok=True)

    def _spill(self) -> None:
        from array import array

        from ..state.spill import connect_scratch

        if self._db is None:
            self._db = connect_scratch(self._folder / "keys.sqlite3")
            self._db.execute(
                "CREATE TABLE pages (bucket INTEGER NOT NULL, page INTEGER NOT NULL,"
                " keys BLOB NOT NULL, rows BLOB NOT NULL)"
            )
        rows = []
        for bucket in range(_BUCKETS):
            if self._rows[bucket]:
                self._page += 1
                rows.append(
                    (bucket, self._page, bytes(self._keys[bucket]), self._rows[bucket].tobytes())
                )
                self._keys[bucket] = bytearray()
                self._rows[bucket] = array("Q")
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO pages (bucket, page, keys, rows) VALUES (?, ?, ?, ?)", rows
        )
        self._db.execute("COMMIT")
        self._waiting = 0


_quote = json.encoder.encode_basestring
"""A str as a JSON string (UTF-8 kept, as ``ensure_ascii=False``), in C."""


def _line(custom_id: str, body: bytes) -> bytes:
    """One request line, its body as its canonical JSON (UTF-8, as the body is)."""
    return b'{"custom_id":' + _quote(custom_id).encode() + b',"body":' + body + b"}\n"


_COPY_LINES = 4096
"""Lines of the sent rows copied a write."""
_BUFFER = 1 << 20
"""The first pass's file is written and read back through a 1 MiB buffer: a system call a MiB, not 8 KiB."""


def _holds_answers(cache: AnswerCache, reporter: Reporter) -> bool | None:
    """Whether ``cache`` holds any answer to look up; None, said as a warning, when it cannot be read."""
    from ..state.answer_cache import CacheUnusable

    try:
        return cache.holds_answers()
    except CacheUnusable as exc:
        reporter.warn(f"{exc}; the table is sent without it (deleting the file is safe)")
        return None


def _open_cache(reporter: Reporter) -> AnswerCache | None:
    from ..state.answer_cache import CacheUnusable, open_cache

    try:
        return open_cache()
    except CacheUnusable as exc:
        reporter.warn(f"{exc}; the table is sent without it (deleting the file is safe)")
        return None


def summary_line(table: object, s: Summary, reporter: Reporter) -> str:
    """``reviews.csv: 1,000,000 rows, 612,400 distinct requests, 12,000 answered by the cache: 600,400 to send``."""
    parts = [f"{table}: {counted(s.rows, 'row')}"]
    if s.dedupe:
        parts.append(counted(s.distinct, "distinct request"))
    else:
        parts.append(f"each row its own request ({reporter.spell('--no-dedupe', 'dedupe=False')})")
    if s.cached:
        parts.append(f"{s.cached:,} answered by the cache")
    head = ", ".join(parts)
    return f"{head}: {counted(s.sent, 'request')} to send"


def saved_line(s: Summary) -> str | None:
    """What the cache saved: requests, tokens and, with prices set, money; None when it saved nothing."""
    if not s.cached:
        return None
    from .budget import money

    tokens = f"{s.saved_input_tokens:,} input and {s.saved_output_tokens:,} output tokens"
    line = f"the answer cache saved {counted(s.cached, 'request')} ({tokens}"
    if s.saved_money is not None:
        line += f", {money(s.saved_money)} at the prices set"
    return line + ")"


@contextmanager
def table_requests(
    run: TableSpec, model: str, prices: Prices | None, reporter: Reporter, *, kept: bool = True
) -> Iterator[RequestMap]:
    """A :class:`RequestMap` for ``run`` in a private folder, removed on exit (unless kept before).

    ``kept``: the run is sent and its map kept (:attr:`Reuse.kept`); False for a dry run.
    """
    folder = Path(tempfile.mkdtemp(prefix="cbatch-table-"))
    try:
        reuse = Reuse(model, dedupe=run.dedupe, cache=run.cache, prices=prices, kept=kept)
        requests = RequestMap(reuse, folder, reporter)
        try:
            yield requests
        finally:
            requests.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
