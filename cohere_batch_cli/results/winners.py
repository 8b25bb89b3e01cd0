"""The retries' winners of a merge: one record per ``custom_id``, latest success else latest failure.

A merge (:mod:`.merge`) reads every retry's records first, keeps for each id
the one that wins, then streams the original and asks, a block at a time,
which of its ids a retry answered. Two stores keep the winners, with one
interface, so memory stays bounded however many records were sent again:

- :class:`MemoryWinners`, up to ``MEMORY_WINNERS`` ids: the records appended
  to a flat scratch file (read back with one ``pread`` each), and an
  open-addressing table of their ids' 64-bit hashes in flat arrays, about
  40 bytes an id. Asking for an id that was never sent again (most of the
  original's) costs one probe of an array, and a hit one read of the file;
- :class:`TableWinners`, past that bound: a scratch SQLite table, one row per
  id, behind a Bloom filter of the ids (the store every merge used before,
  whose B-tree pages outgrew their cache at 100,000 ids: docs/performance.md, P7b).

A store full of winners spills into the table on its own (:meth:`MemoryWinners.add`
returns the store to use from then on). Both keep which winners were placed
among the original's records, a bit per winner, and give back the others in
the order they came.
"""

from __future__ import annotations

import json
import marshal
import os
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson as _orjson

if TYPE_CHECKING:
    import sqlite3

BLOCK = 2000
"""Rows written to, and ids looked up in, the table at once."""
MEMORY_WINNERS = 1 << 17
"""Winners kept in memory (about 40 bytes each, 5 MiB at most) before they spill into a table."""
_CACHE_KIB = 2048
"""Page cache of the table: lookups land all over it, and the OS's file cache holds the rest."""
_FILTER_BITS_PER_ID = 64
"""Bits of :class:`_IdFilter` per row of the table: about 1.5 % of the ids not in it are looked up."""
_FILTER_MAX_BITS = 1 << 25
"""4 MiB: memory stays flat however many records were sent again."""

Found = tuple[int, int, int, dict[str, Any]]
"""A record of a block a retry answered: its position in the block, and the winner's attempt, ok and record."""


class Winners(Protocol):
    """The retries' winners, written once (``add``, then ``finish``), then read in the original's order."""

    def add(self, custom_id: str, number: int, ok: int, record: dict[str, Any]) -> Winners:
        """Note attempt ``number``'s ``record``: the store to use from now on (this one, or its spill)."""
        ...

    def finish(self) -> None:
        """Every retry was added: the store is read from now on."""
        ...

    def __len__(self) -> int: ...

    def found(self, block: list[dict[str, Any]]) -> list[Found]:
        """The records of ``block`` a retry answered, each winner marked as placed.

        Every record of ``block`` is given ``attempt`` 1 on the way: one pass
        over the block, the merge's hottest loop, rather than two.
        """
        ...

    def unplaced(self) -> Iterator[tuple[int, bytes]]:
        """``(attempt, bytes)`` of the winners no block held, in the order they came (:func:`decode` reads them)."""
        ...

    def close(self) -> None: ...


