"""kill -9 at each step of a retry, then the same command again: exactly one batch per attempt.

The installed ``cbatch`` runs against a sandbox of the test's own; the moment to kill it is
found by watching what it does, never by a timer: the state store's record of the attempt
(written before each step), or the sandbox's request log (the create call arriving, the
new batch being polled). The sandbox answers every request a little late, so each step
lasts long enough to be caught in the middle.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY
from tests.support.flows import chat_records, make_dataset, wait_terminal, write_jsonl
from tests.support.installed import cbatch_env, cbatch_path, run_cbatch
from tests.support.kills import kill_when

pytestmark = pytest.mark.slow


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A slow-answering sandbox holding one finished batch with three failed records."""
    server = SandboxServer(
        SandboxSettings(
            data_dir=tmp_path / "sandbox",
            port=0,
            records_per_second=20.0,
            queue_delay=1.5,
            latency=0.1,
            output_ready_delay=0.0,
        )
    ).start()
    client = CohereClient(TEST_KEY, server.base_url)
    work = tmp_path / "work"
    work.mkdir()
    path = write_jsonl(work / "requests.jsonl", chat_records(8, fail={1, 4, 6}))
    batch = client.create_batch(
        name="nightly", input_dataset_id=make_dataset(client, path), model="command-r"
    )
    wait_terminal(client, batch.id, timeout=60)
    try:
        yield {"server": server, "client": client, "root": batch.id, "cwd": work}
    finally:
        client.close()
        server.stop()


