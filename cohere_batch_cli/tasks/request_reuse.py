"""No request paid for twice: a table's rows that ask the same thing are sent once, and cached answers not at all.

``create --from TABLE`` hands each row's request here (:class:`RequestMap`).
Rows are taken a block at a time; each request's key is BLAKE2b-128 of the
model and the body's canonical JSON (:func:`~cohere_batch_cli.state.answer_cache.request_key`),
so two rows whose prompts, options and schema render alike are one request:

- the first row of a key is its **representative**: its request is written
  to the file that is sent, unless the answer cache holds the key (a **cache
  hit**: nothing sent, the answer is read from the cache by ``results``);
- every later row of the key is a **duplicate**: nothing sent, its answer is
  its representative's.

Both the seen keys and the map of rows that are not sent live in a scratch
SQLite database (:func:`~cohere_batch_cli.state.spill.connect_scratch`, its
page cache bounded), never in a Python set: memory is the same at a thousand
rows and at ten million. After the batch is made, the database is kept in the
state folder under the input dataset's id (:meth:`RequestMap.keep`, recorded
by :meth:`~cohere_batch_cli.state.store.StateStore.record_table_requests`),
for ``results`` to give each row its answer.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..units import counted

if TYPE_CHECKING:
    from ..config import Prices
    from ..state.answer_cache import AnswerCache
    from .reporting import Reporter
    from .table_prompts import TablePrompt

BLOCK = 2048
"""Rows whose keys are looked up together: one seen-set query and one cache query a block."""
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


class RequestMap:
    """The rows of one table run, each written as a request or mapped to the answer it reuses.

    ``rows`` in the scratch database: ``requests (row, key, cached)`` for each
    distinct request (its representative row, from 0) and ``reused (row,
    rep)`` for each duplicate row and the representative it takes its answer
    from.
    """

    def __init__(self, reuse: Reuse, folder: Path, reporter: Reporter) -> None:
        self.reuse = reuse
        self.summary = Summary(dedupe=reuse.dedupe, cache=reuse.cache and reuse.dedupe)
        self._reporter = reporter
        self._folder = folder
        self._path = folder / "requests.sqlite3"
        self._pending: list[tuple[str, Any]] = []
        self._out: IO[str] | None = None
        self._first: tuple[str, bytes] | None = None
        self._db: sqlite3.Connection | None = None
        self._cache: AnswerCache | None = None
        if reuse.dedupe:
            from ..state.spill import connect_scratch

            self._db = connect_scratch(self._path)
            self._db.execute(
                "CREATE TABLE requests (row INTEGER PRIMARY KEY, key BLOB NOT NULL,"
                " cached INTEGER NOT NULL)"
            )
            self._db.execute("CREATE UNIQUE INDEX requests_by_key ON requests (key)")
            self._db.execute("CREATE TABLE reused (row INTEGER PRIMARY KEY, rep INTEGER NOT NULL)")
            if self.summary.cache:
                self._cache = _open_cache(reporter)
                self.summary.cache = self._cache is not None

    def start(self, out: IO[str]) -> None:
        """Write the requests to send to ``out`` from now on."""
        self._out = out

    def add(self, custom_id: str, body: dict[str, Any]) -> None:
        """The next row's request (rows from 0, in the table's order)."""
        self._pending.append((custom_id, body))
        if len(self._pending) >= BLOCK:
            self._flush()

    def finish(self) -> Summary:
        """Write what is still pending; the summary of every row."""
        self._flush()
        s = self.summary
        if self._db is not None:
            if s.rows and not s.sent and self._first is not None:
                self._send_first_anyway()
            self._db.close()
            self._db = None
        if self._cache is not None:
            if s.cached:
                try:
                    self._cache.count_saved(s.cached, s.saved_input_tokens, s.saved_output_tokens)
                except Exception as exc:  # the totals are a courtesy: never a failed run
                    self._reporter.warn(f"{exc}")
            self._cache.close()
            self._cache = None
        if s.cached and self.reuse.prices is not None:
            s.saved_money = self.reuse.prices.cost(s.saved_input_tokens, s.saved_output_tokens)
        return s

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
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

    # -- a block of rows -------------------------------------------------------------

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        assert self._out is not None
        from ..state.answer_cache import canonical, request_key

        s = self.summary
        base = s.rows
        s.rows += len(pending)
        model = self.reuse.model
        bodies = [canonical(body) for _, body in pending]
        if self._db is None:  # --no-dedupe: every row a request of its own
            self._out.writelines(_line(cid, b) for (cid, _), b in zip(pending, bodies, strict=True))
            s.distinct += len(pending)
            s.sent += len(pending)
            return
        keys = [request_key(model, b) for b in bodies]
        if self._first is None:
            self._first = (pending[0][0], bodies[0])
        first: dict[bytes, int] = {}
        for n, key in enumerate(keys):
            first.setdefault(key, base + n)
        db = self._db
        marks = ",".join("?" * len(first))
        seen: dict[bytes, int] = dict(
            db.execute(f"SELECT key, row FROM requests WHERE key IN ({marks})", list(first))
        )
        new = [k for k in first if k not in seen]
        hits: dict[bytes, tuple[int, int]] = {}
        if self._cache is not None and new:
            try:
                hits = {h.key: (h.input_tokens, h.output_tokens) for h in self._cache.take(new)}
            except Exception as exc:  # a cache that fails mid-run: the rest is sent
                self._reporter.warn(f"{exc}; the rest of the table is sent without it")
                self._cache.close()
                self._cache = None
                self.summary.cache = False
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO requests (row, key, cached) VALUES (?, ?, ?)",
            [(first[k], k, k in hits) for k in new],
        )
        reused = []
        lines = []
        for n, key in enumerate(keys):
            row = base + n
            rep = seen.get(key)
            if rep is None:
                rep = first[key]
            if rep != row:
                reused.append((row, rep))
            elif key not in hits:
                lines.append(_line(pending[n][0], bodies[n]))
        db.executemany("INSERT INTO reused (row, rep) VALUES (?, ?)", reused)
        db.execute("COMMIT")
        self._out.writelines(lines)
        s.distinct += len(new)
        s.sent += len(lines)
        s.cached += len(hits)
        for tin, tout in hits.values():
            s.saved_input_tokens += tin
            s.saved_output_tokens += tout

    def _send_first_anyway(self) -> None:
        """Every row was answered by the cache: the first is sent all the same, so the run has a batch."""
        assert self._db is not None and self._out is not None and self._first is not None
        custom_id, body = self._first
        row = self._db.execute("SELECT cached FROM requests WHERE row = 0").fetchone()
        if row is None or not row[0]:
            return  # pragma: no cover - row 0 is always a request, and with nothing sent a cached one
        self._db.execute("UPDATE requests SET cached = 0 WHERE row = 0")
        self._out.write(_line(custom_id, body))
        s = self.summary
        s.sent += 1
        s.cached -= 1
        s.notes.append(
            "the cache answers every row: the first is sent all the same, so the run has a batch"
        )


def _line(custom_id: str, body: bytes) -> str:
    """One request line, its body as its canonical JSON."""
    return (
        '{"custom_id":'
        + json.dumps(custom_id, ensure_ascii=False)
        + ',"body":'
        + body.decode("utf-8")
        + "}\n"
    )


def _open_cache(reporter: Reporter) -> AnswerCache | None:
    from ..state.answer_cache import CacheUnusable, open_cache

    try:
        return open_cache()
    except CacheUnusable as exc:
        reporter.warn(f"{exc}; the table is sent without it (deleting the file is safe)")
        return None


def summary_line(table: object, s: Summary) -> str:
    """``reviews.csv: 1,000,000 rows, 612,400 distinct requests, 12,000 answered by the cache: 600,400 to send``."""
    parts = [f"{table}: {counted(s.rows, 'row')}"]
    if s.dedupe:
        parts.append(counted(s.distinct, "distinct request"))
    else:
        parts.append("each row its own request (--no-dedupe)")
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
    run: TablePrompt, model: str, prices: Prices | None, reporter: Reporter
) -> Iterator[RequestMap]:
    """A :class:`RequestMap` for ``run`` in a private folder, removed on exit (unless kept before)."""
    folder = Path(tempfile.mkdtemp(prefix="cbatch-table-"))
    try:
        requests = RequestMap(
            Reuse(model, dedupe=run.dedupe, cache=run.cache, prices=prices), folder, reporter
        )
        try:
            yield requests
        finally:
            requests.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
