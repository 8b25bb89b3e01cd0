"""Nothing is sent from bytes that were not checked: an input rewritten (same size) after its check.

The installed ``cbatch`` runs against a sandbox of the test's own; it is
stopped (SIGSTOP) at the moment its check has ended, as told by its own
output, the file is rewritten in place with other custom_ids, and it is let go
(SIGCONT). What it sends then must be what it checked, or nothing.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY
from tests.support.flows import FAIL, wait_terminal
from tests.support.installed import cbatch_env, cbatch_path

RECORDS = 1000
"""Records of about 3 KB: a 3 MB input, read back (and sent) in several blocks of 1 MiB."""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    server = SandboxServer(
        SandboxSettings(
            data_dir=tmp_path / "sandbox", port=0, records_per_second=4000.0, latency=0.02,
            output_ready_delay=0.0,
        )
    ).start()  # fmt: skip
    client = CohereClient(TEST_KEY, server.base_url)
    work = tmp_path / "a"
    work.mkdir()
    with open(work / "in.jsonl", "w") as fh:
        for i in range(RECORDS):
            text = f"question {i}: " + "lorem ipsum " * 250
            if i % 100 == 7:
                text += " " + FAIL  # a few that fail, for a retry to send again
            body = {"messages": [{"role": "user", "content": text}]}
            fh.write(json.dumps({"custom_id": f"q{i:05d}", "body": body}) + "\n")
    try:
        yield {"server": server, "client": client, "cwd": work, "data": tmp_path / "sandbox"}
    finally:
        client.close()
        server.stop()


def start(world: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [cbatch_path(), *args], cwd=world["cwd"], env=cbatch_env(world["server"].base_url, world["cwd"]),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def rewrite_when_said(
    proc: subprocess.Popen[str],
    said: str,
    path: Path,
    old: bytes = b'"custom_id": "q',
    new: bytes = b'"custom_id": "z',
) -> list[str]:
    """SIGSTOP ``proc`` as soon as it writes a line holding ``said`` on stderr, rewrite ``path`` in
    place (the same size: every ``old`` made ``new``), SIGCONT: the lines read so far."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            pytest.fail(f"cbatch ended before saying {said!r}:\n{''.join(lines)}")
        lines.append(line)
        if said in line:
            break
    proc.send_signal(signal.SIGSTOP)
    try:
        data = path.read_bytes()
        with open(path, "r+b") as fh:
            fh.write(data.replace(old, new))
    finally:
        proc.send_signal(signal.SIGCONT)
    return lines


def unchecked_sent(world: dict[str, Any], new: bytes = b'"custom_id": "z') -> bool:
    """Whether the sandbox holds any record of the rewritten file (in any dataset it stored)."""
    return any(new in f.read_bytes() for f in world["data"].rglob("*") if f.is_file())


@pytest.mark.parametrize(
    "command",
    [
        ("create", "--file", "in.jsonl", "--model", "command-a-03-2025", "--no-context-check"),
        ("datasets", "upload", "in.jsonl"),
    ],
    ids=["create --file", "datasets upload"],
)
def test_create_file_rewritten_after_its_check_sends_nothing_and_makes_no_dataset(
    world: dict[str, Any], command: tuple[str, ...]
) -> None:
    proc = start(world, *command)
    said = rewrite_when_said(proc, "in.jsonl: 1,000 records", world["cwd"] / "in.jsonl")
    _, rest = proc.communicate(timeout=60)
    err = "".join(said) + rest
    assert proc.returncode == 5, err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "changed after it was checked" in x]
    assert line.startswith("error: in.jsonl changed after it was checked"), line
    assert "no dataset was made" in line
    assert not unchecked_sent(world), "a record that was never checked was sent"
    assert world["client"].list_datasets() == [], "the abandoned upload made a dataset"
    assert list(world["client"].iter_batches()) == []


def test_a_retry_sends_the_recorded_input_it_compared_not_the_file_rewritten_after(
    world: dict[str, Any],
) -> None:
    client: CohereClient = world["client"]
    made = subprocess.run(
        [cbatch_path(), "create", "--file", "in.jsonl", "--model", "command-a-03-2025", "--no-context-check", "--json"],
        cwd=world["cwd"], env=cbatch_env(world["server"].base_url, world["cwd"]),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    batch = wait_terminal(client, json.loads(made.stdout)["id"])
    assert batch.num_failed_records == 10
    proc = start(world, "retry", batch.id)
    said = rewrite_when_said(  # compared with the record and found unchanged: now it changes
        proc, "(recorded when batch", world["cwd"] / "in.jsonl", b"lorem", b"LOREM"
    )
    _, rest = proc.communicate(timeout=60)
    err = "".join(said) + rest
    assert proc.returncode == 0, err
    assert "unchanged" in said[-1] and "Traceback" not in err
    assert not unchecked_sent(world, b"LOREM"), "the retry sent bytes read after the comparison"
    (retry,) = [b for b in client.iter_batches() if b.id != batch.id]
    assert client.get_dataset(retry.input_dataset_id).num_rows == 10  # the failed ones, as checked


def test_jobs_results_input_order_refuses_an_input_rewritten_in_another_order(
    world: dict[str, Any],
) -> None:
    def cbatch(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [cbatch_path(), *args], cwd=world["cwd"], env=cbatch_env(world["server"].base_url, world["cwd"]),
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == code, done.stderr
        assert "Traceback" not in done.stderr
        return done

    made = cbatch("jobs", "create", "in.jsonl", "--model", "command-a-03-2025", "--watch", "-q")
    job_id = made.stdout.split()[0]
    with sqlite3.connect(world["cwd"] / "state" / "state.sqlite3") as db:
        (stamp,) = db.execute("SELECT mtime_ns FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert stamp is None, (
        "the fingerprint is what a job keeps of its input, not a modification time"
    )
    path: Path = world["cwd"] / "in.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(reversed(lines)))  # the same records and size, the other way round
    refused = cbatch("jobs", "results", job_id, "-o", "ordered.jsonl", "--input-order", code=5)
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: ") and f"in.jsonl changed after job {job_id} checked it" in line
    assert "nothing was written" in line and "leave out --input-order" in line, line
    assert not (world["cwd"] / "ordered.jsonl").exists(), "an order that was never checked"
    path.write_bytes(b"".join(lines))  # put back: the order is the checked input's
    cbatch("jobs", "results", job_id, "-o", "ordered.jsonl", "--input-order")
    written = (world["cwd"] / "ordered.jsonl").read_text().splitlines()
    assert [json.loads(x)["custom_id"] for x in written] == [f"q{i:05d}" for i in range(RECORDS)]
