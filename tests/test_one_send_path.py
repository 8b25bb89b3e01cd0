"""One send path: a run killed between its upload and its create, run again, uploads nothing (issue 23).

A plain ``create --file`` (a run of one part; ``create --from``, a table's, too), a retry (a
part's next attempt) and a job (its part) all send through ``tasks/sending.py``, so one rule
holds for them all:
``kill -9`` once the upload is recorded and before any batch exists, and the same
command run again takes the dataset the killed run left. Asserted on the sandbox's
own dataset and batch lists: one input dataset and one batch for the part, the batch
made from that dataset. The moment to kill is read from the state store, never
guessed by a timer; validation is slow here, so the window is wide.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY
from tests.support.flows import chat_records, make_dataset, wait_terminal, write_jsonl
from tests.support.installed import cbatch_env, cbatch_path, run_cbatch
from tests.support.kills import kill_when

pytestmark = pytest.mark.slow

MODEL = "command-r"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A sandbox that validates slowly, a folder with a file of requests, and a client."""
    server = SandboxServer(
        SandboxSettings(
            data_dir=tmp_path / "sandbox", port=0, validation_delay=1.5, queue_delay=0.0,
            records_per_second=2000.0, output_ready_delay=0.0,
        )
    ).start()  # fmt: skip
    client = CohereClient(TEST_KEY, server.base_url)
    work = tmp_path / "work"
    work.mkdir()
    write_jsonl(work / "faq.jsonl", chat_records(6, fail={2, 5}))
    try:
        yield {"server": server, "client": client, "cwd": work}
    finally:
        client.close()
        server.stop()


def recorded(world: dict[str, Any], sql: str) -> bool:
    """Whether the state store holds a row for ``sql`` (read-only; False while it is being made)."""
    path = world["cwd"] / "state" / "state.sqlite3"
    if not path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute(sql).fetchone() is not None
    except sqlite3.Error:
        return False


def plain(world: dict[str, Any]) -> tuple[list[str], str]:
    """``create --file``: its upload is recorded as the input file's dataset."""
    return ["create", "--file", "faq.jsonl", "--model", MODEL, "--name", "faq"], (
        "SELECT 1 FROM input_files"
    )


def reviews(world: dict[str, Any]) -> list[str]:
    """A table of three rows, and the options that render it into requests."""
    (world["cwd"] / "reviews.csv").write_text(
        "id,text\nr1,good soup\nr2,cold tea\nr3,fine bread\n", encoding="utf-8"
    )
    return ["--from", "reviews.csv", "--id-column", "id", "--prompt", "Sum up: {{ text }}"]


def table(world: dict[str, Any]) -> tuple[list[str], str]:
    """``create --from``: its requests are a temporary file, so its upload is recorded under the run's
    identity (the table's fingerprint, its options, the model, the name), found again by it."""
    return ["create", *reviews(world), "--model", MODEL], (
        "SELECT 1 FROM uploads WHERE step = 'uploaded'"
    )


def table_job(world: dict[str, Any]) -> tuple[list[str], str]:
    """``jobs create --from``: its requests are kept in the state folder, read again by ``jobs resume``."""
    return ["jobs", "create", *reviews(world), "--model", MODEL], (
        "SELECT 1 FROM job_parts WHERE step = 'uploaded'"
    )


def retry(world: dict[str, Any]) -> tuple[list[str], str]:
    """``retry ROOT``: its upload is the attempt's step ``uploaded``."""
    client: CohereClient = world["client"]
    root = client.create_batch(
        name="faq", input_dataset_id=make_dataset(client, world["cwd"] / "faq.jsonl"), model=MODEL
    )
    wait_terminal(client, root.id, timeout=60)
    return ["retry", root.id], "SELECT 1 FROM attempts WHERE step = 'uploaded'"


def job(world: dict[str, Any]) -> tuple[list[str], str]:
    """``jobs create``: its part's step ``uploaded`` (one part: the batch list then holds it alone)."""
    return ["jobs", "create", "faq.jsonl", "--model", MODEL], (
        "SELECT 1 FROM job_parts WHERE step = 'uploaded'"
    )


def resume(world: dict[str, Any], command: list[str]) -> list[str]:
    """The same command again (a job's is ``jobs resume JOB``, the id read from the store)."""
    if command[:2] != ["jobs", "create"]:
        return command
    with sqlite3.connect(world["cwd"] / "state" / "state.sqlite3") as db:
        (job_id,) = db.execute("SELECT id FROM jobs").fetchone()
    return ["jobs", "resume", job_id]


