"""The answer cache: successful answers kept on this machine, so a request is never paid for twice.

A table run (``create --from``) looks each distinct request up here before
sending it; ``results`` of a table run puts every answer that succeeded (and,
with a schema, fits it) in. An entry is keyed by the request's key
(:func:`request_key`: BLAKE2b-128 of the model and the canonical JSON of the
body), so a changed prompt, option, system message, schema or model is a new
request. Failed and invalid answers are never kept: a retry must send them.

It is a cache, not state: one SQLite file of its own (``answers.sqlite3`` in
the user cache folder, or ``CBATCH_CACHE_DIR``), bounded in size
(:data:`DEFAULT_MAX_BYTES`, ``CBATCH_CACHE_MAX_BYTES``) by evicting the
entries used longest ago; deleting it is always safe (the next run sends what
it would have found). What it holds cannot be fetched from the API again:
answers are in output datasets that expire. A cache that cannot be opened
(damaged, written by a newer cbatch, a folder that cannot be written) is
passed over with a warning by a run: nothing depends on it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..config import ENV_CACHE_DIR, ENV_CACHE_MAX_BYTES

FILE_NAME = "answers.sqlite3"
DEFAULT_MAX_BYTES = 1_000_000_000
"""1 GB (decimal, as every size cbatch reads): about a million chat answers of a few sentences."""
FORMAT = 1
"""The file's layout (``PRAGMA user_version``); a file of a newer layout is passed over, never misread."""
ENTRY_OVERHEAD = 64
"""Bytes counted for an entry beside its body: its key, model name, counts and index entries, roughly."""
USE_BYTES = 32
"""Bytes counted for a noted use (a hit waiting in the ``uses`` log), so the log is bounded too."""
EVICT_TO = 0.9
"""An eviction brings the cache to this share of its bound, so the next puts do not evict again at once."""
_IN = 500
"""Keys per ``IN (...)`` statement: well under SQLite's parameter limit on every version."""
_PAIRS = 400
"""(key, row) pairs per copy statement (:meth:`AnswerCache.take_into`): two parameters each."""
ATTACHED = "answer_cache"
"""The schema name the cache's file is attached under to a run's map (:meth:`AnswerCache.attach`)."""
BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 8 * 1024
"""SQLite's own page cache of the connection, as a scratch database's."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key BLOB PRIMARY KEY,
    model TEXT NOT NULL,
    body BLOB NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_used REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS answers_by_use ON answers (last_used);
CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS uses (key BLOB NOT NULL, at REAL NOT NULL);
"""
_TOTALS = ("bytes", "hits", "saved_input_tokens", "saved_output_tokens")


def request_key(model: str, canonical_body: bytes) -> bytes:
    """The key of one request: BLAKE2b-128 of the model's name, a NUL, and the body's canonical JSON."""
    return KeyMaker(model)(canonical_body)


class KeyMaker:
    """:func:`request_key` for one model, its name hashed once: a table run makes a key a row."""

    def __init__(self, model: str) -> None:
        self._base = hashlib.blake2b(model.encode("utf-8") + b"\0", digest_size=16)

    def __call__(self, canonical_body: bytes) -> bytes:
        hasher = self._base.copy()
        hasher.update(canonical_body)
        return hasher.digest()


def canonical(body: Any) -> bytes:
    """A body as canonical JSON: keys sorted, no spaces, UTF-8; the same request always the same bytes."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


class CanonicalFrame:
    """:func:`canonical` of ``shape(text)`` for many texts, when the text is all that changes.

    A table run's bodies differ in one string (the rendered prompt, the text
    to embed); the rest (roles, a system prompt, options, a schema) is the
    same for every row. The frame is the canonical JSON of one body with a
    marker where the text goes, cut around the marker once; a row's body is
    then the two halves around the row's text as JSON, with no body built
    and no keys sorted: the same bytes :func:`canonical` writes (one
    serializer quotes the text either way). When the marker cannot be cut
    out once, each body is made whole.
    """

    _MARK = "\x00cbatch: the text\x00"

    def __init__(self, shape: Callable[[str], Any]) -> None:
        self._shape = shape
        whole, mark = canonical(shape(self._MARK)), orjson.dumps(self._MARK)
        halves = whole.split(mark)
        self._halves = (halves[0], halves[1]) if len(halves) == 2 else None

    def __call__(self, text: str) -> bytes:
        """``canonical(shape(text))``."""
        if self._halves is None:
            return canonical(self._shape(text))
        head, tail = self._halves
        return head + orjson.dumps(text) + tail


def cache_dir() -> tuple[Path, str]:
    """Where the cache lives, and why: ``CBATCH_CACHE_DIR``, else the user cache folder."""
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        return Path(override).expanduser(), f"environment {ENV_CACHE_DIR}"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cbatch", appauthor=False)), "default"


def max_bytes() -> int:
    """The cache's bound: ``CBATCH_CACHE_MAX_BYTES`` (``500MB``, ``2GB``), else :data:`DEFAULT_MAX_BYTES`."""
    given = os.environ.get(ENV_CACHE_MAX_BYTES)
    if not given:
        return DEFAULT_MAX_BYTES
    from ..errors import ConfigError
    from ..units import parse_size

    try:
        return parse_size(given)
    except ValueError as exc:
        raise ConfigError(f"{ENV_CACHE_MAX_BYTES}={given}: {exc}") from None


