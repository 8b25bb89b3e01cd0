"""A listing cut by its limit says so (issue 24, item 2).

``cbatch list -q --status queued | cbatch cancel -`` stopped at ``list``'s
default limit of 20 with nothing said: 25 queued, 20 cancelled. Whenever a
next page or an unread row exists, stderr says "N shown, more exist; --all for
every one", in every output mode, from the pages already read: never one more
request just to count.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.client import CohereClient
from tests.conftest import TEST_KEY, Cli
from tests.support.fault_server import FaultServer, batch_json
from tests.support.flows import make_batch

MODES = ([], ["-q"], ["--json"], ["--jsonl"], ["--format", "csv"], ["--query", "[].id"])


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m) or "plain")
def test_a_listing_stopped_by_its_limit_says_more_exist_without_asking_for_them(
    fault_cli: Cli, fault_server: FaultServer, mode: list[str]
) -> None:
    page = {"batches": [batch_json("b-1"), batch_json("b-2")], "next_page_token": "t2"}
    fault_server.steady["GET /v2/batches"] = (200, {}, page)
    result = fault_cli("list", "--limit", "2", *mode)
    assert "b-2" in result.stdout
    assert result.stderr.splitlines()[-1] == "2 shown, more exist; --all for every one"
    assert fault_server.count("GET /v2/batches") == 1, "a page was read just to count"


def test_a_listing_that_holds_everything_says_nothing_more(
    fault_cli: Cli, fault_server: FaultServer
) -> None:
    page = {"batches": [batch_json("b-1"), batch_json("b-2")]}
    fault_server.steady["GET /v2/batches"] = (200, {}, page)
    assert "more" not in fault_cli("list", "--limit", "2", "-q").stderr
    assert "more" not in fault_cli("list", "-q").stderr


@pytest.fixture
def client(sandbox: Any) -> Any:
    with CohereClient(TEST_KEY, sandbox.base_url) as c:
        yield c


def test_a_filtered_listing_cut_by_its_limit_says_so(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    stem = f"cut-{time.monotonic_ns()}"
    for n in range(3):
        make_batch(client, tmp_path, 1, name=f"{stem}-{n}")
    cut = cli("list", "--name", stem, "--limit", "2", "-q")
    assert len(cut.stdout.split()) == 2
    assert "2 shown, more exist; --all for every one" in cut.stderr
    whole = cli("list", "--name", stem, "--all", "-q")
    assert len(whole.stdout.split()) == 3 and "more" not in whole.stderr


def test_a_dataset_listing_cut_by_its_limit_says_so_in_the_same_request(
    fault_cli: Cli, fault_server: FaultServer
) -> None:
    page = {
        "datasets": [
            {"id": f"ds-{i}", "name": f"ds-{i}", "dataset_type": "batch-chat-v2-input",
             "validation_status": "validated"}
            for i in range(3)
        ]
    }  # fmt: skip
    fault_server.plans["GET /v1/datasets"] = [
        (200, {}, page),
        (200, {}, page),
        (200, {}, {"datasets": []}),
    ]
    cut = fault_cli("datasets", "list", "--limit", "2", "-q")
    assert cut.stdout.split() == ["ds-0", "ds-1"]
    assert cut.stderr.splitlines()[-1] == "2 shown, more exist; without --limit, every one"
    assert fault_server.count("GET /v1/datasets") == 1
    whole = fault_cli("datasets", "list", "--limit", "3", "-q")
    assert len(whole.stdout.split()) == 3 and "more" not in whole.stderr
