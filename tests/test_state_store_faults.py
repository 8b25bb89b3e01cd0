"""A state store that cannot be used is one clear line and its own exit code, for every command.

Real files, real SQLite locks held by another process, real damage: a store
held busy past the wait is exit 15 (busy, not "unwritable"), a damaged one exit
16 naming the file and the command that moves it aside, one that cannot be
written exit 11; ``jobs list`` reports the store's error like every other
``jobs`` command instead of "no jobs recorded".
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.state import store as state_store
from cohere_batch_cli.state.store import JobRecord, StateStore, close_all
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, write_jsonl

NO_API = "http://127.0.0.1:1"
"""Nothing listens here: a command that reached the API would fail with exit 7, not a store code."""


def the_store() -> Path:
    return Path(os.environ["CBATCH_STATE_DIR"]) / "state.sqlite3"


def a_store_with_a_job() -> Path:
    path = the_store()
    store = StateStore(path)
    now = time.time()
    store.begin_job(
        JobRecord("job-7f3a", "nightly", "command-r", None, "/data/in.jsonl", 10, 100, None,
                  None, None, "splitting", now, now)
    )  # fmt: skip
    store.plan_job("job-7f3a", [(0, 10, 5, "d1", "b1")], records=5, dataset_type=None)
    store.close()
    close_all()
    return path


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


JOBS_COMMANDS = [
    ["jobs", "list"],
    ["jobs", "get", "job-7f3a"],
    ["jobs", "watch", "job-7f3a"],
    ["jobs", "results", "job-7f3a", "-o", "out.jsonl"],
    ["jobs", "resume", "job-7f3a"],
    ["jobs", "cancel", "job-7f3a"],
    ["jobs", "prune", "--all"],
]


def damage_the_schema(path: Path) -> None:
    """40 bytes of the schema's text (page 1) overwritten: SQLite cannot read the file's tables."""
    data = path.read_bytes()
    at = data.index(b"CREATE TABLE jobs")
    with path.open("r+b") as fh:
        fh.seek(at)
        fh.write(b"\xc0" * 40)


def damage_the_header(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.write(os.urandom(40))


@pytest.mark.parametrize("damage", [damage_the_schema, damage_the_header])
def test_a_damaged_store_is_exit_16_naming_the_file_and_how_to_move_it_aside(
    damage: object,
) -> None:
    path = a_store_with_a_job()
    damage(path)  # type: ignore[operator]
    cli = Cli(NO_API, TEST_KEY)
    for command in JOBS_COMMANDS:
        result = cli(*command, exit_code=ExitCode.STATE_DAMAGED)
        line = one_error_line(result.stderr)
        assert line.startswith(f"error: the state store {path} is damaged ("), (command, line)
        assert line.endswith(
            f"move it aside and cbatch starts a new one: mv {shlex.quote(str(path))}"
            f" {shlex.quote(str(path) + '.damaged')}"
        ), (command, line)
        assert result.stdout == "", command
    # What the hint says works: the store moved aside, cbatch starts a new one.
    subprocess.run(["mv", str(path), f"{path}.damaged"], check=True)
    assert cli("jobs", "list").stderr.strip() == "no jobs recorded on this machine"


def test_jobs_list_reports_a_store_it_cannot_open_like_every_other_jobs_command() -> None:
    the_store().mkdir(parents=True)  # a folder where the file should be: SQLite cannot open it
    cli = Cli(NO_API, TEST_KEY)
    listed = cli("jobs", "list", exit_code=ExitCode.LOCAL_WRITE)
    got = cli("jobs", "get", "job-7f3a", exit_code=ExitCode.LOCAL_WRITE)
    assert one_error_line(listed.stderr) == one_error_line(got.stderr)
    assert "no jobs recorded" not in listed.stderr + listed.stdout


def test_jobs_list_without_a_store_says_none_are_recorded_and_makes_none() -> None:
    result = Cli(NO_API, TEST_KEY)("jobs", "list")
    assert result.stderr.strip() == "no jobs recorded on this machine"
    assert not the_store().exists()


@pytest.fixture
def held_store() -> Iterator[Path]:
    """The store, its write lock held by another process (a transaction left open) until the test ends."""
    path = a_store_with_a_job()
    with subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "db.execute('BEGIN IMMEDIATE')\n"
         "print('held', flush=True)\n"
         "sys.stdin.read()\n",
         str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            yield path
        finally:
            holder.kill()


def test_a_store_held_busy_past_the_wait_is_exit_15_busy_not_unwritable(
    held_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_store, "BUSY_TIMEOUT_MS", 400)  # the real wait is 10 s
    source = write_jsonl(tmp_path / "in.jsonl", chat_records(3))
    cli = Cli(NO_API, TEST_KEY)
    started = time.monotonic()
    result = cli(
        "jobs", "create", str(source), "--model", "command-r", exit_code=ExitCode.STATE_BUSY
    )
    assert time.monotonic() - started >= 0.4, "it waited for the lock first"
    line = one_error_line(result.stderr)
    assert line.startswith(
        f"error: the state store {held_store} is busy: another process has held it for over"
    ), line
    assert "another cbatch" in line
    assert "CBATCH_STATE_DIR" not in line, "a busy store is not a folder to move"
    # Reading a busy store still works: WAL readers do not wait for a writer.
    assert "job-7f3a" in cli("jobs", "list").stdout


# -- a store that opens but cannot be written: the step's outcome is never lost --------------------


def a_full_state_disk(tmp_path: Path, room: int) -> Iterator[Path]:
    """A state store on a 1 MiB tmpfs (room for every migration's tables), then the disk filled up but for ``room`` bytes."""
    from tests.test_local_files import mount_tmpfs

    disk = tmp_path / "state-disk"
    mount_tmpfs(disk, "size=1m")
    try:
        StateStore(disk / "state.sqlite3").close()
        close_all()
        with open(disk / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass
        filler = disk / "filler"
        os.truncate(filler, max(0, filler.stat().st_size - room))
        yield disk
    finally:
        close_all()
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def full_store(tmp_path: Path) -> Iterator[Path]:
    """40 KiB left: the store opens (room for its -shm), a write fails (SQLITE_FULL)."""
    yield from a_full_state_disk(tmp_path, 40 * 1024)


@pytest.fixture
def no_room_store(tmp_path: Path) -> Iterator[Path]:
    """Not a byte left: the store cannot even open, and the run lock's note of its holder fails."""
    yield from a_full_state_disk(tmp_path, 0)


def batches_named(sandbox: object, name: str) -> list[str]:
    from tests.support.flows import client_for

    with client_for(sandbox, TEST_KEY) as client:
        return [b.id for b in client.iter_batches(page_size=1000) if b.name == name]


def test_create_file_on_a_store_that_cannot_be_written_prints_the_id_and_a_rerun_finds_it(
    cli: Cli, sandbox: object, full_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CBATCH_STATE_DIR", str(full_store))
    source = write_jsonl(tmp_path / "in.jsonl", chat_records(5))
    name = f"full-store-{tmp_path.name}"
    command = ("create", "--file", str(source), "--model", "command-r", "--name", name, "-q")
    result = cli(*command)
    batch_id = result.stdout.strip()
    assert batches_named(sandbox, name) == [batch_id], "the one batch, and its id on stdout"
    assert (
        f"batch {batch_id} was created, but the state store could not record it:"
        f" cannot use the state store {full_store / 'state.sqlite3'}: database or disk is full"
    ) in result.stderr

    again = cli(*command)  # the store still cannot record: the API says what the first run made

    assert again.stdout.strip() == batch_id
    assert batches_named(sandbox, name) == [batch_id], "no second batch"
    assert f"found batch {batch_id}, made from this file with this name and model" in again.stderr
    assert "uploaded as dataset" not in again.stderr, "nothing uploaded again"


def test_create_file_with_no_room_at_all_in_the_state_folder_prints_the_id_and_exits_0(
    cli: Cli, sandbox: object, no_room_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CBATCH_STATE_DIR", str(no_room_store))
    source = write_jsonl(tmp_path / "in.jsonl", chat_records(5))
    name = f"no-room-{tmp_path.name}"
    result = cli("create", "--file", str(source), "--model", "command-r", "--name", name, "-q")
    batch_id = result.stdout.strip()
    assert batches_named(sandbox, name) == [batch_id]
    assert not [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"batch {batch_id} is not recorded" in result.stderr
