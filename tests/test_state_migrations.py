"""The state store's schema comes by numbered migration, tracked in a ``schema_version`` table.

A store made before the table (when cbatch counted migrations in ``PRAGMA
user_version``) is upgraded in place and keeps every row; scripts that shipped
are never edited; scripts from 3 on are SQL PostgreSQL accepts as well, checked
by a scan for SQLite-only constructs and, where PostgreSQL is installed, by a
real PostgreSQL backend in single-user mode (no server, no network).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from cohere_batch_cli.errors import StoreDamaged
from cohere_batch_cli.state.migrations import LEGACY_SCRIPTS, MIGRATIONS, SCHEMA_VERSION
from cohere_batch_cli.state.store import StateStore

SHIPPED = {
    1: "f6b71a68",
    2: "5aefa26a",
}
"""The first 8 hex digits of the SHA-256 of each script that has shipped: never edit one."""


def _made_by_an_older_cbatch(path: Path, scripts: int) -> None:
    """A store exactly as cbatch made it before ``schema_version``: scripts, then ``PRAGMA user_version``."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for number in range(scripts):
        db.execute("BEGIN IMMEDIATE")
        for statement in (s.strip() for s in MIGRATIONS[number].split(";")):
            if statement:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {number + 1}")
        db.execute("COMMIT")
    db.execute(
        "INSERT INTO batches VALUES ('b1', 'nightly', 'command-r', 'ds-1', 'b1', NULL, 1, NULL, 1.5)"
    )
    db.execute(
        "INSERT INTO input_files VALUES ('ds-1', '/data/in.jsonl', 3000000000, ?, 1733500000123456789, 2.5)",
        ("ab" * 32,),
    )
    db.execute(
        "INSERT INTO attempts VALUES ('b1', 2, 'b1', 'creating', 'nightly [retry 1 of b1]', 'd', 'command-r',"
        " 'ds-2', NULL, 7, 'file', 3.5, 4.5)"
    )
    if scripts >= 2:
        db.execute(
            "INSERT INTO jobs VALUES ('j1', 'big', 'command-r', 'embed', '/data/big.jsonl', 10, 11, 100, 5, 1, 5,"
            " 'split', 5.5, 6.5)"
        )
        db.execute(
            "INSERT INTO job_parts VALUES ('j1', 1, 0, 10, 5, 'created', 'd1', 'n1', 'ds-9', 'b9', NULL, 7.5)"
        )
    db.close()


@pytest.mark.parametrize("scripts", [1, 2])
def test_a_store_made_before_schema_version_is_upgraded_in_place_and_keeps_its_data(
    tmp_path: Path, scripts: int
) -> None:
    path = tmp_path / "state.sqlite3"
    _made_by_an_older_cbatch(path, scripts)

    store = StateStore(path)

    assert store.version == len(MIGRATIONS)
    raw = sqlite3.connect(path)
    assert [
        r[0] for r in raw.execute("SELECT version FROM schema_version ORDER BY version")
    ] == list(range(1, len(MIGRATIONS) + 1))
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    raw.close()
    batch = store.batch("b1")
    assert batch is not None and (batch.name, batch.root_id, batch.attempt) == ("nightly", "b1", 1)
    kept = store.input_file("ds-1")
    assert kept is not None and (kept.size, kept.mtime_ns) == (3000000000, 1733500000123456789)
    attempt = store.attempt("b1", 2)
    assert attempt is not None and (attempt.step, attempt.dataset_id) == ("creating", "ds-2")
    if scripts >= 2:
        job = store.job("j1")
        assert job is not None and (job.step, job.parts) == ("split", 1)
        assert [(p.part, p.batch_id) for p in store.parts("j1")] == [(1, "b9")]
    store.close()
    again = StateStore(path)  # opening a current store again changes nothing
    assert again.version == len(MIGRATIONS)
    assert again.batch("b1") == batch
    again.close()


