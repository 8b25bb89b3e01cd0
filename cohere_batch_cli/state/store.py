"""The local state store: one SQLite file, one connection per process and thread, migrated on open.

SQLite from the standard library, in WAL mode with a busy timeout, so two
cbatch processes (a retry in one terminal, ``cbatch get`` in another) read
and write it at once without "database is locked". Every write is its own
short transaction: a kill between two writes leaves the first one whole.

The store caches what the API would say anyway (a batch's root and attempt,
read back from batch names by :mod:`cohere_batch_cli.naming`) plus two things
only this machine knows: the local file a batch was created from (path, size
and hash, so a later retry can read it and refuse it if it changed), and the
steps of a retry in flight, written *before* each step is taken.

A program using the Python API may call it from several threads (an
orchestrator's workers, ``Run.records()``'s download): each thread gets its
own connection (:func:`open_store`), as a second process would, and WAL keeps
them consistent; a thread that is done closes its own (:func:`close_thread`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ENV_STATE_DIR
from ..errors import StoreBusy, StoreDamaged, StoreError, StoreNotWritable
from .migrations import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    from ..fingerprint import Block

__all__ = [
    "ENV_STATE_DIR", "AttemptRecord", "BatchRecord", "InputFile", "JobRecord", "PartRecord", "StateStore",
    "TableInput", "TableInputFile", "TableRequests", "open_store", "state_dir",
]  # fmt: skip
FILE_NAME = "state.sqlite3"
BUSY_TIMEOUT_MS = 10_000
"""How long a write waits for another process's write lock before the store is reported busy."""

_OPEN: dict[tuple[Path, int], StateStore] = {}
"""The open stores, by file and by the thread that opened (and alone uses) each."""


def state_dir() -> tuple[Path, str]:
    """Where the store lives, and why: ``CBATCH_STATE_DIR``, else the user data folder."""
    override = os.environ.get(ENV_STATE_DIR)
    if override:
        return Path(override).expanduser(), f"environment {ENV_STATE_DIR}"
    from platformdirs import user_data_dir

    return Path(user_data_dir("cbatch", appauthor=False)), "default"


def store_path() -> Path:
    """The state store file: :data:`FILE_NAME` in :func:`state_dir`'s folder."""
    return state_dir()[0] / FILE_NAME


def open_store(path: Path | None = None) -> StateStore:
    """This thread's one connection to the store at ``path`` (default :func:`store_path`), made on first use."""
    key = ((path or store_path()).absolute(), threading.get_ident())
    store = _OPEN.get(key)
    if store is None:
        store = _OPEN[key] = StateStore(key[0])
    return store


def existing_store(path: Path | None = None) -> StateStore | None:
    """The store if its file exists (a read that must not create one); None otherwise or when unusable.

    For what only reads the store as a cache (a batch's lineage); a command
    that needs the store (every ``jobs`` command) opens it and reports its error.
    """
    target = (path or store_path()).absolute()
    if (target, threading.get_ident()) not in _OPEN and not target.is_file():
        return None
    try:
        return open_store(target)
    except StoreError:
        return None


def close_all() -> None:
    """Close every open store, of every thread (tests, and a process about to exec)."""
    for store in list(_OPEN.values()):
        store.close()
    _OPEN.clear()


def close_thread() -> None:
    """Close the stores this thread opened: a worker thread's last step, so none is left open."""
    me = threading.get_ident()
    for (_, thread), store in list(_OPEN.items()):
        if thread == me:
            store.close()


@dataclass(frozen=True)
class BatchRecord:
    """What the store knows of one batch's lineage."""

    id: str
    name: str
    model: str | None
    input_dataset_id: str | None
    root_id: str
    parent_id: str | None
    attempt: int
    created_at: str | None


@dataclass(frozen=True)
class InputFile:
    """The local file a dataset was uploaded from, as it was then."""

    dataset_id: str
    path: str
    size: int
    sha256: str
    mtime_ns: int | None


