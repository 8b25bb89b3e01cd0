"""The state store's schema, as numbered migrations applied in order when it is opened.

The ``schema_version`` table (:data:`SCHEMA_VERSION`) holds one row for each
migration a file has had. Opening a store applies the ones it lacks, each in
its own transaction together with its row, so a file made by an older cbatch
is brought up to date and one made by a newer cbatch (a version this list does
not know) is refused rather than misread. A file from before the table (cbatch
counted in ``PRAGMA user_version`` then) is adopted in place: its count becomes
rows of the table, its data stays.

To add tables (as the jobs feature did, migration 2): append one script to
:data:`MIGRATIONS`. Never edit or reorder a script that has shipped: files in
the wild have already run it (``tests/test_state_migrations.py`` pins their text).

**Scripts from 3 on are written in SQL that PostgreSQL accepts as well**, for
the store a team will share: ``BIGINT`` for integers (sizes and nanoseconds
overflow PostgreSQL's ``INTEGER``), ``DOUBLE PRECISION`` for times (its ``REAL``
is single precision), ``TEXT``, ``INSERT ... ON CONFLICT`` rather than
``INSERT OR REPLACE``, and nothing only SQLite knows (``AUTOINCREMENT``,
``PRAGMA``, ``WITHOUT ROWID``, ``STRICT``, ``datetime()``, ``rowid``). SQLite
reads ``BIGINT`` and ``DOUBLE PRECISION`` with the same affinity as ``INTEGER``
and ``REAL``. Scripts 1 and 2 shipped before the rule: PostgreSQL parses them,
but their ``INTEGER`` byte sizes and nanosecond times and their ``REAL`` times
need ``BIGINT`` and ``DOUBLE PRECISION`` there: a PostgreSQL store will start
from a first script with those types rather than replay them as written.

Every table is a cache of what the API says, except ``attempts``, ``job_parts``
and ``uploads``, which hold what cbatch *meant* to do before it did it (intent first, then the step, then
the outcome), so a run killed between two steps leaves something the next run
reads. Deleting the file loses nothing the API cannot give back but the path
of a local input file.
"""

from __future__ import annotations

SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    version BIGINT PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL
)
"""
"""The table of applied migrations: one row for each, with when it was applied (adopted rows: when adopted)."""

LEGACY_SCRIPTS = 2
"""Scripts 1 and 2 shipped before the PostgreSQL rule (see the module docstring)."""

MIGRATIONS: tuple[str, ...] = (
    # 1: lineage, recorded input files, retry attempts in flight
    """
    CREATE TABLE batches (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        model TEXT,
        input_dataset_id TEXT,
        root_id TEXT NOT NULL,
        parent_id TEXT,
        attempt INTEGER NOT NULL,
        created_at TEXT,
        recorded_at REAL NOT NULL
    );
    CREATE INDEX batches_by_root ON batches (root_id, attempt);

    CREATE TABLE input_files (
        dataset_id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        mtime_ns INTEGER,
        recorded_at REAL NOT NULL
    );

    CREATE TABLE attempts (
        root_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        parent_id TEXT NOT NULL,
        step TEXT NOT NULL,
        batch_name TEXT NOT NULL,
        dataset_name TEXT NOT NULL,
        model TEXT NOT NULL,
        dataset_id TEXT,
        batch_id TEXT,
        records INTEGER,
        source TEXT,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (root_id, attempt)
    );
    """,
    # 2: jobs (one input run as several batches) and their parts, each step written before it is taken
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        model TEXT NOT NULL,
        dataset_type TEXT,
        path TEXT,
        size INTEGER,
        mtime_ns INTEGER,
        max_bytes INTEGER,
        max_records INTEGER,
        parts INTEGER,
        records INTEGER,
        step TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );

    CREATE TABLE job_parts (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        part INTEGER NOT NULL,
        start INTEGER NOT NULL,
        stop INTEGER NOT NULL,
        records INTEGER NOT NULL,
        step TEXT NOT NULL,
        dataset_name TEXT NOT NULL,
        batch_name TEXT NOT NULL,
        dataset_id TEXT,
        batch_id TEXT,
        delivered TEXT,
        updated_at REAL NOT NULL,
        PRIMARY KEY (job_id, part)
    );
    """,
    # 3: the fingerprint of a job's input and the SHA-256 of each of its blocks, as the check read them
    """
    ALTER TABLE jobs ADD COLUMN fingerprint TEXT;

    CREATE TABLE job_input_blocks (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        stop BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (job_id, stop)
    );
    """,
    # 4: a table run's requests (create --from): rows, distinct requests, how many were sent and how
    # many the answer cache answered, and the file that maps each row to the answer it reuses
    """
    CREATE TABLE table_requests (
        dataset_id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        table_rows BIGINT NOT NULL,
        distinct_requests BIGINT NOT NULL,
        sent BIGINT NOT NULL,
        cached BIGINT NOT NULL,
        use_cache BIGINT NOT NULL,
        map_file TEXT NOT NULL,
        recorded_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 5: the table a dataset's requests were rendered from (create --from), so results writes
    # that table again with the answers as columns; each of its files as it was read
    """
    CREATE TABLE table_inputs (
        dataset_id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        id_column TEXT,
        answer_schema TEXT,
        fingerprint TEXT NOT NULL,
        recorded_at DOUBLE PRECISION NOT NULL
    );

    CREATE TABLE table_input_files (
        dataset_id TEXT NOT NULL REFERENCES table_inputs (dataset_id) ON DELETE CASCADE,
        file_number BIGINT NOT NULL,
        name TEXT NOT NULL,
        size BIGINT NOT NULL,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (dataset_id, file_number)
    );
    """,
    # 6: a plain batch's upload (create --file), its intent written before a byte is sent: a run
    # killed while the upload's answer was on its way finds its dataset by name, as a retry does
    """
    CREATE TABLE uploads (
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        dataset_name TEXT NOT NULL,
        step TEXT NOT NULL,
        dataset_id TEXT,
        started_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (path, sha256, dataset_name)
    );
    """,
    # 7: a run made under an idempotency key: the request the key is bound to, field by field, so a
    # call with the same key and another request is refused naming what differs
    """
    CREATE TABLE keyed_runs (
        run_id TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        fields TEXT NOT NULL,
        batch_id TEXT,
        recorded_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 8: when a table run's results were last written as its table: its map of rows not sent
    # (table-requests/) is done with, and jobs prune may remove it once that is old
    """
    ALTER TABLE table_requests ADD COLUMN results_at DOUBLE PRECISION;
    """,
)
"""Migration ``i + 1`` is ``MIGRATIONS[i]``; a store at version ``len(MIGRATIONS)`` is current."""
