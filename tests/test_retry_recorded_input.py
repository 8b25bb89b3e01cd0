"""``retry`` keeps the recorded input file once the input dataset is gone (issue 24, item 3).

The state store found the recorded file through the batch's input dataset id;
once that dataset expired (or was deleted), the API shows the batch with an
empty ``input_dataset_id``, the next look at the chain wrote that empty id over
the one recorded at creation, and ``retry`` said "cbatch recorded no file for
it", minutes after printing that file's path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.client import CohereClient
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, wait_terminal, write_jsonl


@pytest.fixture
def client(sandbox: Any) -> Any:
    with CohereClient(TEST_KEY, sandbox.base_url) as c:
        yield c


def test_retry_reads_the_recorded_file_after_the_input_dataset_is_gone(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "requests.jsonl", chat_records(4, fail={2}))
    made = json.loads(cli("create", "--file", str(path), "--model", "command-r", "--json").stdout)
    batch = wait_terminal(client, made["id"])
    recorded = f"{path.resolve()} (recorded when batch {batch.id} was created from it; unchanged)"
    assert recorded in cli("retry", batch.id, "--dry-run").stderr
    client.delete_dataset(batch.input_dataset_id)  # as if its 30 days were over
    assert not client.get_batch(batch.id).input_dataset_id
    for _ in range(2):  # the first look at the chain sees the empty id; the second must not forget
        planned = cli("retry", batch.id, "--dry-run")
        assert recorded in planned.stderr and "r-2" in planned.stdout
