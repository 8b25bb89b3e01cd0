"""A table run under an idempotency key is the same request however full the answer cache is.

A CI step that ran ``create --from ... --idempotency-key K`` and then ``results``
(which fills the answer cache) may be retried whole: the same command then
renders the table again, the cache now answers rows the first call sent, and
fewer requests are left to send. That must still read as the same request,
and give back the run the first call made, with its results as they were.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import Cli
from tests.support.keyed import job_made_for, made_for

MODEL = "command-r-08-2024"


def _reviews(tmp_path: Path) -> Path:
    table = tmp_path / "reviews.csv"
    table.write_text("id,text\n1,great\n2,awful\n3,great\n4,fine\n", encoding="utf-8")
    return table


def test_a_keyed_table_run_made_again_once_its_answers_are_cached_is_the_same_batch(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    table = _reviews(tmp_path)
    key = f"ci-table-{uuid.uuid4()}"
    command = ("create", "--from", str(table), "--prompt", "Classify: {{ text }}",
               "--model", MODEL, "--id-column", "id", "--idempotency-key", key)  # fmt: skip
    first = cli(*command, "-q").stdout.strip()
    cli("watch", first, "--plain")
    cli("results", first, "-o", str(tmp_path / "first.csv"))  # the cache now holds 3 answers

    again = cli(*command, "-q")

    assert again.stdout.strip() == first
    batches, datasets = made_for(sandbox, key)
    assert batches == [first] and len(datasets) == 1  # no second upload, no second batch
    cli("results", first, "-o", str(tmp_path / "again.csv"))
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "first.csv").read_bytes()


def test_a_keyed_table_job_made_again_once_its_answers_are_cached_is_the_same_job(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    table = _reviews(tmp_path)
    key = f"ci-table-job-{uuid.uuid4()}"
    command = ("jobs", "create", "--from", str(table), "--prompt", "Classify: {{ text }}",
               "--model", MODEL, "--max-records-per-batch", "2", "--idempotency-key", key)  # fmt: skip
    job = cli(*command, "-q").stdout.strip()
    cli("jobs", "watch", job, "--plain")
    cli("results", job, "-o", str(tmp_path / "first.csv"))

    assert cli(*command, "-q").stdout.strip() == job

    batches, datasets = job_made_for(sandbox, key)
    assert len(batches) == 2 and len(datasets) == 2  # 3 distinct requests, 2 a part: sent once
    cli("results", job, "-o", str(tmp_path / "again.csv"))
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "first.csv").read_bytes()


def test_a_keyed_table_run_asked_without_its_dedupe_is_another_request(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    table = _reviews(tmp_path)
    key = f"ci-table-dedupe-{uuid.uuid4()}"
    command = ("create", "--from", str(table), "--prompt", "Classify: {{ text }}",
               "--model", MODEL, "--idempotency-key", key, "-q")  # fmt: skip
    first = cli(*command).stdout.strip()

    refused = cli(*command, "--no-dedupe", exit_code=ExitCode.KEY_REUSED)

    assert 'dedupe: not given, now "off"' in refused.stderr
    assert made_for(sandbox, key)[0] == [first]


def test_a_keyed_table_run_of_a_changed_table_is_another_request(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    table = _reviews(tmp_path)
    key = f"ci-table-changed-{uuid.uuid4()}"
    command = ("create", "--from", str(table), "--prompt", "Classify: {{ text }}",
               "--model", MODEL, "--idempotency-key", key, "-q")  # fmt: skip
    first = cli(*command).stdout.strip()
    table.write_text(table.read_text(encoding="utf-8") + "5,meh\n", encoding="utf-8")

    refused = cli(*command, exit_code=ExitCode.KEY_REUSED)

    assert "input: fingerprint" in refused.stderr
    assert made_for(sandbox, key)[0] == [first]
