"""Durable state of the sandbox: one SQLite database plus dataset files under ``data_dir``.

Everything a restarted sandbox needs lives here, so a sandbox started again on the
same directory keeps every dataset and batch and resumes batches in progress. A dataset
past its ``expires_us`` is gone at once for every query (the worker deletes its row and
files soon after); a batch whose input or output dataset is gone reads that id as ``""``,
as old batches on the real service do. One
connection is shared by the HTTP thread and the worker behind a lock: every statement
is short (files are read and written outside the lock), and one connection avoids
per-thread connections that would have to be found and closed on shutdown.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .clock import new_uuid, now_us

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    input_dataset_id TEXT NOT NULL,
    output_dataset_id TEXT,
    model TEXT NOT NULL,
    dataset_type TEXT NOT NULL,
    num_records INTEGER NOT NULL,
    processed INTEGER NOT NULL DEFAULT 0,
    num_successful INTEGER NOT NULL DEFAULT 0,
    num_failed INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    status_reason TEXT,
    queued_until_us INTEGER NOT NULL,
    started_us INTEGER,
    cancel_us INTEGER
);
CREATE INDEX IF NOT EXISTS batches_created ON batches (created_us, seq);
CREATE INDEX IF NOT EXISTS batches_updated ON batches (updated_us, seq);
CREATE INDEX IF NOT EXISTS batches_status_due ON batches (status, queued_until_us);
CREATE TABLE IF NOT EXISTS datasets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    dataset_type TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    validation_status TEXT NOT NULL,
    validation_error TEXT,
    validation_warnings TEXT NOT NULL DEFAULT '[]',
    schema TEXT,
    required_fields TEXT NOT NULL DEFAULT '[]',
    preserve_fields TEXT NOT NULL DEFAULT '[]',
    parts TEXT NOT NULL DEFAULT '[]',
    size_bytes INTEGER NOT NULL DEFAULT 0,
    num_rows INTEGER NOT NULL DEFAULT 0,
    ready_us INTEGER NOT NULL,
    flags TEXT NOT NULL DEFAULT '{}',
    kind TEXT NOT NULL,
    expires_us INTEGER NOT NULL DEFAULT 9223372036854775807
);
CREATE INDEX IF NOT EXISTS datasets_created ON datasets (created_us, seq);
CREATE INDEX IF NOT EXISTS datasets_status_due ON datasets (validation_status, ready_us);
"""
_MIGRATIONS = (
    # (table, column, definition): columns added since the first sandbox release
    ("datasets", "expires_us", "INTEGER NOT NULL DEFAULT 9223372036854775807"),
)
_LIVE = (
    "EXISTS (SELECT 1 FROM datasets d WHERE d.id = b.input_dataset_id AND d.expires_us > :now) AS input_live, "
    "EXISTS (SELECT 1 FROM datasets d WHERE d.id = b.output_dataset_id AND d.expires_us > :now) AS output_live"
)


