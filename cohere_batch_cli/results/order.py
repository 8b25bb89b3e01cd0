"""Records put back in the input's order, with flat memory: sorted on disk, never whole in memory.

The service writes records in an order of its own (shuffled, part by part), and
a job's merge adds the retries' answers after the originals. Asked for input
order (``jobs results --input-order``), the records are numbered by the line
their ``custom_id`` has in the input file, kept in a table keyed by that
number, and read back in it: two passes over disk, never the records in
memory. A record whose ``custom_id`` is not in the input (there should be
none) follows the others, in the order it came.

The input read for the order is hashed as it is read and compared with the
fingerprint its check recorded before a record is written: a file rewritten
since (the same records in another order, the same size) would give another
order without a word, so it is refused (:class:`~cohere_batch_cli.errors.InputChanged`,
exit 5) rather than followed, and the service's order is one option away.

A table run's records are put on their table rows (:func:`in_table_order`)
through a spill of row ranges instead: each record written once and read
once, in blocks, with no index to keep (:class:`Placed`).
"""

from __future__ import annotations

import json
import marshal
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson as _orjson

_BLOCK = 5000


@dataclass(frozen=True)
class InputOrder:
    """The input whose order the records are written in, and what its check recorded of it."""

    path: Path
    fingerprint: str | None
    """The fingerprint of the input its check read (None: recorded before fingerprints, not compared)."""
    owner: str
    """What the input belongs to, for the refusal (``job k3v9x0q2ma``)."""


def in_input_order(
    records: Iterable[dict[str, Any]], order: InputOrder, workdir: Path
) -> Iterator[dict[str, Any]]:
    """``records`` in the order their ``custom_id``s have in ``order.path`` (a JSONL file).

    The scratch table lives in ``workdir`` (beside the destination): a disk that
    fills up under it is a :class:`~cohere_batch_cli.errors.LocalWriteError`
    naming the folder, as a full disk is for the results themselves.
    """
    with _disk_errors(workdir):
        yield from _in_input_order(records, order, workdir)


def in_table_order(
    records: Iterable[dict[str, Any]],
    ids: Iterable[str | None] | None,
    workdir: Path,
    *,
    first: list[dict[str, Any]] | None = None,
    lookups: bool = False,
) -> Placed:
    """``records`` by the row their ``custom_id`` names in a table, through a spill of row ranges.

    ``ids`` is each row's ``custom_id`` in the table's order; None when a row's
    id is its number from 1 (``create --from`` without ``--id-column``): the
    position is then read from the id itself, and no index of ids is built.
    ``first`` receives the first records placed (up to a chunk of them), for a
    caller that must see some before it writes a header. Records of no row are
    counted, not placed (a table has no line to put them on). ``lookups``: the
    caller will ask :meth:`Placed.records_at` for rows already read.
    """
    return Placed(records, ids, workdir, first, lookups=lookups)