class MemoryWinners:
    """Winners in flat arrays and a scratch file: an open-addressing table of ids' hashes in memory.

    Entry ``e`` is the ``e``-th id that came: its hash, where its record is in
    the file, how long it is, and ``attempt << 1 | ok``. ``_slots`` holds
    ``e + 1`` at the place its hash leads to (0: empty), kept at most half
    full, so an id not there is known after a probe or two. Two ids of one hash
    (one in 2**64 for a pair) are told apart by the id in the record.
    """

    def __init__(self, workdir: Path, bound: int | None = None, expected: int = 0) -> None:
        """``expected``: how many records the retries hold, when their parts say (the table is sized once)."""
        self._workdir = workdir
        self._bound = bound or MEMORY_WINNERS
        self._file = open(workdir / "winners.bin", "w+b", buffering=1 << 20)  # noqa: SIM115 - closed by close()
        self._end = 0
        self._hashes = array("q")
        self._offsets = array("q")
        self._sizes = array("I")
        self._state = array("I")
        size = 1 << 12
        while size < 2 * min(expected, self._bound):
            size <<= 1
        self._slots = array("I", bytes(4 * size))
        self._mask = size - 1
        self._placed = bytearray()

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, custom_id: str, number: int, ok: int, record: dict[str, Any]) -> Winners:
        h = hash(custom_id)
        slots, hashes, mask = self._slots, self._hashes, self._mask
        i = h & mask
        s = slots[i]
        while s:
            e = s - 1
            if hashes[e] == h and self._id_of(e) == custom_id:
                if ok or not self._state[e] & 1:  # a success wins, else the latest failure
                    self._offsets[e], self._sizes[e] = self._write(record)
                    self._state[e] = number << 1 | ok
                return self
            i = (i + 1) & mask
            s = slots[i]
        if len(hashes) >= self._bound:
            return self._spill().add(custom_id, number, ok, record)
        offset, size = self._write(record)
        hashes.append(h)
        self._offsets.append(offset)
        self._sizes.append(size)
        self._state.append(number << 1 | ok)
        slots[i] = len(hashes)
        if len(hashes) * 2 > len(slots):
            self._grow()
        return self

    def finish(self) -> None:
        """Every retry was added: the file is flushed for reading, and the placed bits are made."""
        self._file.flush()
        self._placed = bytearray(len(self._hashes) // 8 + 1)

    def found(self, block: list[dict[str, Any]]) -> list[Found]:
        slots, hashes, mask = self._slots, self._hashes, self._mask
        placed, state = self._placed, self._state
        out: list[Found] = []
        for position, record in enumerate(block):
            record["attempt"] = 1
            custom_id = record.get("custom_id")
            if isinstance(custom_id, str):
                h = hash(custom_id)
                i = h & mask
                while s := slots[i]:  # the entry of this id: the first of its hash, almost always
                    e = s - 1
                    if hashes[e] == h:
                        winner = decode(self._read(e))
                        if winner.get("custom_id") == custom_id:
                            placed[e >> 3] |= 1 << (e & 7)
                            out.append((position, state[e] >> 1, state[e] & 1, winner))
                            break
                    i = (i + 1) & mask
        return out

    def unplaced(self) -> Iterator[tuple[int, bytes]]:
        placed, state = self._placed, self._state
        for e in range(len(self._hashes)):
            if not placed[e >> 3] >> (e & 7) & 1:
                yield state[e] >> 1, self._read(e)

    def close(self) -> None:
        self._file.close()

    def _write(self, record: dict[str, Any]) -> tuple[int, int]:
        blob = _encode(record)
        offset = self._end
        self._file.write(blob)
        self._end += len(blob)
        return offset, len(blob)

    def _read(self, e: int) -> bytes:
        return os.pread(self._file.fileno(), self._sizes[e], self._offsets[e])

    def _id_of(self, e: int) -> object:
        """The id of entry ``e``, read back from its record (only for an id whose hash came before)."""
        self._file.flush()
        custom_id = decode(self._read(e)).get("custom_id")
        return custom_id if isinstance(custom_id, str) else None

    def _grow(self) -> None:
        size = len(self._slots) * 2
        slots = array("I", bytes(4 * size))
        mask = size - 1
        for e, h in enumerate(self._hashes):
            i = h & mask
            while slots[i]:
                i = (i + 1) & mask
            slots[i] = e + 1
        self._slots, self._mask = slots, mask

    def _spill(self) -> TableWinners:
        """Every winner so far into a table, in the order they came; this store is closed."""
        self._file.flush()
        table = TableWinners(self._workdir)
        for e in range(len(self._hashes)):
            blob = self._read(e)
            custom_id = decode(blob).get("custom_id")
            if not isinstance(
                custom_id, str
            ):  # never looked up: an id of its own, in the table too
                custom_id = f"\x00spilled:{e}"
            table.put(custom_id, self._state[e] >> 1, self._state[e] & 1, bytearray(blob))
        self.close()
        return table


class TableWinners:
    """Winners in a scratch SQLite table, one row per id, behind a Bloom filter of the ids.

    Rows are written ``BLOCK`` at a time, each later record replacing an
    earlier one of its id unless that one succeeded and the later one failed;
    a block of the original asks the table only for the ids the filter lets
    through, in one query. Which winners were placed is a bit per row (its
    rowid), so the table is only ever read after it is written.
    """

    _UPSERT = (
        "INSERT INTO best (id, attempt, ok, record) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
        " attempt = excluded.attempt, ok = excluded.ok, record = excluded.record"
        " WHERE excluded.ok = 1 OR best.ok = 0"
    )

    def __init__(self, workdir: Path) -> None:
        from ..state.spill import connect_scratch  # sqlite3 only once winners spill

        self.db = connect_scratch(workdir / "merge.sqlite3", cache_kib=_CACHE_KIB)
        self.db.execute(
            "CREATE TABLE best (id TEXT NOT NULL UNIQUE, attempt INTEGER NOT NULL, ok INTEGER NOT NULL,"
            " record BLOB NOT NULL)"
        )
        self.db.execute("BEGIN")
        self._rows: list[tuple[str, int, int, bytearray]] = []
        self._filter: _IdFilter | None = None
        self._placed = bytearray()
        self._count = 0
        self._rowids = 0

    def __len__(self) -> int:
        return self._count

    def add(self, custom_id: str, number: int, ok: int, record: dict[str, Any]) -> Winners:
        self.put(custom_id, number, ok, _encode(record))
        return self

    def put(self, custom_id: str, number: int, ok: int, blob: bytearray) -> None:
        self._rows.append((custom_id, number, ok, blob))
        if len(self._rows) >= BLOCK:
            self.db.executemany(self._UPSERT, self._rows)
            self._rows = []

    def finish(self) -> None:
        self.db.executemany(self._UPSERT, self._rows)
        self._rows = []
        self.db.execute("COMMIT")
        self._count = self.db.execute("SELECT count(*) FROM best").fetchone()[0]
        self._rowids = self.db.execute("SELECT max(rowid) FROM best").fetchone()[0] or 0
        self._placed = bytearray(self._rowids // 8 + 1)
        self._filter = _IdFilter.of_table(self.db, self._count)

    def found(self, block: list[dict[str, Any]]) -> list[Found]:
        assert self._filter is not None, "found() before finish()"
        wanted = self._filter.candidates(block)
        if not wanted:
            return []
        keys = [block[k]["custom_id"] for k in wanted]
        placed = self._placed
        out = []
        for key, rowid, attempt, ok, blob in self.db.execute(
            "SELECT j.key, b.rowid, b.attempt, b.ok, b.record FROM json_each(?) AS j"
            " JOIN best AS b ON b.id = j.value",
            (_orjson.dumps(keys),),
        ):
            placed[rowid >> 3] |= 1 << (rowid & 7)
            out.append((wanted[key], attempt, ok, decode(blob)))
        return out

    def unplaced(self) -> Iterator[tuple[int, bytes]]:
        for chunk in _unplaced(self._rowids, self._placed):
            yield from self.db.execute(
                "SELECT b.attempt, b.record FROM json_each(?) AS j JOIN best AS b ON b.rowid = j.value"
                " ORDER BY b.rowid",
                (_orjson.dumps(chunk),),
            )

    def close(self) -> None:
        self.db.close()


def _unplaced(rows: int, placed: bytearray) -> Iterator[list[int]]:
    """The rowids of the table not placed among the original's records, a block at a time, in order."""
    chunk = []
    for rowid in range(1, rows + 1):
        if not placed[rowid >> 3] >> (rowid & 7) & 1:
            chunk.append(rowid)
            if len(chunk) >= BLOCK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


class _IdFilter:
    """Which ``custom_id``s may be in the table: a Bloom filter of one hash, in a few bits per id.

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
    def of_table(cls, db: sqlite3.Connection, count: int) -> _IdFilter:
        made = cls(count)
        bits, mask = made._bits, made._mask
        for (custom_id,) in db.execute("SELECT id FROM best"):
            h = hash(custom_id) & mask
            bits[h >> 3] |= 1 << (h & 7)
        return made

    def candidates(self, block: list[dict[str, Any]]) -> list[int]:
        """The positions in ``block`` of the records whose ``custom_id`` may be in the table."""
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


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _encode(record: dict[str, Any]) -> bytearray:
    """A decoded Avro record as bytes, to keep until it is written.

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


def decode(blob: bytes) -> dict[str, Any]:
    """A record kept by :func:`_encode`, as it came."""
    value = marshal.loads(blob)
    if isinstance(value, str):  # the JSON text of a record that was not plain
        value = json.loads(value)
    return value if isinstance(value, dict) else {"value": value}
