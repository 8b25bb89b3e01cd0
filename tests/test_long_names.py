"""Every name cbatch derives fits the service's limits and keeps what tells it apart (issue 24, item 6).

A long ``--name`` broke ``create --file``: the dataset was named after it and
refused at upload, after the whole file was checked. A long job name lost the
part number from its datasets' ids (an id keeps the name's first 48
characters). A dataset name the user gives is refused before any upload.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, write_jsonl

LONG = "the nightly evaluation run of the search relevance team, second attempt"


@pytest.fixture
def client(sandbox: Any) -> Any:
    with CohereClient(TEST_KEY, sandbox.base_url) as c:
        yield c


def test_a_long_name_makes_a_batch_of_that_name_from_a_file(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", chat_records(2))
    name = f"{LONG} {time.monotonic_ns()}"
    batch_id = cli("create", "--file", str(path), "--model", "command-r", "--name", name, "-q")
    batch = client.get_batch(batch_id.stdout.strip())
    assert batch.name == name
    dataset = client.get_dataset(batch.input_dataset_id)
    assert len(dataset.name) <= naming.DERIVED_NAME_MAX and name.startswith(dataset.name)


def test_a_long_file_name_is_uploaded_under_a_name_that_fits(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / f"{LONG.replace(' ', '_')}.jsonl", chat_records(1))
    cli("datasets", "upload", str(path), "-q")


def test_a_dataset_name_the_api_would_refuse_is_refused_before_the_upload(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", chat_records(1))
    uploads = sum(
        1 for m, p, _ in sandbox.request_log if m == "POST" and p.startswith("/v1/datasets")
    )
    refused = cli("datasets", "upload", str(path), "--name", LONG, exit_code=ExitCode.USAGE)
    assert refused.stderr.strip() == (
        f"error: --name is {len(LONG)} characters; a dataset name must be under 50"
    )
    after = sum(
        1 for m, p, _ in sandbox.request_log if m == "POST" and p.startswith("/v1/datasets")
    )
    assert after == uploads


def test_a_long_job_name_keeps_each_part_number_in_its_dataset_ids(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "in.jsonl", chat_records(4))
    job_id = cli(
        "jobs", "create", "in.jsonl", "--model", "command-r", "--name", LONG,
        "--max-records-per-batch", "2", "-q",
    ).stdout.strip()  # fmt: skip
    short = re.sub(r"[^a-z0-9]+", "-", job_id.lower())
    made = [d for d in client.iter_datasets() if f"-{short}-p" in d.id]
    parts = sorted(int(re.search(rf"-{short}-p(\d+)", d.id).group(1)) for d in made)  # type: ignore[union-attr]
    assert parts == [1, 2], [d.id for d in made]


def test_every_derived_name_fits_and_ends_with_its_tag() -> None:
    for lineage in (
        naming.Lineage(job_id="j7f3k2qabcdefghijkl", part=123456, attempt=99),
        naming.Lineage(root_batch_id="3a21ff4a-03d6-4a8c-b324-3f5f5e292b57", attempt=99999),
    ):
        name = naming.dataset_name(LONG * 3, lineage)
        assert len(name) <= naming.DERIVED_NAME_MAX
        assert name.endswith(naming.dataset_name("", lineage))
