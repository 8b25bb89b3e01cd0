"""Names and short ids are resolved against the API (issue 24, item 1).

A listing remembered from ten minutes ago does not know the batch made a
minute ago: ``cbatch list``, then a second batch named ``nightly``, then
``cbatch cancel nightly --yes`` must say "matches 2 batches", never cancel the
older one. The completion cache serves Tab alone, per base URL and profile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, make_batch, make_dataset, wait_terminal, write_jsonl

CBATCH = str(Path(sys.executable).parent / "cbatch")


@pytest.fixture
def client(sandbox: Any) -> Any:
    with CohereClient(TEST_KEY, sandbox.base_url) as c:
        yield c


@pytest.fixture(scope="module")
def slow_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """5 records/s: a batch of 100 is still running when the test cancels it."""
    settings = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("slow"), port=0, records_per_second=5.0,
        queue_delay=0.0, validation_delay=0.0,
    )  # fmt: skip
    with SandboxServer(settings) as server:
        yield server


@pytest.fixture
def slow(slow_sandbox: SandboxServer) -> Iterator[tuple[Cli, CohereClient]]:
    with CohereClient(TEST_KEY, slow_sandbox.base_url) as c:
        yield Cli(slow_sandbox.base_url, TEST_KEY), c


def unique(stem: str) -> str:
    return f"{stem}-{time.monotonic_ns()}"


def listings(sandbox: Any) -> int:
    """Listings begun (first pages: a listing's later pages carry a page token)."""
    return sum(
        1
        for method, path, _ in sandbox.request_log
        if method == "GET" and path.split("?")[0] == "/v2/batches" and "page_token=" not in path
    )


def test_a_name_listed_before_a_second_batch_took_it_is_ambiguous(
    slow: tuple[Cli, CohereClient], tmp_path: Path
) -> None:
    cli, client = slow
    name = unique("nightly")
    older = make_batch(client, tmp_path, 100, name=name)
    cli("list", "--limit", "5")  # the listing a user saw: one batch of that name
    newer = make_batch(client, tmp_path, 100, name=name)
    for args in (("cancel", name, "--yes"), ("get", name), ("watch", name)):
        refused = cli(*args, exit_code=ExitCode.USAGE).stderr
        assert "matches 2 batches" in refused and older.id in refused and newer.id in refused, args
    assert client.get_batch(older.id).status.label == "in progress", "the older batch was cancelled"


def test_one_listing_resolves_every_name_a_command_is_given(
    slow: tuple[Cli, CohereClient], slow_sandbox: SandboxServer, tmp_path: Path
) -> None:
    cli, client = slow
    names = [unique(f"many-{n}") for n in range(3)]
    batches = [make_batch(client, tmp_path, 100, name=name) for name in names]
    before = listings(slow_sandbox)
    done = cli("cancel", "-", "--yes", input="\n".join([*names, batches[0].id[:10]]) + "\n")
    assert listings(slow_sandbox) - before == 1
    for batch in batches:
        assert f"{batch.id}: cancel requested" in done.stderr


def test_retry_estimate_and_create_take_names_and_prefixes(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    name = unique("resolve-me")
    batch = wait_terminal(client, make_batch(client, tmp_path, 3, fail={1}, name=name).id)
    planned = cli("retry", name, "--dry-run")
    assert f"is batch {batch.id}" in planned.stderr and "r-1" in planned.stdout
    requests = write_jsonl(tmp_path / "counted.jsonl", chat_records(3))
    estimated = cli("estimate", str(requests), "--batch", batch.id[:9], "--json")
    assert batch.id in estimated.stdout

    stem = unique("by-dataset-name")
    dataset_id = make_dataset(client, write_jsonl(tmp_path / f"{stem}.jsonl", chat_records(1)))
    made = cli("create", "--dataset", stem, "--model", "command-r", "--json")
    assert f'"input_dataset_id": "{dataset_id}"' in made.stdout.replace('":"', '": "')
    (tmp_path / "again").mkdir()
    make_dataset(client, write_jsonl(tmp_path / "again" / f"{stem}.jsonl", chat_records(1)))
    twice = cli("create", "--dataset", stem, "--model", "command-r", exit_code=ExitCode.USAGE)
    assert "matches 2 datasets" in twice.stderr


def complete(words: str, base_url: str) -> list[str]:
    env = {
        **os.environ,
        "CO_API_URL": base_url,
        "_CBATCH_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    done = subprocess.run([CBATCH], env=env, capture_output=True, text=True, timeout=30)
    return done.stdout.split()


def test_completion_offers_only_ids_listed_on_the_same_server_and_profile(
    cli: Cli, client: CohereClient, sandbox: Any, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, 1, name=unique("complete-me"))
    cli("list", "--limit", "3")
    assert batch.id in complete(f"cbatch get {batch.id[:6]}", sandbox.base_url)
    assert complete(f"cbatch get {batch.id[:6]}", "http://127.0.0.1:9") == []
    assert complete(f"cbatch --profile other get {batch.id[:6]}", sandbox.base_url) == []


def test_a_dataset_name_is_found_past_a_capped_page_of_the_listing() -> None:
    from tests.test_careless_input import CappedDatasetsApi

    api = CappedDatasetsApi().start()
    try:
        for i in range(5):
            api.datasets[f"zz-{i}"] = {
                **api._dataset(f"zz-{i}", "batch-chat-v2-input"),
                "name": f"named-{i}",
            }
        shown = Cli(api.base_url, TEST_KEY)("datasets", "get", "named-4", "-q")
        assert shown.stdout.strip() == "zz-4" and "'named-4' is dataset zz-4" in shown.stderr
    finally:
        api.stop()
