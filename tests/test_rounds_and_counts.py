"""Rounds, counts and exit codes decided once (issue 23 cases 6, 7 and 8).

- ``--rounds N`` is N retries in all, counted on the API: a run stopped in a pause
  and run again by the command it printed makes only the rounds still due;
- one pause rule for a batch's rounds and a job's, announced as slept;
- a job's progress counts each part's attempts exactly, never a running batch's
  partial count plus its final one;
- a job that never ran, or whose parts were never sent, exits 14.
"""

from __future__ import annotations

import json
import shlex
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
from cohere_batch_cli.exit_codes import PRECEDENCE, ExitCode, combine
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from cohere_batch_cli.tasks.retrying import MAX_PAUSE, round_pause
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, make_dataset, wait_terminal, write_jsonl
from tests.support.installed import cbatch_env, cbatch_path, run_cbatch

pytestmark = pytest.mark.slow


@pytest.fixture
def paced(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A sandbox that takes a moment per record, holding a finished batch with two records that always fail."""
    server = SandboxServer(
        SandboxSettings(
            data_dir=tmp_path / "sandbox", port=0, records_per_second=20.0, queue_delay=0.3,
            output_ready_delay=0.0,
        )
    ).start()  # fmt: skip
    client = CohereClient(TEST_KEY, server.base_url)
    work = tmp_path / "work"
    work.mkdir()
    path = write_jsonl(work / "requests.jsonl", chat_records(6, fail={1, 4}))
    batch = client.create_batch(
        name="nightly", input_dataset_id=make_dataset(client, path), model="command-r"
    )
    wait_terminal(client, batch.id, timeout=60)
    try:
        yield {"server": server, "client": client, "root": batch.id, "cwd": work}
    finally:
        client.close()
        server.stop()


def _retries(world: dict[str, Any]) -> list[int]:
    numbers = []
    for batch in world["client"].iter_batches(page_size=1000):
        lineage = naming.parse_batch_name(batch.name)[1]
        if lineage is not None and lineage.root_batch_id == world["root"]:
            numbers.append(lineage.attempt)
    return sorted(numbers)


def _step(world: dict[str, Any], attempt: int) -> str | None:
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
        return None
    return row[0] if row else None


def test_rounds_are_retries_in_all_after_ctrl_c_in_the_pause(paced: dict[str, Any]) -> None:
    """Case 6: the printed "go on" command ran 3 more rounds (4 retries against 3 asked for)."""
    proc = subprocess.Popen(
        [cbatch_path(), "retry", paced["root"], "--watch", "--rounds", "3", "--pause", "3s", "--plain"],
        cwd=paced["cwd"], env=cbatch_env(paced["server"].base_url, paced["cwd"]),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while _step(paced, 2) != "done":  # attempt 2 watched to its end: the pause before round 2 began
        assert proc.poll() is None and time.monotonic() < deadline, "the first round never ended"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert _retries(paced) == [2], "one retry before the Ctrl-C"
    go_on = err.split("go on with the rounds with: ", 1)[1].splitlines()[0]
    assert go_on.startswith("cbatch retry ") and "--rounds 3" in go_on
    args = shlex.split(go_on)[1:]
    result = run_cbatch(paced["server"].base_url, args, paced["cwd"], timeout=120)
    assert result.returncode == ExitCode.RECORDS_FAILED, result.stderr
    assert _retries(paced) == [2, 3, 4], "3 retries in all, however often interrupted"
    assert "round 2 of 3 in 3 s" in result.stderr and "round 3 of 3 in 6 s" in result.stderr
    again = run_cbatch(paced["server"].base_url, args, paced["cwd"], timeout=120)
    assert again.returncode == ExitCode.RECORDS_FAILED
    assert _retries(paced) == [2, 3, 4], "the same command again sends nothing more"
    assert "--rounds 3 allows 3 in all" in again.stderr


def test_one_pause_rule_announced_as_slept() -> None:
    """Case 6: ``jobs retry`` announced "round 7 of 8 in 960 s" and slept 600 s."""
    assert [round_pause(k, 30.0) for k in range(2, 9)] == [30, 60, 120, 240, 480, 600, 600]
    assert round_pause(7, 30.0) == MAX_PAUSE


# -- exact counts -----------------------------------------------------------------------------


@pytest.fixture
def slow_parts(tmp_path: Path) -> Iterator[SandboxServer]:
    """Parts that take a few seconds, so a watch starts while they run with partial counts."""
    server = SandboxServer(
        SandboxSettings(
            data_dir=tmp_path / "sandbox", port=0, records_per_second=4.0, queue_delay=0.0,
            output_ready_delay=0.0,
        )
    ).start()  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


def test_jobs_watch_started_while_parts_run_counts_each_record_once(
    slow_parts: SandboxServer, tmp_path: Path
) -> None:
    """Case 7: "4 of 4 parts ended, 2,646/2,000 records succeeded": counts never exceed the job."""
    write_jsonl(tmp_path / "requests.jsonl", chat_records(16, fail={3}))
    cli = Cli(slow_parts.base_url, TEST_KEY)
    job_id = cli(
        "jobs", "create", "requests.jsonl", "--model", "m", "--max-records-per-batch", "8", "-q"
    ).stdout.split()[0]
    deadline = time.monotonic() + 30
    with CohereClient(TEST_KEY, slow_parts.base_url) as client:
        while not any(b.num_successful_records > 0 for b in client.iter_batches(page_size=100)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    result = cli("jobs", "watch", job_id, "--plain", "--interval", "0.2s", "--max-interval", "0.5s")
    progress = [line for line in result.stderr.splitlines() if line.startswith(f"job {job_id}: ")]
    exact = json.loads(cli("jobs", "get", job_id, "--json").stdout)
    assert exact["succeeded"] == 15
    assert progress[-1].startswith(f"job {job_id}: 2 of 2 parts ended, 15/16 records succeeded")
    for line in progress:
        succeeded = int(line.split(", ")[1].split("/")[0].replace(",", ""))
        assert succeeded <= 15, line

    retried = cli(
        "jobs", "retry", job_id, "--rounds", "1", "--plain", "--interval", "0.2s", exit_code=12
    )
    after = [line for line in retried.stderr.splitlines() if line.startswith(f"job {job_id}: ")]
    assert after and all("15/16 records succeeded" in line for line in after), after
    view = json.loads(cli("jobs", "get", job_id, "--json").stdout)
    attempts = {p["part"]: len(p["attempts"]) for p in view["parts"]}
    assert attempts == {1: 2, 2: 1}, "the part with a failure was retried once"
    assert view["succeeded"] == 15, "a naive sum of every attempt's records would say 16 or more"
    assert sum(a["records"] for p in view["parts"] for a in p["attempts"]) == 17


# -- exit codes -------------------------------------------------------------------------------


def test_a_job_that_never_ran_or_never_sent_its_parts_exits_14(cli: Cli, tmp_path: Path) -> None:
    """Case 8: ``jobs watch`` exited 0 for a job killed while splitting and 10 for parts never sent."""
    from cohere_batch_cli.output.core import Output
    from cohere_batch_cli.state.store import JobRecord, open_store
    from cohere_batch_cli.tasks.estimating import GuardOptions
    from cohere_batch_cli.tasks.jobs import JobOptions, create_job

    store = open_store()
    now = time.time()
    store.begin_job(
        JobRecord("killedmid1", "mid", "m", None, None, None, 4000, None, None, None, "splitting", now, now)
    )  # fmt: skip
    result = cli("jobs", "watch", "killedmid1", "--plain", exit_code=ExitCode.NEVER_RAN)
    assert (
        "stopped while splitting" in result.stderr
        and "cbatch jobs resume killedmid1" in result.stderr
    )

    path = write_jsonl(tmp_path / "requests.jsonl", chat_records(4))
    planned = create_job(
        None,  # type: ignore[arg-type]  # planning with the context check off asks the API nothing
        path, Output(),
        JobOptions(label="unsent", model="m", max_bytes=4000, max_records=2, guard=GuardOptions(check_context=False)),
        store,
    )  # fmt: skip
    result = cli("jobs", "watch", planned.id, "--plain", exit_code=ExitCode.NEVER_RAN)
    assert "2 of 2 parts were never sent" in result.stderr
    assert "--timeout ran out" not in result.stderr


def test_never_ran_has_its_place_in_the_precedence() -> None:
    assert PRECEDENCE.index(ExitCode.NOT_FOUND) < PRECEDENCE.index(ExitCode.NEVER_RAN)
    assert PRECEDENCE.index(ExitCode.NEVER_RAN) < PRECEDENCE.index(ExitCode.TIMEOUT)
    assert combine([ExitCode.BATCH_FAILED, ExitCode.NEVER_RAN, ExitCode.TIMEOUT]) == 14


def test_a_reader_that_closed_our_stdout_is_exit_0_for_a_watch(paced: dict[str, Any]) -> None:
    """``cbatch watch ID --json | head -1``: the reader had what it wanted."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [cbatch_path(), "watch", paced["root"], "--json"], cwd=paced["cwd"],
            env=cbatch_env(paced["server"].base_url, paced["cwd"]), stdin=subprocess.DEVNULL,
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
