"""What cbatch says names what the user gave and what really happens (issue 24, items 7, 9 and 10).

Each test runs the command a user would and reads what it printed: an input read from
stdin is ``stdin`` in every line, never the temporary copy cbatch reads it from; a job's
words are one vocabulary; a hint names only options the command takes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.models import Batch
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, make_batch, wait_terminal, write_jsonl

MODEL = "command-r-08-2024"


def test_create_file_dash_names_stdin_in_every_line(cli: Cli, tmp_path: Path) -> None:
    lines = write_jsonl(tmp_path / "r.jsonl", chat_records(3)).read_text(encoding="utf-8")
    result = cli("create", "--file", "-", "--model", MODEL, "-q", input=lines)
    assert "stdin: every record fits the context of" in result.stderr
    assert "cbatch-input" not in result.stderr and "/tmp" not in result.stderr, result.stderr


def test_a_canceled_batchs_results_say_what_never_ran_and_warn_of_nothing(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    """Records a cancel stopped are not "counts that do not add up" (issue 24, item 9)."""
    with CohereClient(TEST_KEY, sandbox.base_url) as client:
        batch = make_batch(client, tmp_path, 10_000, name="cut-short")
        deadline = time.monotonic() + 30
        while client.get_batch(batch.id).num_processed == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        client.cancel_batch(batch.id)
        ended = wait_terminal(client, batch.id)
    ran = ended.num_successful_records + ended.num_failed_records
    assert 0 < ran < 10_000, ended.raw
    result = cli("results", batch.id, "-o", str(tmp_path / "out.jsonl"))
    assert "counts do not add up" not in result.stderr and "warning" not in result.stderr
    assert (
        f"batch {batch.id} was canceled: {10_000 - ran:,} records of 10,000 never ran, "
        "so they have no result"
    ) in result.stderr
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == ran


def _failing_job(cli: Cli, tmp_path: Path) -> str:
    path = write_jsonl(tmp_path / "jf.jsonl", chat_records(6, fail={1, 4}))
    args = ("jobs", "create", str(path), "--model", MODEL, "--max-records-per-batch", "3")
    return cli(*args, "--watch", "-q", "--plain", "--interval", "0.2s").stdout.split()[0]


def test_jobs_retry_dry_run_says_per_part_what_would_be_sent_and_sends_nothing(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    """``jobs retry --dry-run`` is ``retry --dry-run`` for each part; its input line names the job's file
    (issue 24, items 7 and 10)."""
    job = _failing_job(cli, tmp_path)
    start = len(sandbox.request_log)
    result = cli("jobs", "retry", job, "--dry-run")
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["r-1", "r-4"]
    for part in (1, 2):
        assert f"part {part} of 2: 1 record to send again" in result.stderr
        assert f"input: part {part} of {tmp_path / 'jf.jsonl'} (3 records," in result.stderr
        assert f"a retry would be batch 'jf [job {job} part {part} retry 1]'" in result.stderr
    assert "retry-input" not in result.stderr and "--input" not in result.stderr
    assert [p for m, p, _ in sandbox.request_log[start:] if m == "POST"] == []


def test_jobs_results_names_what_it_takes_for_records_without_a_result(tmp_path: Path) -> None:
    """``jobs results`` takes no ``--join``: its count warning points at ``jobs retry --dry-run`` (issue 24, item 7)."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=2000.0, queue_delay=0.0,
        validation_delay=0.0, missing_rate=0.5, seed=3,
    )  # fmt: skip
    with SandboxServer(settings) as server:
        cli = Cli(server.base_url, TEST_KEY)
        path = write_jsonl(tmp_path / "m.jsonl", chat_records(20))
        job = cli(
            "jobs", "create", str(path), "--model", MODEL, "--max-records-per-batch", "10",
            "--watch", "-q", "--plain", "--interval", "0.2s",
        ).stdout.split()[0]  # fmt: skip
        result = cli("jobs", "results", job, "-o", str(tmp_path / "out.jsonl"))
    assert "counts do not add up" in result.stderr
    assert f"(cbatch jobs retry {job} --dry-run names them)" in result.stderr
    assert "--join" not in result.stderr


