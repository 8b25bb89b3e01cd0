"""Scratch SQLite databases: room on disk for work too large to hold in memory.

A retry of ten million records compares ten million ids; a set of them in
memory would take a gigabyte. A scratch database holds them on disk with a
bounded page cache instead, and is deleted when the work is done (or, after
a kill, with the work folder it was made in). It is tuned for speed over
durability: nothing in it must survive a crash.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in (
            "journal_mode = OFF",
            "synchronous = OFF",
            f"cache_size = -{CACHE_KIB}",
            "temp_store = FILE",
        ):
            db.execute(f"PRAGMA {pragma}")
        yield db, path
    finally:
        db.close()
        with suppress(OSError):
            path.unlink()


def open_readonly(path: Path) -> sqlite3.Connection:
    """Another connection to a scratch database, for reading only (a worker process's)."""
    db = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
    db.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
    return db