class Store:
    """The database and the dataset directory of one sandbox."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "datasets").mkdir(exist_ok=True)
        (self.data_dir / "uploads").mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.data_dir / "sandbox.db", check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._migrate()
        self.org_id = self._meta("org_id", new_uuid)
        self.creator_id = self._meta("creator_id", new_uuid)
        self.secret = self._meta("secret", lambda: secrets.token_hex(32))
        self.seed = self._meta("seed", lambda: secrets.randbits(48))
        """The decisions' seed when the settings give none: one per data directory."""

    # -- plumbing ---------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, inside one transaction."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        """Add the columns a data directory made by an older sandbox lacks."""
        with self.transaction() as conn:
            for table, column, definition in _MIGRATIONS:
                have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            conn.execute("CREATE INDEX IF NOT EXISTS datasets_expires ON datasets (expires_us)")

    def _query(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            args = params if isinstance(params, dict) else tuple(params)
            return self._conn.execute(sql, args).fetchall()

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).rowcount

    def _meta(self, key: str, make: Any) -> str:
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row:
                return str(row[0])
            value = str(make())
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value

    def dataset_dir(self, dataset_id: str) -> Path:
        return self.data_dir / "datasets" / dataset_id

    def batch_dir(self, batch_id: str) -> Path:
        """Where a running batch keeps its plan (removed once its output is written)."""
        return self.data_dir / "batches" / batch_id

    # -- batches ------------------------------------------------------------------

    def insert_batch(self, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self._execute(f"INSERT INTO batches ({cols}) VALUES ({marks})", row.values())

    def get_batch(self, batch_id: str) -> sqlite3.Row | None:
        """The batch with ``input_live``/``output_live``: whether its datasets still exist."""
        rows = self._query(
            f"SELECT b.*, {_LIVE} FROM batches b WHERE b.id = :id",
            {"id": batch_id, "now": now_us()},
        )
        return rows[0] if rows else None

    def list_batches(
        self, order_col: str, limit: int, after: tuple[int, int] | None
    ) -> list[sqlite3.Row]:
        """Newest first by ``order_col``; ``after`` is the (time, seq) of the last row seen."""
        assert order_col in ("created_us", "updated_us")
        params: dict[str, Any] = {"limit": limit, "now": now_us()}
        where = ""
        if after is not None:
            where = f"WHERE (b.{order_col}, b.seq) < (:t, :s) "
            params.update(t=after[0], s=after[1])
        sql = f"SELECT b.*, {_LIVE} FROM batches b {where}ORDER BY b.{order_col} DESC, b.seq DESC LIMIT :limit"
        return self._query(sql, params)

    def request_cancel(self, batch_id: str, now: int) -> str | None:
        """Move a QUEUED/IN_PROGRESS batch to CANCELING; return the status it had (None: no batch)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT status FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None:
                return None
            status = str(row[0])
            if status in ("BATCH_STATUS_QUEUED", "BATCH_STATUS_IN_PROGRESS"):
                conn.execute(
                    "UPDATE batches SET status = 'BATCH_STATUS_CANCELING', cancel_us = ?, "
                    "updated_us = ? WHERE id = ?",
                    (now, now, batch_id),
                )
            return status

    def active_batches(self, now: int) -> list[sqlite3.Row]:
        """Batches the worker must look at: running, canceling, or queued and due (indexed)."""
        return self._query(
            "SELECT * FROM batches WHERE status IN "
            "('BATCH_STATUS_IN_PROGRESS', 'BATCH_STATUS_CANCELING') "
            "UNION ALL SELECT * FROM batches WHERE status = 'BATCH_STATUS_QUEUED' "
            "AND queued_until_us <= ? ORDER BY seq",
            (now,),
        )

    def next_queued_due(self) -> int | None:
        rows = self._query(
            "SELECT MIN(queued_until_us) FROM batches WHERE status = 'BATCH_STATUS_QUEUED'"
        )
        return rows[0][0] if rows and rows[0][0] is not None else None

    def update_batches(self, updates: list[dict[str, Any]]) -> None:
        """Apply many partial updates (each with ``id``, optionally ``if_status``) in one transaction."""
        if not updates:
            return
        with self.transaction() as conn:
            for upd in updates:
                fields = [k for k in upd if k not in ("id", "if_status")]
                sets = ", ".join(f"{k} = ?" for k in fields)
                params = [upd[k] for k in fields] + [upd["id"]]
                guard = ""
                if "if_status" in upd:  # only if nobody (a cancel) changed it meanwhile
                    guard = " AND status = ?"
                    params.append(upd["if_status"])
                conn.execute(f"UPDATE batches SET {sets} WHERE id = ?{guard}", params)

    # -- datasets -------------------------------------------------------------------

    def insert_dataset(self, row: dict[str, Any], replace: bool = False) -> None:
        row = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in row.items()}
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        self._execute(f"{verb} INTO datasets ({cols}) VALUES ({marks})", row.values())

    def get_dataset(self, dataset_id: str) -> sqlite3.Row | None:
        """The dataset, unless it does not exist or has expired."""
        rows = self._query(
            "SELECT * FROM datasets WHERE id = ? AND expires_us > ?", (dataset_id, now_us())
        )
        return rows[0] if rows else None

    def update_dataset(self, dataset_id: str, **fields: Any) -> None:
        fields = {
            k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in fields.items()
        }
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._execute(f"UPDATE datasets SET {sets} WHERE id = ?", [*fields.values(), dataset_id])

    def list_datasets(
        self,
        dataset_type: str | None,
        before_us: int | None,
        after_us: int | None,
        status: str | None,
        limit: int | None,
        offset: int,
    ) -> list[sqlite3.Row]:
        where: list[str] = ["expires_us > ?"]
        params: list[Any] = [now_us()]
        if dataset_type:
            where.append("dataset_type = ?")
            params.append(dataset_type)
        if before_us is not None:
            where.append("created_us < ?")
            params.append(before_us)
        if after_us is not None:
            where.append("created_us > ?")
            params.append(after_us)
        if status:
            where.append("validation_status = ?")
            params.append(status)
        sql = "SELECT * FROM datasets WHERE " + " AND ".join(where)
        sql += " ORDER BY created_us DESC, seq DESC LIMIT ? OFFSET ?"
        params += [limit if limit is not None else -1, offset]
        return self._query(sql, params)

    def due_datasets(self, now: int) -> list[sqlite3.Row]:
        """Datasets whose validation (or output readiness) is due now."""
        return self._query(
            "SELECT * FROM datasets WHERE validation_status IN ('queued', 'processing') "
            "AND ready_us <= ? ORDER BY seq",
            (now,),
        )

    def next_dataset_due(self) -> int | None:
        rows = self._query(
            "SELECT MIN(ready_us) FROM datasets WHERE validation_status IN ('queued', 'processing')"
        )
        return rows[0][0] if rows and rows[0][0] is not None else None

    def delete_dataset(self, dataset_id: str) -> bool:
        """Delete a live dataset (False: none such); an expired one is already gone."""
        deleted = (
            self._execute(
                "DELETE FROM datasets WHERE id = ? AND expires_us > ?", (dataset_id, now_us())
            )
            > 0
        )
        if deleted:
            shutil.rmtree(self.dataset_dir(dataset_id), ignore_errors=True)
        return deleted

    def purge_expired(self, now: int) -> list[str]:
        """Delete the rows and files of every expired dataset; return their ids."""
        ids = [
            str(r[0]) for r in self._query("SELECT id FROM datasets WHERE expires_us <= ?", (now,))
        ]
        if ids:
            with self.transaction() as conn:
                conn.executemany(
                    "DELETE FROM datasets WHERE id = ? AND expires_us <= ?", [(i, now) for i in ids]
                )
            for dataset_id in ids:
                shutil.rmtree(self.dataset_dir(dataset_id), ignore_errors=True)
        return ids

    def usage_bytes(self) -> int:
        """Bytes of every live dataset, batch outputs included."""
        rows = self._query(
            "SELECT COALESCE(SUM(size_bytes), 0) FROM datasets WHERE expires_us > ?", (now_us(),)
        )
        return int(rows[0][0])