@dataclass(frozen=True)
class UploadIntent:
    """A plain batch's upload in flight: the bytes (path and fingerprint), the name, since when.

    ``path`` is the user's file, resolved; a table run's requests are a temporary file, so theirs is
    the run's identity instead (``table`` and a digest of the table's fingerprint and the options
    that shape its requests: :func:`~cohere_batch_cli.tasks.send_file.upload_place`).
    """

    path: str
    sha256: str
    dataset_name: str
    step: str
    dataset_id: str | None
    started_at: float


@dataclass(frozen=True)
class KeyedRun:
    """A run made under an idempotency key: the request's digest, its fields (JSON), its batch once made."""

    run_id: str
    digest: str
    fields: str
    batch_id: str | None
    recorded_at: float


@dataclass(frozen=True)
class AttemptRecord:
    """One retry attempt in flight or done: the step it reached and what each step made."""

    root_id: str
    attempt: int
    parent_id: str
    step: str
    batch_name: str
    dataset_name: str
    model: str
    dataset_id: str | None
    batch_id: str | None
    records: int | None
    source: str | None
    started_at: float
    updated_at: float


@dataclass(frozen=True)
class TableRequests:
    """A table run's requests (``create --from``): what its rows came to, and the map of rows not sent.

    ``map_file`` is a SQLite file (:mod:`cohere_batch_cli.tasks.request_reuse`)
    that says, for each row not sent, whose answer it takes: its representative
    row's, or the answer cache's.
    """

    dataset_id: str
    model: str
    table_rows: int
    distinct_requests: int
    sent: int
    cached: int
    use_cache: bool
    """Whether ``results`` puts this run's answers in the answer cache (not with ``--no-cache``)."""
    map_file: str
    """The map's path; ``""`` once ``jobs prune`` removed it."""
    recorded_at: float = 0.0
    results_at: float | None = None
    """When ``results`` last wrote the run's table whole; None: never."""


@dataclass(frozen=True)
class TableInputFile:
    """One file of a table as ``create --from`` read it: its name within the table, size, fingerprint."""

    name: str
    """Its path relative to the table's folder, as POSIX text; ``""`` for a table that is one file."""
    size: int
    fingerprint: str


@dataclass(frozen=True)
class TableInput:
    """The table a dataset's requests were rendered from (``create --from``), as it was then.

    ``results`` reads it again to write the table with the answers as columns;
    the files' sizes and fingerprints say, when it changed, what changed.
    """

    dataset_id: str
    path: str
    """The table, absolute: a file, or a folder of files."""
    id_column: str | None
    """``--id-column``: each row's ``custom_id``; None: its row number from 1."""
    answer_schema: str | None
    """The JSON Schema of typed answers (``--schema``), as JSON text; None: answers are text."""
    fingerprint: str
    files: tuple[TableInputFile, ...]


STEPS = ("uploading", "uploaded", "creating", "created", "done")
"""The steps of an attempt, in order: each is written before the work it names, ``done``
once the run that made the attempt has reported it or watched it to the end."""


@dataclass(frozen=True)
class JobRecord:
    """One job: an input run as several batches, and the step the job as a whole reached.

    ``step``: ``splitting`` (the input is being checked and cut: no part is
    planned yet), ``split`` (every part is planned, in ``job_parts``),
    ``done`` (a run watched every part to its end), ``canceled``.
    """

    id: str
    label: str
    model: str
    dataset_type: str | None
    path: str | None
    size: int | None
    max_bytes: int | None
    max_records: int | None
    parts: int | None
    records: int | None
    step: str
    created_at: float
    updated_at: float
    fingerprint: str | None = None
    """The input's fingerprint as the split's check read it (:mod:`cohere_batch_cli.fingerprint`);
    None for a job recorded before fingerprints."""


@dataclass(frozen=True)
class PartRecord:
    """One part of a job: its byte range of the input, and what each step made.

    ``step``: ``planned``, ``uploading`` (intent: a kill here leaves a dataset
    to find by name, or none), ``uploaded`` (``dataset_id``), ``creating``
    (intent: a kill here leaves a batch to find by name, or none),
    ``created`` (``batch_id``).
    """

    job_id: str
    part: int
    start: int
    stop: int
    records: int
    step: str
    dataset_name: str
    batch_name: str
    dataset_id: str | None
    batch_id: str | None
    delivered: str | None
    """Where its results were written before its outputs were deleted (``jobs results --delete-outputs``)."""
    updated_at: float