def test_a_jobs_watch_ends_pointing_at_the_jobs_one_results_file(cli: Cli, tmp_path: Path) -> None:
    """A part's end names ``cbatch jobs results JOB``, never a part's own ``cbatch results ID`` nor
    ``cbatch list --status completed -q`` (the account's newest, not these parts) (issue 24, item 7)."""
    from cohere_batch_cli.output.watch_views import BatchView, WatchState, render_summary
    from cohere_batch_cli.watcher import AllDone

    job = _failing_job(cli, tmp_path)
    shown = (
        cli("jobs", "resume", job, "--plain").stdout
        + cli("jobs", "retry", job, "--plain", "--interval", "0.2s", exit_code=12).stdout
    )
    ends = [line for line in shown.splitlines() if "get results:" in line]
    assert ends and all(
        line.endswith(f"get results: cbatch jobs results {job} -o results.jsonl") for line in ends
    ), ends
    command = f"cbatch jobs results {job} -o results.jsonl"
    batches = [
        Batch.from_api(
            {
                "id": f"b-{n}",
                "name": f"jf [job {job} part {n}]",
                "output_dataset_id": f"o-{n}",
                "status": "BATCH_STATUS_COMPLETED",
                "num_records": 3,
            }
        )
        for n in range(5)
    ]
    state = WatchState([b.id for b in batches], results=command)
    state.views = {b.id: BatchView(b) for b in batches}
    state.outcome = AllDone(tuple(batches), ExitCode.OK, 1.0)
    text = "\n".join(line.plain for line in render_summary(state))
    assert f"results of the 5 completed: {command}" in text and "cbatch list" not in text
    state.results = None  # batches of no job: each one's own results, never the account's newest
    text = "\n".join(line.plain for line in render_summary(state))
    assert "results of the 5 completed: cbatch results ID -o results-ID.jsonl" in text
    assert "cbatch list" not in text


def test_jobs_list_speaks_the_words_of_jobs_get(cli: Cli, tmp_path: Path) -> None:
    """No ``split`` or ``done`` in ``jobs list`` where ``jobs get`` says ``running`` or ``completed``
    (issue 24, item 10)."""
    path = write_jsonl(tmp_path / "ok.jsonl", chat_records(4))
    args = ("jobs", "create", str(path), "--model", MODEL, "--max-records-per-batch", "2")
    watched = cli(*args, "--watch", "-q", "--plain", "--interval", "0.2s").stdout.split()[0]
    sent = cli(*args, "-q").stdout.split()[0]
    rows = {
        line.split("\t")[0]: line.split("\t") for line in cli("jobs", "list").stdout.splitlines()
    }
    assert rows[watched][2] == "ended"
    assert json.loads(cli("jobs", "get", watched, "--json").stdout)["status"] == "completed"
    assert rows[sent][2] == "running"
    listed = {j["id"]: j["status"] for j in json.loads(cli("jobs", "list", "--json").stdout)}
    assert listed == {watched: "ended", sent: "running"}


def test_a_canceled_batch_and_a_canceled_job_that_ran_nothing_follow_one_rule(
    tmp_path: Path,
) -> None:
    """No record ran: no results, exit 4 and no file, for a batch as for a job (issue 24, item 9)."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, queue_delay=600.0, validation_delay=0.0
    )
    with SandboxServer(settings) as server:
        cli = Cli(server.base_url, TEST_KEY)
        with CohereClient(TEST_KEY, server.base_url) as client:
            batch = make_batch(client, tmp_path, 2, name="never-ran")
            client.cancel_batch(batch.id)
            wait_terminal(client, batch.id)
        path = write_jsonl(tmp_path / "j.jsonl", chat_records(4))
        job = cli(
            "jobs", "create", str(path), "--model", MODEL, "--max-records-per-batch", "2", "-q"
        ).stdout.split()[0]
        cli("jobs", "cancel", job)
        with CohereClient(TEST_KEY, server.base_url) as client:
            deadline = time.monotonic() + 30
            while not all(b.status.is_terminal for b in client.iter_batches()):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        for args, what in (
            (("results", batch.id), f"batch {batch.id}"),
            (("jobs", "results", job), f"job {job}"),
        ):
            out = tmp_path / f"{what.split()[0]}.jsonl"
            result = cli(*args, "-o", str(out), exit_code=ExitCode.NOT_FOUND)
            assert result.stderr.strip().splitlines()[-1] == (
                f"error: {what} was canceled before any record ran: there are no results to download"
            )
            assert not out.exists()
