"""Run ids: ``results``, ``watch``, ``retry`` and ``cancel`` given a job id do what their ``jobs`` command does.

A job's run id is its job id; a batch is its own run. The four commands that
take a batch id take a job id as well, on the real sandbox, and a batch id
(a job part's included) keeps its behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, write_jsonl


def _sandbox(tmp_path: Path, **settings: Any) -> Iterator[dict[str, Any]]:
    server = SandboxServer(
        SandboxSettings(data_dir=tmp_path / "sandbox", port=0, output_ready_delay=0.0, **settings)
    ).start()
    client = CohereClient(TEST_KEY, server.base_url)
    try:
        yield {"cli": Cli(server.base_url, TEST_KEY), "client": client}
    finally:
        client.close()
        server.stop()


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fast sandbox that fails and loses some records on purpose."""
    yield from _sandbox(
        tmp_path, records_per_second=5000.0, transient_fail_rate=0.2, missing_rate=0.05, seed=7
    )


@pytest.fixture
def queued(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A sandbox whose batches wait in the queue for a minute: still running when cancelled."""
    yield from _sandbox(tmp_path, queue_delay=60.0)


def _job(cli: Cli, records: int, per_part: int) -> str:
    write_jsonl(Path("in.jsonl"), chat_records(records))
    return cli(
        "jobs", "create", "in.jsonl", "--model", "command-r",
        "--max-records-per-batch", str(per_part), "-q",
    ).stdout.strip()  # fmt: skip


def _attempts(client: CohereClient, job_id: str) -> dict[tuple[int, int], int]:
    """Records a batch of the API holds, by (part, attempt) of the job."""
    found: dict[tuple[int, int], int] = {}
    for batch in client.iter_batches(page_size=1000):
        lineage = naming.parse_batch_name(batch.name)[1]
        if lineage is not None and lineage.job_id == job_id:
            key = (lineage.part or 0, lineage.attempt)
            assert key not in found, f"two batches for part and attempt {key}"
            found[key] = batch.num_records or 0
    return found


def test_watch_results_and_retry_of_a_job_id_do_what_the_jobs_commands_do(
    failing: dict[str, Any], tmp_path: Path
) -> None:
    cli, client = failing["cli"], failing["client"]
    job_id = _job(cli, 60, 20)

    watched = cli("watch", job_id, "--plain")
    assert f"job {job_id} completed" in watched.stderr
    ended = cli("watch", job_id, "--plain").stderr  # now that every part ended: no race on polls
    assert ended == cli("jobs", "watch", job_id, "--plain").stderr, "the same lines"
    assert ended.splitlines()[-1] in watched.stderr.splitlines()
    events = [json.loads(line) for line in cli("watch", job_id, "--json").stdout.splitlines()]
    assert events[-1]["kind"] == "job" and events[-1]["id"] == job_id

    cli("results", job_id, "-o", "run.jsonl")
    cli("jobs", "results", job_id, "-o", "jobs.jsonl")
    assert (tmp_path / "run.jsonl").read_bytes() == (tmp_path / "jobs.jsonl").read_bytes()
    cli("results", job_id, "-o", "run.csv", "--failed-only")
    cli("jobs", "results", job_id, "-o", "jobs.csv", "--failed-only")
    assert (tmp_path / "run.csv").read_bytes() == (tmp_path / "jobs.csv").read_bytes()

    flagged = cli("watch", job_id, "--fail-on-records", exit_code=ExitCode.RECORDS_FAILED)
    assert f"job {job_id} completed" in flagged.stderr
    cli("watch", job_id, "--fail-on-records", "--no-exit-status")  # forgiven: exit 0
    listed = cli("retry", job_id, "--dry-run", "--json")
    assert listed.stdout == cli("jobs", "retry", job_id, "--dry-run", "--json").stdout
    assert listed.stdout.count("custom_id") > 0, "the records a retry would send, one a line"
    before = json.loads(cli("jobs", "get", job_id, "--json").stdout)
    failed = before["records"] - before["succeeded"]
    assert failed > 0, "the sandbox failed some records on purpose"
    retried = cli("retry", job_id, "--rounds", "1", "--pause", "0.05s", "--no-exit-status")
    assert f"job {job_id} " in retried.stderr
    attempts = _attempts(client, job_id)
    assert sum(n for (_, attempt), n in attempts.items() if attempt == 2) == failed, (
        "every failed record sent again once, and nothing else"
    )
    assert max(attempt for _, attempt in attempts) == 2, "one round"
    after = json.loads(cli("jobs", "get", job_id, "--json").stdout)
    assert after["succeeded"] > before["succeeded"]


def test_cancel_of_a_job_id_cancels_the_job_and_leaves_no_batch_running(
    queued: dict[str, Any],
) -> None:
    cli, client = queued["cli"], queued["client"]
    job_id = _job(cli, 20, 10)
    canceled = cli("cancel", job_id, "--json")
    assert f"job {job_id} canceled: 2 of 2 parts were still running" in canceled.stderr
    outcomes = json.loads(canceled.stdout)
    assert len(outcomes) == 2 and all(
        o["job_id"] == job_id and o["cancel_requested"] for o in outcomes
    )
    states = {b.id: b.status.label for b in client.iter_batches(page_size=1000)}
    assert {states[o["id"]] for o in outcomes} <= {"canceling", "canceled"}
    assert not [s for s in states.values() if s not in ("canceling", "canceled")], states
    waited = cli("cancel", job_id, "--wait", "--plain")  # asked again, then watched to the end
    assert f"job {job_id} canceled: 0/20 records" in waited.stderr.splitlines()[-1]
    assert {client.get_batch(o["id"]).status.label for o in outcomes} == {"canceled"}, (
        "--wait saw the end"
    )
    refused = cli("jobs", "resume", job_id, "--no-watch", exit_code=ExitCode.REFUSED)
    assert f"job {job_id} was canceled: nothing more is sent" in refused.stderr


def test_a_job_id_this_machine_never_recorded_points_at_jobs_attach(
    queued: dict[str, Any], tmp_path: Path
) -> None:
    cli = queued["cli"]
    job_id = _job(cli, 10, 10)
    elsewhere = {"CBATCH_STATE_DIR": str(tmp_path / "another-machine")}
    for command in (["watch"], ["results", "-o", "x.jsonl"], ["retry"], ["cancel"]):
        told = cli(command[0], job_id, *command[1:], exit_code=ExitCode.NOT_FOUND, env=elsewhere)
        assert f"{job_id} is a job started on another machine" in told.stderr
        assert f"cbatch jobs attach {job_id} --file FILE" in told.stderr
    assert not (tmp_path / "another-machine" / "state.sqlite3").exists()


def test_a_part_batch_id_keeps_working_as_a_batch_and_options_without_meaning_for_a_job_are_refused(
    queued: dict[str, Any], tmp_path: Path
) -> None:
    cli, client = queued["cli"], queued["client"]
    job_id = _job(cli, 20, 10)
    part = json.loads(cli("jobs", "get", job_id, "--json").stdout)["parts"][0]["batch_id"]
    timed = cli("watch", job_id, "--timeout", "1ms", "--plain", exit_code=ExitCode.TIMEOUT)
    assert f"cbatch jobs resume {job_id}" in timed.stderr, "the job's watch, bounded by --timeout"
    shown = cli("watch", part, "--timeout", "1ms", "--plain", exit_code=ExitCode.TIMEOUT)
    assert f"job {job_id}" not in shown.stderr, "a part's batch is watched as a batch"
    cli("cancel", part)
    assert client.get_batch(part).status.label in ("canceling", "canceled")
    others = [
        p["batch_id"] for p in json.loads(cli("jobs", "get", job_id, "--json").stdout)["parts"][1:]
    ]
    assert all(client.get_batch(b).status.label == "queued" for b in others), (
        "a part's cancel cancels that batch alone"
    )

    for args, words in (
        (["results", job_id, "--own"], "--own gives one batch's own records"),
        (["retry", job_id, "--model", "command-a"], "--model has no meaning for job"),
        (["watch", job_id, part], f"{job_id} is a job: give it alone"),
        (["cancel", part, job_id], f"{job_id} is a job: give it alone"),
    ):
        refused = cli(*args, exit_code=ExitCode.USAGE)
        assert words in refused.stderr
    assert client.get_batch(others[0]).status.label == "queued", "a refusal cancels nothing"


def test_results_wait_of_a_job_id_watches_the_job_then_writes_what_jobs_results_writes(
    failing: dict[str, Any], tmp_path: Path
) -> None:
    cli = failing["cli"]
    job_id = _job(cli, 40, 20)
    waited = cli("results", job_id, "-o", "waited.jsonl", "--wait")
    assert f"job {job_id} completed" in waited.stderr, "the job watched to its end first"
    cli("jobs", "results", job_id, "-o", "jobs.jsonl")
    assert (tmp_path / "waited.jsonl").read_bytes() == (tmp_path / "jobs.jsonl").read_bytes()
    cli("results", job_id)  # the default file is named for the job
    assert (tmp_path / f"{job_id}.jsonl").read_bytes() == (tmp_path / "jobs.jsonl").read_bytes()