JOB_STEPS = ("splitting", "split", "done", "canceled")
PART_STEPS = ("planned", "uploading", "uploaded", "creating", "created")


class StateStore:
    """The state store file, open; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        wait = BUSY_TIMEOUT_MS
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Used by the thread that opened it alone (open_store); closed from any (close_all).
            self._db = sqlite3.connect(
                path, timeout=wait / 1000, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise _unusable(path, exc) from None
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {wait}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except StoreError:
            self._db.close()
            raise
        except (OSError, sqlite3.Error, UnicodeDecodeError) as exc:
            self._db.close()
            raise _unusable(path, exc) from None

    @property
    def version(self) -> int:
        """How many migrations this file has had (its rows in ``schema_version``)."""
        return _applied(self._db)

    def close(self) -> None:
        self._db.close()
        for key, store in list(_OPEN.items()):
            if store is self:
                del _OPEN[key]

    def _migrate(self) -> None:
        """Apply the migrations this file lacks, one transaction each with its row; refuse a newer file.

        A current file is only read (no write transaction: a store busy with
        another writer, or one on a read-only disk, still opens for reading).
        """
        if _has_schema_table(self._db):
            current = _applied(self._db)
            _refuse_newer(self.path, current)
            if current == len(MIGRATIONS):
                return
        with self._write() as db:
            db.execute(SCHEMA_VERSION)
            if not _applied(db):  # a file from before the table: adopt its PRAGMA count
                legacy = int(db.execute("PRAGMA user_version").fetchone()[0])
                _refuse_newer(self.path, legacy)
                db.executemany(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    [(number, time.time()) for number in range(1, legacy + 1)],
                )
        while True:
            with self._write() as db:
                current = _applied(db)
                _refuse_newer(self.path, current)
                if current == len(MIGRATIONS):
                    return
                for statement in _statements(MIGRATIONS[current]):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (current + 1, time.time()),
                )
                # Kept in step only so that a cbatch from before the table refuses a newer file.
                db.execute(f"PRAGMA user_version = {current + 1}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``) so it never deadlocks."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> None:
        try:
            with self._write() as db:
                db.execute(sql, params)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise _unusable(self.path, exc) from None

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        try:
            return list(self._db.execute(sql, params))
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise _unusable(self.path, exc) from None

    def check_writable(self) -> None:
        """Raise the store's error if a write fails now (a full disk, a read-only file); write nothing.

        A real write, undone in its own transaction (the page still reaches the
        log), so a step that must be recorded learns before it is taken that it
        cannot be.
        """
        try:
            with self._write() as db:
                db.execute("INSERT INTO schema_version (version, applied_at) VALUES (0, 0)")
                db.execute("DELETE FROM schema_version WHERE version = 0")
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise _unusable(self.path, exc) from None

    # -- lineage ----------------------------------------------------------------------

    def record_batch(self, record: BatchRecord) -> None:
        """Remember a batch and its lineage (again: the newer word wins, but one).

        An input dataset id, once known, is kept: the API shows an empty
        ``input_dataset_id`` once that dataset expires, and the recorded input
        file is found through the id recorded when the batch was created
        (``retry`` would otherwise forget the file the moment the dataset goes).
        """
        self._run(
            "INSERT INTO batches (id, name, model, input_dataset_id, root_id, parent_id, attempt,"
            " created_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, model = excluded.model,"
            " input_dataset_id = COALESCE(NULLIF(excluded.input_dataset_id, ''), batches.input_dataset_id),"
            " root_id = excluded.root_id, parent_id = excluded.parent_id, attempt = excluded.attempt,"
            " created_at = excluded.created_at, recorded_at = excluded.recorded_at",
            (record.id, record.name, record.model, record.input_dataset_id, record.root_id,
             record.parent_id, record.attempt, record.created_at, time.time()),
        )  # fmt: skip

    def batch(self, batch_id: str) -> BatchRecord | None:
        rows = self._rows("SELECT * FROM batches WHERE id = ?", (batch_id,))
        return _batch(rows[0]) if rows else None

    def chain(self, root_id: str) -> list[BatchRecord]:
        """Every batch known of one root, attempt 1 first."""
        rows = self._rows(
            "SELECT * FROM batches WHERE root_id = ? ORDER BY attempt, created_at", (root_id,)
        )
        return [_batch(r) for r in rows]

    # -- input files ------------------------------------------------------------------

    def record_input_file(self, record: InputFile) -> None:
        self._run(
            "INSERT INTO input_files (dataset_id, path, size, sha256, mtime_ns, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dataset_id) DO UPDATE SET path = excluded.path,"
            " size = excluded.size, sha256 = excluded.sha256, mtime_ns = excluded.mtime_ns,"
            " recorded_at = excluded.recorded_at",
            (
                record.dataset_id,
                record.path,
                record.size,
                record.sha256,
                record.mtime_ns,
                time.time(),
            ),
        )

    def datasets_uploaded_from(self, path: str, sha256: str) -> list[str]:
        """The datasets this machine uploaded from the file at ``path`` with these bytes, newest first."""
        rows = self._rows(
            "SELECT dataset_id FROM input_files WHERE path = ? AND sha256 = ?"
            " ORDER BY recorded_at DESC",
            (path, sha256),
        )
        return [r["dataset_id"] for r in rows]

    def input_file(self, dataset_id: str) -> InputFile | None:
        rows = self._rows("SELECT * FROM input_files WHERE dataset_id = ?", (dataset_id,))
        if not rows:
            return None
        r = rows[0]
        return InputFile(r["dataset_id"], r["path"], r["size"], r["sha256"], r["mtime_ns"])

    # -- table runs -------------------------------------------------------------------

    def record_table_requests(self, record: TableRequests) -> None:
        """Remember what a table run's rows came to, under its input dataset's id (again: replaced)."""
        self._run(
            "INSERT INTO table_requests (dataset_id, model, table_rows, distinct_requests, sent, cached,"
            " use_cache, map_file, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (dataset_id) DO UPDATE SET model = excluded.model,"
            " table_rows = excluded.table_rows, distinct_requests = excluded.distinct_requests,"
            " sent = excluded.sent, cached = excluded.cached, use_cache = excluded.use_cache,"
            " map_file = excluded.map_file, recorded_at = excluded.recorded_at, results_at = NULL",
            (record.dataset_id, record.model, record.table_rows, record.distinct_requests,
             record.sent, record.cached, int(record.use_cache), record.map_file, time.time()),
        )  # fmt: skip

    def table_requests(self, dataset_id: str) -> TableRequests | None:
        """What the table run of input dataset ``dataset_id`` recorded, if this machine made it."""
        rows = self._rows("SELECT * FROM table_requests WHERE dataset_id = ?", (dataset_id,))
        return _table_requests(rows[0]) if rows else None

    def table_results_written(self, dataset_id: str) -> None:
        """``results`` wrote the table of the run of ``dataset_id`` whole, now."""
        self._run(
            "UPDATE table_requests SET results_at = ? WHERE dataset_id = ?",
            (time.time(), dataset_id),
        )

    def table_maps_done_with(
        self, before: float, *, everything: bool = False
    ) -> list[TableRequests]:
        """Runs whose map is still kept and whose table was last written before ``before``.

        ``everything``: a run whose table was never written counts from when it was made.
        """
        last = "COALESCE(results_at, recorded_at)" if everything else "results_at"
        rows = self._rows(
            f"SELECT * FROM table_requests WHERE map_file != '' AND {last} <= ? ORDER BY recorded_at",
            (before,),
        )
        return [_table_requests(r) for r in rows]

    def forget_table_map(self, dataset_id: str) -> None:
        """The run's map was removed: its record stays, so ``results`` can say why rows are missing."""
        self._run("UPDATE table_requests SET map_file = '' WHERE dataset_id = ?", (dataset_id,))

    # -- the tables of table runs --------------------------------------------------------

    def record_table_input(self, record: TableInput) -> None:
        """Remember the table ``record.dataset_id`` was rendered from, with each of its files (again: replaced)."""
        try:
            with self._write() as db:
                db.execute(
                    "DELETE FROM table_input_files WHERE dataset_id = ?", (record.dataset_id,)
                )
                db.execute(
                    "INSERT INTO table_inputs (dataset_id, path, id_column, answer_schema, fingerprint,"
                    " recorded_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dataset_id) DO UPDATE SET"
                    " path = excluded.path, id_column = excluded.id_column,"
                    " answer_schema = excluded.answer_schema, fingerprint = excluded.fingerprint,"
                    " recorded_at = excluded.recorded_at",
                    (record.dataset_id, record.path, record.id_column, record.answer_schema,
                     record.fingerprint, time.time()),
                )  # fmt: skip
                db.executemany(
                    "INSERT INTO table_input_files (dataset_id, file_number, name, size, fingerprint)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (record.dataset_id, n, f.name, f.size, f.fingerprint)
                        for n, f in enumerate(record.files, start=1)
                    ],
                )
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise _unusable(self.path, exc) from None

    def table_input(self, dataset_id: str) -> TableInput | None:
        """The table ``dataset_id``'s requests were rendered from, if this machine made them."""
        rows = self._rows("SELECT * FROM table_inputs WHERE dataset_id = ?", (dataset_id,))
        if not rows:
            return None
        r = rows[0]
        files = self._rows(
            "SELECT name, size, fingerprint FROM table_input_files WHERE dataset_id = ?"
            " ORDER BY file_number",
            (dataset_id,),
        )
        return TableInput(
            r["dataset_id"], r["path"], r["id_column"], r["answer_schema"], r["fingerprint"],
            tuple(TableInputFile(f["name"], f["size"], f["fingerprint"]) for f in files),
        )  # fmt: skip

    # -- attempts in flight -----------------------------------------------------------

    def upload_intent(self, path: str, sha256: str, dataset_name: str) -> UploadIntent | None:
        """The upload a ``create --file`` of these bytes meant under this name, if one is in flight."""
        rows = self._rows(
            "SELECT * FROM uploads WHERE path = ? AND sha256 = ? AND dataset_name = ?",
            (path, sha256, dataset_name),
        )
        return UploadIntent(**dict(rows[0])) if rows else None

    def uploads_at(self, path: str, dataset_name: str) -> list[UploadIntent]:
        """Every upload in flight from ``path`` under this name, whatever its bytes: a table run's, told
        apart from this run's when its requests were rendered otherwise."""
        rows = self._rows(
            "SELECT * FROM uploads WHERE path = ? AND dataset_name = ? ORDER BY started_at DESC",
            (path, dataset_name),
        )
        return [UploadIntent(**dict(r)) for r in rows]

    def keyed_run(self, run_id: str) -> KeyedRun | None:
        """The request a key's run was made for on this machine, if it was."""
        rows = self._rows("SELECT * FROM keyed_runs WHERE run_id = ?", (run_id,))
        return KeyedRun(**dict(rows[0])) if rows else None

    def bind_key(self, run_id: str, digest: str, fields: str) -> None:
        """Bind a key's run to its request, before a byte of it is sent (the first binding stays)."""
        self._run(
            "INSERT INTO keyed_runs (run_id, digest, fields, batch_id, recorded_at)"
            " VALUES (?, ?, ?, NULL, ?) ON CONFLICT (run_id) DO NOTHING",
            (run_id, digest, fields, time.time()),
        )

    def keyed_batch(self, run_id: str, batch_id: str) -> None:
        """The batch a key's run made."""
        self._run("UPDATE keyed_runs SET batch_id = ? WHERE run_id = ?", (batch_id, run_id))

    def begin_upload(self, path: str, sha256: str, dataset_name: str) -> None:
        """Write the intent to upload these bytes under this name, before a byte is sent."""
        self._run(
            "INSERT INTO uploads (path, sha256, dataset_name, step, dataset_id, started_at)"
            " VALUES (?, ?, ?, 'uploading', NULL, ?) ON CONFLICT (path, sha256, dataset_name)"
            " DO UPDATE SET step = 'uploading', dataset_id = NULL, started_at = excluded.started_at",
            (path, sha256, dataset_name, time.time()),
        )

    def advance_upload(
        self, path: str, sha256: str, dataset_name: str, step: str, dataset_id: str | None = None
    ) -> None:
        """Move a plain batch's send to ``step`` (``uploaded`` with its dataset, then ``creating``)."""
        self._run(
            "UPDATE uploads SET step = ?, dataset_id = COALESCE(?, dataset_id)"
            " WHERE path = ? AND sha256 = ? AND dataset_name = ?",
            (step, dataset_id, path, sha256, dataset_name),
        )

    def end_upload(self, path: str, sha256: str, dataset_name: str) -> None:
        """The send's outcome is recorded elsewhere (its input file, its batch): the intent is done."""
        self._run(
            "DELETE FROM uploads WHERE path = ? AND sha256 = ? AND dataset_name = ?",
            (path, sha256, dataset_name),
        )

    def attempt(self, root_id: str, attempt: int) -> AttemptRecord | None:
        rows = self._rows(
            "SELECT * FROM attempts WHERE root_id = ? AND attempt = ?", (root_id, attempt)
        )
        return AttemptRecord(**dict(rows[0])) if rows else None

    def begin_attempt(
        self,
        *,
        root_id: str,
        attempt: int,
        parent_id: str,
        batch_name: str,
        dataset_name: str,
        model: str,
        records: int,
        source: str,
    ) -> AttemptRecord:
        """Write the intent to upload attempt ``attempt``'s input: the first step of a retry."""
        now = time.time()
        self._run(
            "INSERT INTO attempts (root_id, attempt, parent_id, step, batch_name, dataset_name, model,"
            " dataset_id, batch_id, records, source, started_at, updated_at)"
            " VALUES (?, ?, ?, 'uploading', ?, ?, ?, NULL, NULL, ?, ?, ?, ?)"
            " ON CONFLICT (root_id, attempt) DO UPDATE SET parent_id = excluded.parent_id, step = excluded.step,"
            " batch_name = excluded.batch_name, dataset_name = excluded.dataset_name, model = excluded.model,"
            " dataset_id = NULL, batch_id = NULL, records = excluded.records, source = excluded.source,"
            " started_at = excluded.started_at, updated_at = excluded.updated_at",
            (
                root_id,
                attempt,
                parent_id,
                batch_name,
                dataset_name,
                model,
                records,
                source,
                now,
                now,
            ),
        )
        found = self.attempt(root_id, attempt)
        assert found is not None
        return found

    def advance_attempt(self, root_id: str, attempt: int, step: str, **values: str | None) -> None:
        """Move an attempt to ``step``, recording what the step before it made (``dataset_id``, ``batch_id``)."""
        if step not in STEPS or not set(values) <= {"dataset_id", "batch_id"}:
            raise ValueError(f"unknown step {step!r} or field in {sorted(values)}")
        sets = "".join(f", {name} = ?" for name in values)
        self._run(
            f"UPDATE attempts SET step = ?, updated_at = ?{sets} WHERE root_id = ? AND attempt = ?",
            (step, time.time(), *values.values(), root_id, attempt),
        )

    # -- jobs -------------------------------------------------------------------------

    def relabel_job(self, job_id: str, label: str, names: Sequence[tuple[int, str, str]]) -> None:
        """Name a job and its parts (``(part, dataset_name, batch_name)``) again, before any part is sent.

        A keyed job's label carries its request's digest, known once the split has read the input.
        """
        try:
            with self._write() as db:
                db.execute("UPDATE jobs SET label = ? WHERE id = ?", (label, job_id))
                db.executemany(
                    "UPDATE job_parts SET dataset_name = ?, batch_name = ? WHERE job_id = ? AND part = ?",
                    [(dataset, batch, job_id, part) for part, dataset, batch in names],
                )
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise _unusable(self.path, exc) from None

    def begin_job(self, record: JobRecord) -> None:
        """Write a new job (or a job rebuilt by ``jobs attach``) before any of its parts is planned."""
        self._run(
            "INSERT INTO jobs (id, label, model, dataset_type, path, size, max_bytes, max_records,"
            " parts, records, step, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET label = excluded.label, model = excluded.model,"
            " dataset_type = excluded.dataset_type, path = excluded.path, size = excluded.size,"
            " mtime_ns = NULL, max_bytes = excluded.max_bytes, max_records = excluded.max_records,"
            " parts = excluded.parts, records = excluded.records, step = excluded.step,"
            " created_at = excluded.created_at, updated_at = excluded.updated_at,"
            " fingerprint = NULL",  # a job written again is a new plan: its fingerprint comes with the plan
            (record.id, record.label, record.model, record.dataset_type, record.path, record.size,
             record.max_bytes, record.max_records, record.parts, record.records, record.step, record.created_at,
             time.time()),
        )  # fmt: skip

    def plan_job(
        self,
        job_id: str,
        parts: list[tuple[int, int, int, str, str]],
        *,
        records: int,
        dataset_type: str | None,
        blocks: Sequence[Block] = (),
    ) -> None:
        """Every part of a job at once (``start, stop, records, dataset name, batch name``), and the job ``split``,
        with the fingerprint of the input the check read and its blocks' SHA-256s.

        One transaction: a kill leaves either no plan or the whole plan.
        """
        from ..fingerprint import fingerprint

        now = time.time()
        try:
            with self._write() as db:
                db.execute("DELETE FROM job_parts WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM job_input_blocks WHERE job_id = ?", (job_id,))
                db.executemany(
                    "INSERT INTO job_input_blocks (job_id, stop, sha256) VALUES (?, ?, ?)",
                    [(job_id, b.stop, b.sha256) for b in blocks],
                )
                db.execute(
                    "UPDATE jobs SET fingerprint = ? WHERE id = ?",
                    (fingerprint(blocks) if blocks else None, job_id),
                )
                db.executemany(
                    "INSERT INTO job_parts (job_id, part, start, stop, records, step, dataset_name, batch_name,"
                    " dataset_id, batch_id, delivered, updated_at) VALUES (?, ?, ?, ?, ?, 'planned', ?, ?, NULL, NULL, NULL, ?)",
                    [
                        (job_id, n, a, b, r, d, bn, now)
                        for n, (a, b, r, d, bn) in enumerate(parts, start=1)
                    ],
                )
                db.execute(
                    "UPDATE jobs SET parts = ?, records = ?, dataset_type = ?, step = 'split', updated_at = ? WHERE id = ?",
                    (len(parts), records, dataset_type, now, job_id),
                )
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise _unusable(self.path, exc) from None

    def input_blocks(self, job_id: str) -> list[Block] | None:
        """The blocks of a job's input as its check read them, in order (None: recorded before fingerprints)."""
        from ..fingerprint import Block

        rows = self._rows(
            "SELECT stop, sha256 FROM job_input_blocks WHERE job_id = ? ORDER BY stop", (job_id,)
        )
        return [Block(r["stop"], r["sha256"]) for r in rows] or None

    def job(self, job_id: str) -> JobRecord | None:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job_of(rows[0]) if rows else None

    def jobs(self) -> list[JobRecord]:
        """Every job recorded here, newest first."""
        return [_job_of(r) for r in self._rows("SELECT * FROM jobs ORDER BY created_at DESC, id")]

    def job_ids_like(self, prefix: str) -> list[str]:
        return [
            r[0]
            for r in self._rows("SELECT id FROM jobs WHERE id LIKE ? ORDER BY id", (prefix + "%",))
        ]

    def parts(self, job_id: str) -> list[PartRecord]:
        rows = self._rows("SELECT * FROM job_parts WHERE job_id = ? ORDER BY part", (job_id,))
        return [PartRecord(**dict(r)) for r in rows]

    def advance_part(self, job_id: str, part: int, step: str, **values: str | None) -> None:
        """Move a part to ``step``, recording what the step before it made (``dataset_id``, ``batch_id``)."""
        if step not in PART_STEPS or not set(values) <= {"dataset_id", "batch_id"}:
            raise ValueError(f"unknown step {step!r} or field in {sorted(values)}")
        sets = "".join(f", {name} = ?" for name in values)
        self._run(
            f"UPDATE job_parts SET step = ?, updated_at = ?{sets} WHERE job_id = ? AND part = ?",
            (step, time.time(), *values.values(), job_id, part),
        )

    def mark_delivered(self, job_id: str, part: int, where: str) -> None:
        """A part's results were written to ``where`` and its outputs deleted: later results leave it out."""
        self._run(
            "UPDATE job_parts SET delivered = ?, updated_at = ? WHERE job_id = ? AND part = ?",
            (where, time.time(), job_id, part),
        )

    def set_job_step(self, job_id: str, step: str) -> None:
        if step not in JOB_STEPS:
            raise ValueError(f"unknown job step {step!r}")
        self._run(
            "UPDATE jobs SET step = ?, updated_at = ? WHERE id = ?", (step, time.time(), job_id)
        )

    def delete_job(self, job_id: str) -> None:
        """Forget a job here (``jobs prune``): its batches and datasets on the API are left alone.

        The table a table job was made from (``jobs create --from``, recorded
        under the job's id) is forgotten with it: no ``results`` can ask for it.
        """
        try:
            with self._write() as db:
                db.execute("DELETE FROM job_parts WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM job_input_blocks WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM table_input_files WHERE dataset_id = ?", (job_id,))
                db.execute("DELETE FROM table_inputs WHERE dataset_id = ?", (job_id,))
                db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise _unusable(self.path, exc) from None