@pytest.mark.parametrize(
    "run",
    [plain, table, retry, job, table_job],
    ids=["create --file", "create --from", "retry", "jobs part", "jobs create --from"],
)
def test_killed_after_its_upload_the_same_run_again_uploads_nothing(
    world: dict[str, Any], run: Callable[[dict[str, Any]], tuple[list[str], str]]
) -> None:
    client: CohereClient = world["client"]
    command, upload_recorded = run(world)
    before = {d.id for d in client.iter_datasets()}
    batches_before = {b.id for b in client.iter_batches()}
    cwd = world["cwd"]
    proc = subprocess.Popen(
        [cbatch_path(), *command], cwd=cwd, env=cbatch_env(world["server"].base_url, cwd),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    kill_when(proc, lambda: recorded(world, upload_recorded), "the upload was recorded")
    (left,) = [d for d in client.iter_datasets() if d.id not in before]
    assert {b.id for b in client.iter_batches()} == batches_before, "killed before any create"

    again = run_cbatch(world["server"].base_url, resume(world, command), cwd, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stderr and left.id in again.stderr, again.stderr

    inputs = [
        d.id
        for d in client.iter_datasets()
        if d.id not in before and (d.dataset_type or "").endswith("-input")
    ]
    assert inputs == [left.id], "the dataset the killed run left is the only one uploaded"
    (made,) = [b for b in client.iter_batches() if b.id not in batches_before]
    assert made.input_dataset_id == left.id
    lineage = naming.parse_batch_name(made.name)[1]
    assert (lineage is not None) == (command[0] != "create")


def test_a_create_killed_while_its_uploads_answer_was_on_its_way_finds_its_dataset_by_name(
    world: dict[str, Any],
) -> None:
    """The upload's intent is written before a byte is sent, as a retry's is: a run killed after the
    API made the dataset but before its id came back left only that intent, and the same command
    finds the dataset by its name instead of uploading again."""
    client: CohereClient = world["client"]
    command, upload_recorded = plain(world)
    cwd = world["cwd"]
    proc = subprocess.Popen(
        [cbatch_path(), *command], cwd=cwd, env=cbatch_env(world["server"].base_url, cwd),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    kill_when(proc, lambda: recorded(world, upload_recorded), "the upload was recorded")
    (left,) = list(client.iter_datasets())
    with sqlite3.connect(
        cwd / "state" / "state.sqlite3"
    ) as db:  # as a kill one moment earlier leaves it
        path, sha256 = db.execute("SELECT path, sha256 FROM input_files").fetchone()
        db.execute("DELETE FROM input_files")
        db.execute("DELETE FROM uploads")  # the intent as it was written: no dataset yet
        db.execute(
            "INSERT INTO uploads VALUES (?, ?, ?, 'uploading', NULL, ?)",
            (path, sha256, naming.plain_dataset_name("faq"), time.time() - 5),
        )

    again = run_cbatch(world["server"].base_url, command, cwd, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"as dataset {left.id}; nothing is uploaded again" in again.stderr
    inputs = [d.id for d in client.iter_datasets() if (d.dataset_type or "").endswith("-input")]
    assert inputs == [left.id], "the dataset the killed run left is the only one uploaded"
    (made,) = list(client.iter_batches())
    assert made.input_dataset_id == left.id
    with sqlite3.connect(cwd / "state" / "state.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM uploads").fetchone() == (0,), "the intent is done"


def test_a_create_killed_before_its_batch_was_recorded_makes_no_second_batch(
    world: dict[str, Any],
) -> None:
    """The create step is written before the call (``creating``, with the dataset), as a retry's
    is: the same command run again looks for the batch made from that dataset under its name
    before it creates one, so a kill after the API made the batch and before this machine
    recorded it never makes two (before, it uploaded again and made a second batch)."""
    client: CohereClient = world["client"]
    command, _ = plain(world)
    cwd = world["cwd"]
    first = run_cbatch(world["server"].base_url, command, cwd, timeout=120)
    assert first.returncode == 0, first.stderr
    (made,) = list(client.iter_batches())
    with sqlite3.connect(
        cwd / "state" / "state.sqlite3"
    ) as db:  # as a kill after the answer leaves it
        path, sha256 = db.execute("SELECT path, sha256 FROM input_files").fetchone()
        db.execute("DELETE FROM batches")
        db.execute(
            "INSERT INTO uploads VALUES (?, ?, ?, 'creating', ?, ?)",
            (
                path,
                sha256,
                naming.plain_dataset_name("faq"),
                made.input_dataset_id,
                time.time() - 5,
            ),
        )

    again = run_cbatch(world["server"].base_url, command, cwd, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"resumed: batch {made.id} was created from faq.jsonl by an earlier run" in again.stderr
    assert [b.id for b in client.iter_batches()] == [made.id], "no second batch"
    inputs = [d.id for d in client.iter_datasets() if (d.dataset_type or "").endswith("-input")]
    assert inputs == [made.input_dataset_id], "nothing uploaded again"
    with sqlite3.connect(cwd / "state" / "state.sqlite3") as db:
        assert db.execute("SELECT id FROM batches").fetchall() == [(made.id,)], "recorded now"
        assert db.execute("SELECT count(*) FROM uploads").fetchone() == (0,), "the send is done"

    # Once its batch is recorded, the same command makes a new batch, as it always has.
    third = run_cbatch(world["server"].base_url, command, cwd, timeout=120)
    assert third.returncode == 0, third.stderr
    assert len(list(client.iter_batches())) == 2