class CacheUnusable(Exception):
    """The cache file cannot be used (damaged, newer, not writable); the message says which and where."""


@dataclass(frozen=True)
class Hit:
    """A request found in the cache, with the tokens its answer was billed when it was first asked."""

    key: bytes
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Entry:
    """An answer to keep: its request's key and model, the reply's body (JSON text), its billed tokens."""

    key: bytes
    model: str
    body: bytes
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Stats:
    """What ``cbatch cache stats`` shows."""

    path: Path
    entries: int
    bytes: int
    """The entries' bodies and their overhead, what the bound is held against."""
    file_bytes: int
    """The file on disk (with its write-ahead log): freed pages are reused, not returned."""
    max_bytes: int
    hits: int
    """Requests answered from the cache rather than sent, since it was made."""
    saved_input_tokens: int
    saved_output_tokens: int


class AnswerCache:
    """One connection to the cache file; a context manager that closes it."""

    def __init__(self, path: Path, bound: int) -> None:
        self.path = path
        self.max_bytes = bound
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except (OSError, sqlite3.Error) as exc:
            raise CacheUnusable(f"the answer cache {path} cannot be opened: {exc}") from None
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > FORMAT:
                raise CacheUnusable(
                    f"the answer cache {path} was written by a newer cbatch (format {version})"
                )
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            if version < FORMAT:
                self.db.executescript(_SCHEMA)
                self.db.execute(f"PRAGMA user_version = {FORMAT}")
        except sqlite3.Error as exc:
            self.db.close()
            raise CacheUnusable(f"the answer cache {path} cannot be used: {exc}") from None
        except BaseException:
            self.db.close()
            raise

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- a run's look-ups ------------------------------------------------------------

    def holds_answers(self) -> bool:
        """Whether the cache holds any answer: an empty one answers no look-up, so a run makes none."""
        try:
            return self.db.execute("SELECT 1 FROM answers LIMIT 1").fetchone() is not None
        except sqlite3.Error as exc:
            raise CacheUnusable(f"the answer cache {self.path} cannot be read: {exc}") from None

    def attach(self, db: sqlite3.Connection) -> None:
        """Attach the cache's file to ``db`` as :data:`ATTACHED` (outside a transaction), for :meth:`take_into`."""
        try:
            db.execute(f"ATTACH DATABASE ? AS {ATTACHED}", (str(self.path),))
        except sqlite3.Error as exc:
            raise CacheUnusable(f"the answer cache {self.path} cannot be read: {exc}") from None

    def take_into(
        self,
        db: sqlite3.Connection,
        wanted: Sequence[tuple[bytes, int]],
        table: str,
        now: float | None = None,
    ) -> list[Hit]:
        """Copy the answers the cache holds for ``wanted`` (key, row) into ``db``'s ``table``; the hits.

        ``table`` has the columns ``(row, body, input_tokens, output_tokens)``
        and rows only appended to it (no key: an ``INTEGER PRIMARY KEY`` of
        rows in random order tripled the copy's cost; index it once filled).
        ``db`` has the cache attached (:meth:`attach`): the answers are copied
        by one ``INSERT ... SELECT`` a chunk, inside ``db``'s own transaction,
        so a run keeps the answers it decided not to ask for (the cache may be
        cleared or evict them before its results) without a body passing
        through Python. The copies are whole or none: a failure takes back
        those made. Each hit is noted used now, as :meth:`take` notes it.
        """
        key_of = {row: key for key, row in wanted}
        before = db.execute(f"SELECT coalesce(max(rowid), 0) FROM main.{table}").fetchone()[0]
        try:
            for start in range(0, len(wanted), _PAIRS):
                chunk = wanted[start : start + _PAIRS]
                pairs = ",".join("(?, ?)" for _ in chunk)
                db.execute(
                    f"INSERT INTO main.{table} (row, body, input_tokens, output_tokens)"
                    " SELECT w.column2, a.body, a.input_tokens, a.output_tokens"
                    f" FROM (VALUES {pairs}) AS w JOIN {ATTACHED}.answers AS a ON a.key = w.column1",
                    [value for pair in chunk for value in pair],
                )
            hits = [
                Hit(key_of[row], i, o)
                for row, i, o in db.execute(
                    f"SELECT row, input_tokens, output_tokens FROM main.{table} WHERE rowid > ?",
                    (before,),
                )
            ]
            self._note_used([h.key for h in hits], now)
        except sqlite3.Error as exc:
            db.execute(f"DELETE FROM main.{table} WHERE rowid > ?", (before,))
            raise CacheUnusable(f"the answer cache {self.path} cannot be read: {exc}") from None
        return hits

    def take(self, keys: Sequence[bytes], now: float | None = None) -> list[Hit]:
        """The requests of ``keys`` the cache answers (their tokens, not their bodies), each noted as used now."""
        hits: list[Hit] = []
        try:
            for start in range(0, len(keys), _IN):
                chunk = keys[start : start + _IN]
                marks = ",".join("?" * len(chunk))
                hits.extend(
                    Hit(k, i, o)
                    for k, i, o in self.db.execute(
                        "SELECT key, input_tokens, output_tokens FROM answers"
                        f" WHERE key IN ({marks})",
                        chunk,
                    )
                )
            self._note_used([h.key for h in hits], now)
        except sqlite3.Error as exc:
            raise CacheUnusable(f"the answer cache {self.path} cannot be read: {exc}") from None
        return hits

    def _note_used(self, keys: list[bytes], now: float | None) -> None:
        """Each of ``keys`` used now: its place in the LRU order.

        A use is appended to the ``uses`` log rather than written into its
        entry: an update moves the entry in the ``last_used`` index, five
        times the cost of the look-up itself. The log is folded into the
        entries before anything is evicted or pruned (:meth:`_fold`).
        """
        if not keys:
            return
        when = time.time() if now is None else now
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(
                "INSERT INTO uses (key, at) VALUES (?, ?)", [(k, when) for k in keys]
            )
            self._bump(bytes=len(keys) * USE_BYTES)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def count_saved(self, hits: int, input_tokens: int, output_tokens: int) -> None:
        """Add a run's hits and the tokens they saved to the totals ``cache stats`` shows."""
        self._add_totals(
            hits=hits, saved_input_tokens=input_tokens, saved_output_tokens=output_tokens
        )

    # -- keeping answers -------------------------------------------------------------

    def put(self, entries: Iterable[Entry], now: float | None = None) -> int:
        """Keep ``entries`` (an entry already kept is only marked used), then evict past the bound; how many are new."""
        when = time.time() if now is None else now
        added = 0
        grown = 0
        try:
            for chunk in _chunks(entries, _IN):
                marks = ",".join("?" * len(chunk))
                have = {
                    k
                    for (k,) in self.db.execute(
                        f"SELECT key FROM answers WHERE key IN ({marks})", [e.key for e in chunk]
                    )
                }
                new = {e.key: e for e in chunk if e.key not in have}  # one a key, whatever repeats
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    if have:
                        self.db.execute(
                            f"UPDATE answers SET last_used = ? WHERE key IN ({','.join('?' * len(have))})",
                            (when, *have),
                        )
                    rows = [
                        (e.key, e.model, e.body, e.input_tokens, e.output_tokens,
                         len(e.body) + ENTRY_OVERHEAD, when, when)
                        for e in new.values()
                    ]  # fmt: skip
                    self.db.executemany(
                        "INSERT INTO answers (key, model, body, input_tokens, output_tokens, size,"
                        " created_at, last_used) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (key) DO NOTHING",
                        rows,
                    )
                    size = sum(r[5] for r in rows)
                    self._bump(bytes=size)
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                added += len(rows)
                grown += size
            if grown:
                self.evict()
        except sqlite3.Error as exc:
            raise CacheUnusable(f"the answer cache {self.path} cannot be written: {exc}") from None
        return added

    def evict(self, bound: int | None = None) -> tuple[int, int]:
        """Past ``bound`` (default the cache's), drop the entries used longest ago down to 90 % of it."""
        limit = self.max_bytes if bound is None else bound
        total = self.totals()["bytes"]
        if total <= limit:
            return 0, 0
        total = self._fold()
        if total <= limit:
            return 0, 0
        return self._drop_oldest(total - int(limit * EVICT_TO))

    # -- cbatch cache ----------------------------------------------------------------

    def stats(self) -> Stats:
        totals = self.totals()
        entries = self.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        on_disk = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return Stats(
            self.path, entries, totals["bytes"], on_disk, self.max_bytes, totals["hits"],
            totals["saved_input_tokens"], totals["saved_output_tokens"],
        )  # fmt: skip

    def prune(self, older_than: float | None, to_bytes: int | None) -> tuple[int, int]:
        """Drop entries last used before ``older_than`` (a time), then the oldest down to ``to_bytes``."""
        removed = freed = 0
        self._fold()
        if older_than is not None:
            while True:
                rows = self.db.execute(
                    "SELECT key, size FROM answers WHERE last_used < ? ORDER BY last_used LIMIT 1000",
                    (older_than,),
                ).fetchall()
                if not rows:
                    break
                n, b = self._delete(rows)
                removed, freed = removed + n, freed + b
        if to_bytes is not None:
            total = self.totals()["bytes"]
            if total > to_bytes:
                n, b = self._drop_oldest(total - to_bytes)
                removed, freed = removed + n, freed + b
        return removed, freed

    def totals(self) -> dict[str, int]:
        found = dict(self.db.execute("SELECT name, value FROM totals"))
        return {name: int(found.get(name, 0)) for name in _TOTALS}

    def _fold(self) -> int:
        """The ``uses`` log written into each entry's ``last_used``, and emptied; the bytes then counted."""
        waiting = self.db.execute("SELECT COUNT(*) FROM uses").fetchone()[0]
        if waiting:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute(
                    "UPDATE answers SET last_used = used.at FROM"
                    " (SELECT key, MAX(at) AS at FROM uses GROUP BY key) AS used"
                    " WHERE answers.key = used.key AND used.at > answers.last_used"
                )
                self.db.execute("DELETE FROM uses")
                self._bump(bytes=-waiting * USE_BYTES)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return self.totals()["bytes"]

    def _drop_oldest(self, amount: int) -> tuple[int, int]:
        removed = freed = 0
        while freed < amount:
            rows = self.db.execute(
                "SELECT key, size FROM answers ORDER BY last_used LIMIT 1000"
            ).fetchall()
            if not rows:
                break
            picked = []
            for key, size in rows:
                picked.append((key, size))
                freed += size
                if freed >= amount:
                    break
            n, _ = self._delete(picked)
            removed += n
        return removed, freed

    def _delete(self, rows: list[tuple[bytes, int]]) -> tuple[int, int]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("DELETE FROM answers WHERE key = ?", [(k,) for k, _ in rows])
            size = sum(s for _, s in rows)
            self._bump(bytes=-size)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(rows), size

    def _add_totals(self, **amounts: int) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self._bump(**amounts)
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise CacheUnusable(f"the answer cache {self.path} cannot be written: {exc}") from None

    def _bump(self, **amounts: int) -> None:
        self.db.executemany(
            "INSERT INTO totals (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            [(name, amount) for name, amount in amounts.items() if amount],
        )


def open_cache(path: Path | None = None, bound: int | None = None) -> AnswerCache:
    """The cache at ``path`` (default :func:`cache_dir`'s), made if missing; :class:`CacheUnusable` if it cannot be."""
    where = path or cache_dir()[0] / FILE_NAME
    return AnswerCache(where, max_bytes() if bound is None else bound)


def remove_cache(path: Path | None = None) -> bool:
    """Delete the cache file (and its write-ahead log): whether there was one."""
    where = path or cache_dir()[0] / FILE_NAME
    existed = where.exists()
    for name in (where, Path(f"{where}-wal"), Path(f"{where}-shm")):
        name.unlink(missing_ok=True)
    return existed


def _chunks(items: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
