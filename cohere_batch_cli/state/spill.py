"""Scratch SQLite databases: room on disk for work too large to hold in memory.

A retry of ten million records compares ten million ids, and the check of a
file of ten million records looks for a repeated ``custom_id`` among as many
(:class:`SeenIds`); a set of them in memory would take a gigabyte. A scratch database holds them on disk with a
bounded page cache instead, and is deleted when the work is done (or, after
a kill, with the work folder it was made in). It is tuned for speed over
durability: nothing in it must survive a crash.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

CACHE_KIB = 8 * 1024
"""Page cache of a scratch database: the hot pages of its indexes; the rest is the OS's file cache."""
READER_CACHE_KIB = 4 * 1024
"""Page cache of a worker's read-only connection: lookups land all over the index anyway."""


@contextmanager
def scratch_database(folder: Path, name: str) -> Iterator[tuple[sqlite3.Connection, Path]]:
    """A new database ``folder/NAME.sqlite3`` and a connection to it; both gone on exit."""
    path = folder / f"{name}.sqlite3"
    path.unlink(missing_ok=True)
    db = connect_scratch(path)
    try:
        yield db, path
    finally:
        db.close()
        with suppress(OSError):
            path.unlink()


def connect_scratch(path: Path, cache_kib: int = CACHE_KIB) -> sqlite3.Connection:
    """A connection to a scratch database at ``path``, tuned for speed: no journal, no sync.

    ``cache_kib`` bounds the page cache, the part of the database held in
    memory; the rest is read back from the OS's file cache when needed.
    """
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in (
            "journal_mode = OFF",
            "synchronous = OFF",
            f"cache_size = -{int(cache_kib)}",
            "temp_store = FILE",
        ):
            db.execute(f"PRAGMA {pragma}")
    except BaseException:
        db.close()
        raise
    return db


def open_readonly(path: Path) -> sqlite3.Connection:
    """Another connection to a scratch database, for reading only (a worker process's)."""
    db = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
    db.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
    return db


MEMORY_IDS = 200_000
"""custom_ids a check holds in memory (a dict of them, about 25 MB; once spilled, the pages being
filled) before it writes them to disk."""
_BUCKETS = 256


class SeenIds:
    """The custom_ids of a file, each as its 64-bit hash with the line it was first on, in flat memory.

    Up to ``bound`` ids live in a dict, and a repeat is known at once
    (:meth:`add` answers the first line). Past it, they are spilled: spread by
    their hash over 256 buckets, every bucket written as a page each time
    ``bound`` ids wait, into a scratch database in a folder of its own; after
    the last :meth:`add`, :meth:`spilled_repeats` reads one bucket at a time (a
    256th of the ids) to find the repeats. Ten million ids cost what ``bound``
    ids cost, not a gigabyte of set. Close it (a context manager) to delete
    the folder.
    """

    def __init__(self, bound: int | None = None) -> None:
        self._first: dict[int, int] | None = {}
        self._bound = bound or MEMORY_IDS
        self._hashes: list[array[int]] = []
        self._lines: list[array[int]] = []
        self._waiting = 0
        self._pages = 0
        self._cleanup = ExitStack()
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> SeenIds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db = None
        self._cleanup.close()

    def add(self, digest: int, line: int) -> int | None:
        """Note ``digest`` on ``line``; the line it was first on if that is known now, else None."""
        first = self._first
        if first is not None:
            seen = first.setdefault(digest, line)
            if seen != line:
                return seen
            if len(first) >= self._bound:
                self._spill(first)
            return None
        bucket = digest >> 56
        self._hashes[bucket].append(digest)
        self._lines[bucket].append(line)
        self._waiting += 1
        if self._waiting >= self._bound:
            self._write()
        return None

    def spilled_repeats(self) -> Iterator[tuple[int, int]]:
        """``(line, first line)`` of each repeat among the spilled ids (none while they fit in memory)."""
        db = self._db
        if db is None:
            return
        self._write()
        db.execute("CREATE INDEX pages_by_bucket ON pages (bucket, page)")
        for bucket in range(_BUCKETS):
            first: dict[int, int] = {}
            for blob_hashes, blob_lines in db.execute(
                "SELECT hashes, lines FROM pages WHERE bucket = ? ORDER BY page", (bucket,)
            ):
                hashes, lines = array("Q"), array("Q")
                hashes.frombytes(blob_hashes)
                lines.frombytes(blob_lines)
                for digest, line in zip(hashes, lines, strict=True):
                    seen = first.setdefault(digest, line)
                    if seen != line:
                        yield line, seen

    def _spill(self, first: dict[int, int]) -> None:
        import tempfile

        folder = Path(
            self._cleanup.enter_context(tempfile.TemporaryDirectory(prefix="cbatch-ids-"))
        )
        self._db, _ = self._cleanup.enter_context(scratch_database(folder, "ids"))
        self._db.execute(
            "CREATE TABLE pages (bucket INTEGER NOT NULL, page INTEGER NOT NULL,"
            " hashes BLOB NOT NULL, lines BLOB NOT NULL)"
        )
        self._hashes = [array("Q") for _ in range(_BUCKETS)]
        self._lines = [array("Q") for _ in range(_BUCKETS)]
        self._first = None
        for digest, line in first.items():  # in the order they came: the first line first
            self.add(digest, line)
        first.clear()

    def _write(self) -> None:
        """Every bucket's waiting ids as one page each, in one transaction."""
        assert self._db is not None
        rows = []
        for bucket in range(_BUCKETS):
            hashes, lines = self._hashes[bucket], self._lines[bucket]
            if hashes:
                self._pages += 1
                rows.append((bucket, self._pages, hashes.tobytes(), lines.tobytes()))
                self._hashes[bucket], self._lines[bucket] = array("Q"), array("Q")
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO pages (bucket, page, hashes, lines) VALUES (?, ?, ?, ?)", rows
        )
        self._db.execute("COMMIT")
        self._waiting = 0