def start(world: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    cwd = world["cwd"]
    return subprocess.Popen(
        [cbatch_path(), *args], cwd=cwd, env=cbatch_env(world["server"].base_url, cwd),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def step(world: dict[str, Any], attempt: int = 2) -> str | None:
    """The step the state store holds for an attempt of the root (None: not begun)."""
    path = world["cwd"] / "state" / "state.sqlite3"
    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT step FROM attempts WHERE root_id = ? AND attempt = ?",
                (world["root"], attempt),
            ).fetchone()
    except sqlite3.Error:
        return None  # the schema is still being made
    return row[0] if row else None


def requests_to(world: dict[str, Any], method: str, path: str) -> int:
    return sum(
        1
        for m, p, _ in list(world["server"].request_log)
        if m == method and p.split("?")[0] == path
    )


def attempts(world: dict[str, Any]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for batch in world["client"].iter_batches(page_size=1000):
        lineage = naming.parse_batch_name(batch.name)[1]
        number = (
            1
            if batch.id == world["root"]
            else lineage.attempt
            if lineage and lineage.root_batch_id == world["root"]
            else None
        )
        if number is not None:
            found.setdefault(number, []).append(batch.id)
    return found


def retry_datasets(world: dict[str, Any], attempt: int = 2) -> list[str]:
    name = naming.dataset_name(
        "nightly", naming.Lineage(root_batch_id=world["root"], attempt=attempt)
    )
    return [d.id for d in world["client"].iter_datasets() if d.name == name]


def again(world: dict[str, Any], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    result = run_cbatch(world["server"].base_url, list(args), world["cwd"], timeout=120)
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def test_killed_after_the_upload_the_same_command_reuses_the_dataset(world: dict[str, Any]) -> None:
    proc = start(world, "retry", world["root"])
    kill_when(proc, lambda: step(world) in ("uploaded", "creating"), "the upload was recorded")
    result = again(world, "retry", world["root"])
    assert "resumed: the retry input was uploaded by an earlier run, as dataset" in result.stderr
    assert len(retry_datasets(world)) == 1, "the retry input was uploaded once"
    assert {n: len(ids) for n, ids in attempts(world).items()} == {1: 1, 2: 1}


def test_killed_while_the_create_call_was_in_flight_the_same_command_makes_one_batch(
    world: dict[str, Any],
) -> None:
    before = requests_to(world, "POST", "/v2/batches")
    proc = start(world, "retry", world["root"])
    kill_when(
        proc, lambda: requests_to(world, "POST", "/v2/batches") > before, "the create call arrived"
    )
    time.sleep(0.5)  # whatever the sandbox does with a request whose client died, it has done it
    result = again(world, "retry", world["root"])
    (made,) = attempts(world)[2]
    assert result.stdout.splitlines()[0].split()[-1] == made
    assert ("resumed: attempt 2 was created by an earlier run" in result.stderr) != (
        f"created batch {made}" in result.stderr
    )
    assert {n: len(ids) for n, ids in attempts(world).items()} == {1: 1, 2: 1}
    assert len(retry_datasets(world)) == 1


def test_killed_after_the_create_the_same_command_says_it_was_made(world: dict[str, Any]) -> None:
    proc = start(world, "retry", world["root"], "--watch")
    kill_when(proc, lambda: step(world) == "created", "the batch was recorded as created")
    (made,) = attempts(world)[2]
    result = again(world, "retry", world["root"])
    assert f"resumed: attempt 2 was created by an earlier run, as batch {made}" in result.stderr
    assert result.stdout.splitlines()[0].split()[-1] == made
    assert {n: len(ids) for n, ids in attempts(world).items()} == {1: 1, 2: 1}
    assert step(world) == "done"


def test_killed_during_the_watch_the_same_command_watches_on(world: dict[str, Any]) -> None:
    proc = start(world, "retry", world["root"], "--watch")
    made: list[str] = []

    def polled() -> bool:
        if not made:
            made.extend(attempts(world).get(2, []))
            return False
        return any(
            m == "GET" and p.split("?")[0] == f"/v2/batches/{made[0]}"
            for m, p, _ in list(world["server"].request_log)
        )

    kill_when(proc, polled, "the new batch was polled")
    assert not world["client"].get_batch(made[0]).status.is_terminal, (
        "killed while the batch still ran"
    )
    result = again(world, "retry", world["root"], "--watch", code=ExitCode.RECORDS_FAILED)
    assert f"resumed: attempt 2 was created by an earlier run, as batch {made[0]}" in result.stderr
    assert "error: 3 records still failing after the last round" in result.stderr
    assert {n: len(ids) for n, ids in attempts(world).items()} == {1: 1, 2: 1}, (
        "no attempt 3: one round was asked"
    )


def test_sigterm_during_the_rounds_says_how_to_go_on(world: dict[str, Any]) -> None:
    proc = start(world, "retry", world["root"], "--watch", "--rounds", "2", "--pause", "0.1s")
    deadline = time.monotonic() + 60
    while not attempts(world).get(2) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == ExitCode.TERMINATED, err
    assert (
        f"cbatch retry {world['root']} --watch --rounds 2 --pause 0.1s" in err
        and "Traceback" not in err
    )
    result = again(
        world,
        "retry",
        world["root"],
        "--watch",
        "--rounds",
        "2",
        "--pause",
        "0.1s",
        code=ExitCode.RECORDS_FAILED,
    )
    assert {n: len(ids) for n, ids in attempts(world).items()} == {1: 1, 2: 1, 3: 1}
    assert result.stderr.count("records still failing") == 1


def test_a_fast_local_clock_never_hides_a_retrys_own_upload(world: dict[str, Any]) -> None:
    """Case 12a: with this machine's clock 120 s fast, a run killed while its upload's answer
    was on its way wrote a start later than the API's stamp on the dataset; the same command
    missed its own upload and uploaded again. One clock rule (api/clock.py) allows for it."""
    proc = start(world, "retry", world["root"])
    kill_when(proc, lambda: step(world) in ("uploaded", "creating"), "the upload was recorded")
    path = world["cwd"] / "state" / "state.sqlite3"
    with sqlite3.connect(path) as db:  # as the killed run would have left it, its clock 120 s fast
        db.execute(
            "UPDATE attempts SET step = 'uploading', dataset_id = NULL, started_at = started_at + 120"
            " WHERE root_id = ? AND attempt = 2",
            (world["root"],),
        )
    result = again(world, "retry", world["root"])
    assert "resumed: the retry input was uploaded by an earlier run, as dataset" in result.stderr
    assert len(retry_datasets(world)) == 1, "the retry input was uploaded once"
    assert {n: len(ids) for n, ids in attempts(world).items()} == {1: 1, 2: 1}