def _table_requests(r: sqlite3.Row) -> TableRequests:
    return TableRequests(
        r["dataset_id"], r["model"], r["table_rows"], r["distinct_requests"], r["sent"],
        r["cached"], bool(r["use_cache"]), r["map_file"], r["recorded_at"], r["results_at"],
    )  # fmt: skip


def _batch(row: sqlite3.Row) -> BatchRecord:
    return BatchRecord(
        row["id"], row["name"], row["model"], row["input_dataset_id"], row["root_id"],
        row["parent_id"], row["attempt"], row["created_at"],
    )  # fmt: skip


def _has_schema_table(db: sqlite3.Connection) -> bool:
    found = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    return found is not None


def _applied(db: sqlite3.Connection) -> int:
    """The highest migration recorded in ``schema_version`` (0: none)."""
    return int(db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def _refuse_newer(path: Path, version: int) -> None:
    if version > len(MIGRATIONS):
        raise StoreDamaged(
            f"the state store {path} was made by a newer cbatch"
            f" (schema {version}, this one knows {len(MIGRATIONS)})",
            hint=f"use that cbatch, or {_move_aside(path)}",
        )


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


# SQLite's primary result codes (https://sqlite.org/rescode.html).
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_NOT_WRITABLE = {8: "make it writable", 13: "free some space on its disk"}  # READONLY, FULL


def _unusable(path: Path, exc: BaseException) -> StoreError:
    """The error for a store that failed: busy, damaged, or not writable, each with what to do."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None  # an extended code's primary code
    if primary in _BUSY:
        return StoreBusy(
            f"the state store {path} is busy: another process has held it for over"
            f" {BUSY_TIMEOUT_MS // 1000} s",
            hint="most likely another cbatch still writing; run this again when it is done",
        )
    if primary in _DAMAGED or isinstance(exc, UnicodeDecodeError):
        if isinstance(exc, UnicodeDecodeError):
            reason = "database disk image is malformed"
        return StoreDamaged(f"the state store {path} is damaged ({reason})", hint=_move_aside(path))
    todo = _NOT_WRITABLE.get(primary or -1)
    return StoreNotWritable(
        f"cannot use the state store {path}: {reason}",
        hint=f"{todo}, or set {ENV_STATE_DIR} to a folder cbatch may write in"
        if todo
        else f"set {ENV_STATE_DIR} to a folder cbatch may write in",
    )


def _move_aside(path: Path) -> str:
    """The command that moves a store aside (its write-ahead log too): cbatch then starts an empty one."""
    import shlex

    moves = [f"mv {shlex.quote(str(path))} {shlex.quote(str(path) + '.damaged')}"]
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        moves.append(f"mv {shlex.quote(str(wal))} {shlex.quote(str(wal) + '.damaged')}")
    return "move it aside and cbatch starts a new one: " + " && ".join(moves)


def _job_of(row: sqlite3.Row) -> JobRecord:
    """A job from its row, leaving out the columns no longer read: ``mtime_ns`` (the input's
    modification time, from before fingerprints; kept in the table, no longer written)."""
    known = {f.name for f in fields(JobRecord)}
    return JobRecord(**{k: v for k, v in dict(row).items() if k in known})
