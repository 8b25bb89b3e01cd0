"""A schema run's invalid answers through the Python API: retried alone, and recovered in the table.

The sandbox breaks 40 % of the structured answers on purpose (drawn afresh for
each batch, so a retry can recover them) and fails 20 % of the records. ``Run.retry(only_invalid=True)`` and
``Job.retry(only_invalid=True)`` are ``cbatch retry --invalid`` and ``cbatch
jobs retry --invalid``: what they send is the invalid rows' requests alone, and
the table afterwards has every row valid, in order, its failures left as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from tests.conftest import TEST_KEY
from tests.support.quiet import nothing_printed
from tests.support.schemas import REVIEW

ROWS = 24
MODEL = "command-r-08-2024"


@pytest.fixture
def breaking(tmp_path: Path) -> Iterator[Any]:
    """A sandbox of its own that breaks 40 % of the structured answers and fails 20 % of the records."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0, queue_delay=0.0,
        validation_delay=0.0, invalid_output_rate=0.4, transient_fail_rate=0.2, seed=11,
    )  # fmt: skip
    with SandboxServer(settings) as server:
        yield server


def _table(tmp_path: Path) -> cb.PromptTable:
    table = tmp_path / "reviews.csv"
    table.write_text(
        "id,review\n" + "".join(f"r{i:02d},review number {i}\n" for i in range(ROWS)),
        encoding="utf-8",
    )
    return cb.PromptTable(table, "{{ review }}", schema=REVIEW, id_column="id", cache=False)


def _batches(client: cb.Client) -> dict[str, str]:
    """Every batch on the sandbox: its id and its input dataset's."""
    return {run.id: run.batch.input_dataset_id or "" for run in client.runs()}


def _sent_ids(server: Any, client: cb.Client, before: dict[str, str]) -> list[str]:
    """The custom_ids of the records the batches made since ``before`` were sent."""
    from tests.sandbox.sandbox_client import Api

    api = Api(server)
    try:
        new = [ds for batch, ds in _batches(client).items() if batch not in before]
        return [r["custom_id"] for ds in new for part in api.parts(ds) for r in part]
    finally:
        api.close()


def _statuses(made: cb.Run | cb.Job, tmp_path: Path) -> dict[str, str]:
    out = tmp_path / f"{made.id}.parquet"
    made.results(out)
    import pyarrow.parquet as pq

    rows = pq.read_table(out, columns=["id", "status"]).to_pylist()
    return {row["id"]: row["status"] for row in rows}


def test_run_retry_only_invalid_sends_the_invalid_answers_alone_and_recovers_them(
    breaking: Any, tmp_path: Path
) -> None:
    with nothing_printed(), cb.Client(TEST_KEY, base_url=breaking.base_url) as client:
        run = client.create(_table(tmp_path), model=MODEL).wait(timeout=60, interval=0.1)
        first = _statuses(run, tmp_path)
        invalid = sorted(i for i, status in first.items() if status == "invalid")
        failed = {i for i, status in first.items() if status == "failed"}
        assert invalid and failed  # both kinds are there: only the invalid ones go
        before = _batches(client)

        newest = run.retry(only_invalid=True, rounds=1, timeout=60, interval=0.1)

        assert sorted(_sent_ids(breaking, client, before)) == invalid  # the invalid rows alone
        newest = newest.retry(only_invalid=True, rounds=6, pause=0.05, timeout=120, interval=0.1)
        after = _statuses(newest, tmp_path)
    assert list(after) == list(first)  # every row, in the table's order
    left = {i for i, status in after.items() if status != "succeeded"}
    assert failed <= left  # never sent again: only the invalid answers were
    assert len(left - failed) < len(invalid)  # invalid answers recovered (a resend may fail too)


def test_job_retry_only_invalid_sends_each_parts_invalid_answers_alone(
    breaking: Any, tmp_path: Path
) -> None:
    with nothing_printed(), cb.Client(TEST_KEY, base_url=breaking.base_url) as client:
        job = client.create_job(_table(tmp_path), model=MODEL, split=cb.Split(max_records=10))
        job.wait(timeout=60, interval=0.1)
        first = _statuses(job, tmp_path)
        invalid = sorted(i for i, status in first.items() if status == "invalid")
        failed = {i for i, status in first.items() if status == "failed"}
        assert invalid and failed  # both kinds are there: only the invalid ones go
        before = _batches(client)

        job.retry(only_invalid=True, rounds=1, timeout=60, interval=0.1)

        assert sorted(_sent_ids(breaking, client, before)) == invalid
        job.retry(only_invalid=True, rounds=6, pause=0.05, timeout=120, interval=0.1)
        after = _statuses(job, tmp_path)
    assert list(after) == list(first)
    left = {i for i, status in after.items() if status != "succeeded"}
    assert failed <= left  # never sent again: only the invalid answers were
    assert len(left - failed) < len(invalid)  # invalid answers recovered (a resend may fail too)