class Placed:
    """Records placed on the rows of a table; iterate for ``(row, record)`` in row order (rows from 0).

    The records are spilled, as they come, into a file a range of
    :data:`BUCKET_ROWS` rows at a time (:class:`_RowSpill`), then each range is
    read back whole, sorted in memory and handed out: memory holds one range
    and the records not yet spilled, whatever the number of rows. Each record
    is written once and read once, in blocks: the scratch SQLite table did
    this at a B-tree insert and a read a record, and took a third of writing
    the table (docs/performance.md, T2).
    """

    def __init__(
        self,
        records: Iterable[dict[str, Any]],
        ids: Iterable[str | None] | None,
        workdir: Path,
        first: list[dict[str, Any]] | None,
        *,
        lookups: bool = False,
    ) -> None:
        self._records = records
        self._ids = ids
        self._workdir = workdir
        self._first = first
        self._lookups = lookups
        self.records = 0
        """Records read."""
        self.without_row: list[str] = []
        """A few ``custom_id``s that name no row of the table."""
        self.without_row_count = 0
        self._table: _OrderTable | None = None
        self._spill: _RowSpill | None = None

    def records_at(self, rows: list[int]) -> dict[int, dict[str, Any]]:
        """The records placed on ``rows`` (those that have one) among the rows read so far.

        Only with ``lookups``: each range of rows is then kept in a scratch
        table as it is read, for a later row that reuses an earlier one's answer.
        """
        if self._table is None or not rows:
            return {}
        found = {}
        for n, body, rest in self._table.db.execute(
            "SELECT n, body, record FROM out WHERE n IN (SELECT value FROM json_each(?))",
            (json.dumps(rows),),
        ):
            found[n] = _record(body, rest)
        return found

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Place every record (the first ``next`` waits for the last one), then read them in row order.

        The scratch table of :meth:`records_at` stays open until :meth:`close`,
        so it answers after the last record was read (a later row may reuse an answer).
        """
        with _disk_errors(self._workdir):
            if self._ids is not None or self._lookups:
                self._table = _OrderTable(self._workdir, transaction=False)
            if self._ids is not None:
                assert self._table is not None
                self._table.add_ids(enumerate(self._ids))
            place = self._table.place_by_id if self._ids is not None else _by_number  # type: ignore[union-attr]
            spill = self._spill = _RowSpill(self._workdir)
            for block in _blocks(self._records):
                if self._first is not None and len(self._first) < _BLOCK:
                    self._first.extend(block[: _BLOCK - len(self._first)])
                self.records += len(block)
                where = place([_text_id(r) for r in block])
                kept = list(zip(where, block, strict=True))
                if None in where:
                    kept = [item for item in kept if item[0] is not None]
                    for record, n in zip(block, where, strict=True):
                        if n is None:
                            self.without_row_count += 1
                            if len(self.without_row) < 3:
                                self.without_row.append(str(record.get("custom_id")))
                spill.put(kept)
            for placed in spill.ranges():
                if self._lookups:
                    assert self._table is not None
                    self._table.put(placed)
                yield from placed

    def close(self) -> None:
        """Let go of the spill and the scratch table (the work folder they are in goes with the download's)."""
        spill, self._spill = self._spill, None
        if spill is not None:
            spill.close()
        table, self._table = self._table, None
        if table is not None:
            table.close()


BUCKET_ROWS = 16_384
"""Rows in one range of the spill: the most records memory holds when a range is read back."""
SPILL_RECORDS = 16_384
"""Records held before they are written to the spill, each range's in a piece of its own."""


class _RowSpill:
    """Records spilled to one file, a piece of each range of :data:`BUCKET_ROWS` rows at a time.

    A piece is the ``marshal`` of a list of ``(row, record)``, in the order the
    records came; the file's offsets of each range's pieces are kept in
    memory (a few numbers for every :data:`SPILL_RECORDS` records). A value
    ``marshal`` cannot hold (a date, a decimal) is kept as its JSON, as the
    scratch table did. Nothing in the file outlives the write: it is read
    only by this process, only what it wrote.
    """

    def __init__(self, workdir: Path) -> None:
        self._path = workdir / "order.spill"
        self._file: Any = None
        self._pending: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        self._count = 0
        self._pieces: dict[int, list[tuple[int, int]]] = {}
        self._size = 0

    def put(self, placed: list[tuple[int, dict[str, Any]]]) -> None:
        """Records at their rows, in the order they came (of two at one row the later wins)."""
        pending = self._pending
        for item in placed:
            bucket = pending.get(item[0] // BUCKET_ROWS)
            if bucket is None:
                bucket = pending[item[0] // BUCKET_ROWS] = []
            bucket.append(item)
        self._count += len(placed)
        if self._count >= SPILL_RECORDS:
            self._flush()

    def ranges(self) -> Iterator[list[tuple[int, dict[str, Any]]]]:
        """Each range's records in row order (one a row: the last that came), range after range."""
        if not self._pieces:  # all of them still in memory: no file was needed
            pending, self._pending = self._pending, {}
            for bucket in sorted(pending):
                yield _in_order(pending[bucket])
            return
        self._flush()
        fh = self._file
        for bucket in sorted(self._pieces):
            items: list[tuple[int, dict[str, Any]]] = []
            with self._disk():
                for offset, size in self._pieces[bucket]:
                    fh.seek(offset)
                    items.extend(marshal.loads(fh.read(size)))
            yield _in_order(items)

    def close(self) -> None:
        self._pending = {}
        if self._file is not None:
            self._file.close()
            self._file = None
            with suppress(OSError):
                self._path.unlink()

    def _flush(self) -> None:
        with self._disk():
            if self._file is None:
                self._file = open(self._path, "w+b")  # noqa: SIM115 - closed by close()
            fh = self._file
            fh.seek(self._size)
            for bucket, items in self._pending.items():
                try:
                    data = marshal.dumps(items)
                except ValueError:  # a value it cannot hold: as JSON, as the scratch table kept it
                    data = marshal.dumps([(n, _as_json(record)) for n, record in items])
                fh.write(data)
                self._pieces.setdefault(bucket, []).append((self._size, len(data)))
                self._size += len(data)
        self._pending = {}
        self._count = 0

    @contextmanager
    def _disk(self) -> Iterator[None]:
        """A disk that fails under the spill (full, read-only) is a LocalWriteError naming the folder."""
        try:
            yield
        except OSError as exc:
            from ..errors import LocalWriteError

            raise LocalWriteError(
                "cannot write the file that puts records in the table's order in "
                f"{self._path.parent.parent}: {exc.strerror or exc}"
            ) from None


def _as_json(record: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = _orjson.loads(_orjson.dumps(record, default=str))
    return value


def _in_order(items: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """One range's records sorted by row, the last of a row's kept (a stable sort, then a dict)."""
    items.sort(key=itemgetter(0))
    last = dict(items)
    return items if len(last) == len(items) else list(last.items())


class _OrderTable:
    """The scratch table: ``pos`` (each id's place in the input) and ``out`` (records by place)."""

    def __init__(self, workdir: Path, *, transaction: bool = True) -> None:
        from ..state.spill import connect_scratch

        self.db = connect_scratch(workdir / "order.sqlite3", cache_kib=16 * 1024)
        self.db.execute("CREATE TABLE pos (id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
        self.db.execute("CREATE TABLE out (n INTEGER PRIMARY KEY, body TEXT, record BLOB NOT NULL)")
        if transaction:  # else each statement is a transaction of its own: read while written
            self.db.execute("BEGIN")

    def close(self) -> None:
        self.db.close()

    def add_ids(self, numbered: Iterable[tuple[int, str | None]]) -> None:
        """Each id at its place; the first place of an id wins."""
        rows: list[tuple[str, int]] = []
        for n, custom_id in numbered:
            if custom_id is not None:
                rows.append((custom_id, n))
            if len(rows) >= _BLOCK:
                self.db.executemany("INSERT OR IGNORE INTO pos VALUES (?, ?)", rows)
                rows = []
        self.db.executemany("INSERT OR IGNORE INTO pos VALUES (?, ?)", rows)

    def place_by_id(self, ids: list[str | None]) -> list[int | None]:
        """The place of each id in the input, None for one it does not hold."""
        found = dict(
            self.db.execute(
                "SELECT id, n FROM pos WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            )
        )
        return [found.get(i) if i is not None else None for i in ids]

    def put(self, placed: list[tuple[int, dict[str, Any]]]) -> None:
        """Records at their places (a later record at the same place replaces the earlier one).

        A record's ``body`` (the answer, as JSON text: most of the record) is kept
        as it is, the rest as orjson's bytes (anything JSON cannot hold as its
        text): escaping the body into a JSON string and back was most of the cost.
        Each block goes in sorted by place (a stable sort: of two records at one
        place the later still wins), so the inserts walk the table's pages in order
        rather than at random: about a seventh less time per record.
        """
        rows = [_row(n, r) for n, r in placed]
        rows.sort(key=itemgetter(0))
        self.db.executemany("INSERT OR REPLACE INTO out VALUES (?, ?, ?)", rows)

    def done(self) -> None:
        self.db.execute("COMMIT")

    def read(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for n, body, rest in self.db.execute("SELECT n, body, record FROM out ORDER BY n"):
            yield n, _record(body, rest)


def _row(n: int, record: dict[str, Any]) -> tuple[int, str | None, bytes]:
    """A record as a row of ``out``: its place, its body when it is text, the rest as JSON."""
    body = record.get("body")
    if isinstance(body, str):
        rest = dict(record)  # a copy in C, then the one key dropped: the keys keep their order
        del rest["body"]
        return n, body, _orjson.dumps(rest, default=str)
    return n, None, _orjson.dumps(record, default=str)


def _record(body: str | None, rest: bytes) -> dict[str, Any]:
    value = _orjson.loads(rest)
    if not isinstance(value, dict):
        value = {"value": value}
    if body is not None:
        value["body"] = body
    return value


def _blocks(records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    source = iter(records)
    return iter(lambda: list(islice(source, _BLOCK)), [])


def _text_id(record: dict[str, Any]) -> str | None:
    custom_id = record.get("custom_id")
    return custom_id if isinstance(custom_id, str) else None


def _by_number(ids: list[str | None]) -> list[int | None]:
    """Places read from ids that are row numbers from 1, written as ``create --from`` writes them."""
    out: list[int | None] = []
    for custom_id in ids:
        if custom_id and custom_id.isascii() and custom_id.isdigit() and custom_id[0] != "0":
            out.append(int(custom_id) - 1)
        else:
            out.append(None)
    return out


@contextmanager
def _disk_errors(workdir: Path) -> Iterator[None]:
    """A disk that fails under the scratch table (full, read-only) is a LocalWriteError naming it."""
    try:
        yield
    except sqlite3.OperationalError as exc:  # the disk: full, read-only, failing
        from ..errors import LocalWriteError

        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        reason = "No space left on device" if code == 13 else str(exc)  # SQLITE_FULL
        raise LocalWriteError(
            f"cannot write the table that puts records in input order in {workdir.parent}: {reason}"
        ) from None


def _in_input_order(
    records: Iterable[dict[str, Any]], order: InputOrder, workdir: Path
) -> Iterator[dict[str, Any]]:
    from ..fingerprint import BlockHasher, fingerprint

    with closing(_OrderTable(workdir)) as table:
        hasher = BlockHasher()
        lines = 0

        def numbered() -> Iterator[tuple[int, str | None]]:
            nonlocal lines
            with open(order.path, "rb") as fh:
                for n, line in enumerate(fh):
                    hasher.feed(line)
                    lines = n + 1
                    yield n, _custom_id(line)

        table.add_ids(numbered())
        if order.fingerprint is not None and fingerprint(hasher.finish()) != order.fingerprint:
            from ..errors import InputChanged

            raise InputChanged(
                f"{order.path} changed after {order.owner} checked it (another fingerprint): "
                "the order it gives is not the checked input's; nothing was written",
                hint="put back the file it was made from (or give it with --file FILE), "
                "or leave out --input-order for the service's order",
            )
        extra = 0
        for block in _blocks(records):
            ids = [_text_id(r) for r in block]
            placed = []
            for record, n in zip(block, table.place_by_id(ids), strict=True):
                if n is None:
                    n = lines + extra
                    extra += 1
                placed.append((n, record))
            table.put(placed)
        table.done()
        for _n, record in table.read():
            yield record


def _custom_id(line: bytes) -> str | None:
    line = line.strip()
    if not line:
        return None
    try:
        value = _orjson.loads(line)
    except ValueError:
        return None
    custom_id = value.get("custom_id") if isinstance(value, dict) else None
    return custom_id if isinstance(custom_id, str) else None