def test_a_store_whose_schema_version_is_newer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    StateStore(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version VALUES (?, 0)", (len(MIGRATIONS) + 1,))
    db.commit()
    db.close()
    with pytest.raises(StoreDamaged, match="made by a newer cbatch"):
        StateStore(path)


def test_shipped_migration_scripts_are_never_edited() -> None:
    for number, prefix in SHIPPED.items():
        digest = hashlib.sha256(MIGRATIONS[number - 1].encode()).hexdigest()
        assert digest.startswith(prefix), f"migration {number} has shipped: add a new one instead"
    assert len(SHIPPED) >= LEGACY_SCRIPTS


# -- SQL that PostgreSQL accepts as well ------------------------------------------------------

SQLITE_ONLY = {
    r"\bAUTOINCREMENT\b": "AUTOINCREMENT (use GENERATED ... AS IDENTITY, or no surrogate key)",
    r"\bINSERT\s+OR\s+\w+": "INSERT OR ... (use INSERT ... ON CONFLICT)",
    r"\bREPLACE\s+INTO\b": "REPLACE INTO (use INSERT ... ON CONFLICT)",
    r"\bON\s+CONFLICT\s+(REPLACE|IGNORE|ABORT|FAIL|ROLLBACK)\b": "a conflict clause on a constraint",
    r"\bPRAGMA\b": "PRAGMA",
    r"\bWITHOUT\s+ROWID\b": "WITHOUT ROWID",
    r"\)\s*STRICT\b": "STRICT tables",
    r"\b(datetime|julianday|strftime|unixepoch)\s*\(": "SQLite date functions",
    r"\browid\b": "rowid",
    r"\bINTEGER\b": "INTEGER (PostgreSQL's is 32 bits: use BIGINT)",
    r"\bREAL\b": "REAL (PostgreSQL's is single precision: use DOUBLE PRECISION)",
    r"\bBLOB\b": "BLOB (PostgreSQL has BYTEA)",
    r"\bGLOB\b": "GLOB",
    r"`": "backquoted names",
}


def sqlite_only(script: str) -> list[str]:
    """What in ``script`` PostgreSQL would refuse or read differently."""
    return [
        why for pattern, why in SQLITE_ONLY.items() if re.search(pattern, script, re.IGNORECASE)
    ]


def test_the_scan_finds_each_sqlite_only_construct() -> None:
    samples = [
        "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)",
        "INSERT OR REPLACE INTO t VALUES (1)",
        "REPLACE INTO t VALUES (1)",
        "CREATE TABLE t (a BIGINT UNIQUE ON CONFLICT IGNORE)",
        "PRAGMA foreign_keys = ON",
        "CREATE TABLE t (a TEXT PRIMARY KEY) WITHOUT ROWID",
        "CREATE TABLE t (a TEXT) STRICT",
        "CREATE TABLE t (a TEXT DEFAULT (datetime('now')))",
        "SELECT rowid FROM t",
        "CREATE TABLE t (a INTEGER)",
        "CREATE TABLE t (a REAL)",
        "CREATE TABLE t (a BLOB)",
        "SELECT a FROM t WHERE a GLOB 'x*'",
        "CREATE TABLE `t` (a TEXT)",
    ]
    for sample in samples:
        assert sqlite_only(sample), sample
    assert not sqlite_only(
        "CREATE TABLE t (a BIGINT PRIMARY KEY, b DOUBLE PRECISION NOT NULL, c TEXT);"
        " INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
    )


def test_migrations_from_3_on_use_only_sql_postgresql_accepts() -> None:
    for number, script in enumerate(MIGRATIONS, start=1):
        if number > LEGACY_SCRIPTS:
            assert not sqlite_only(script), f"migration {number}: {sqlite_only(script)}"
    assert not sqlite_only(SCHEMA_VERSION)


POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))


@pytest.mark.skipif(not POSTGRES_BIN, reason="PostgreSQL is not installed here")
def test_every_migration_runs_on_a_real_postgresql() -> None:
    """Each script, in order, on a fresh PostgreSQL cluster in single-user mode (no server, no port)."""
    bin_dir = POSTGRES_BIN[-1].parent
    root = Path(tempfile.mkdtemp(prefix="cbatch-pg-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(root / "db"), "-A", "trust", "-U", "cbatch",
             "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        script = ";\n".join([SCHEMA_VERSION, *MIGRATIONS])
        script += ";\nINSERT INTO schema_version (version, applied_at) VALUES (1, 1.5)"
        script += " ON CONFLICT (version) DO UPDATE SET applied_at = excluded.applied_at;\n"
        script = "BEGIN;\n" + script + "COMMIT;\n"
        done = subprocess.run(
            [*as_user, str(bin_dir / "postgres"), "--single", "-D", str(root / "db"), "-j", "postgres"],
            input=script, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
        assert done.returncode == 0 and not errors, done.stderr
        check = subprocess.run(
            [*as_user, str(bin_dir / "postgres"), "--single", "-D", str(root / "db"), "postgres"],
            input="SELECT count(*) FROM job_parts\n", capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "ERROR" not in check.stderr, "the scripts' tables exist: " + check.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_stores_own_statements_upsert_as_postgresql_does() -> None:
    """``INSERT ... ON CONFLICT`` (both accept it), never SQLite's ``INSERT OR REPLACE`` or ``REPLACE INTO``."""
    import cohere_batch_cli.state.store as store_module

    source = Path(store_module.__file__).read_text(encoding="utf-8")
    assert not re.search(r"INSERT\s+OR\s+\w+|REPLACE\s+INTO", source, re.IGNORECASE)
    assert "ON CONFLICT" in source
