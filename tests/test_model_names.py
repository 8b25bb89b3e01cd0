"""Model names are checked against ``GET /v1/models`` before anything is sent (issue 24, item 5).

``create --dataset ds --model comand-r`` made a batch that could only fail, and
``create --file`` only warned. A name the list lacks with a listed name close to
it is refused with the suggestion (exit 2); nothing close is a warning (batch-only
names such as ``batch-embed-v4`` may be missing from the list); a deprecated
model warns. The list is kept briefly, per base URL and profile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, make_dataset, write_jsonl

TYPO = "comand-r-08-2024"


@pytest.fixture
def client(sandbox: Any) -> Any:
    with CohereClient(TEST_KEY, sandbox.base_url) as c:
        yield c


def sent(sandbox: Any, method: str, path: str) -> int:
    return sum(1 for m, p, _ in sandbox.request_log if m == method and p.split("?")[0] == path)


def test_a_likely_typo_is_refused_with_the_listed_name_before_anything_is_sent(
    cli: Cli, client: CohereClient, sandbox: Any, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", chat_records(2))
    dataset_id = make_dataset(client, path)
    before = (sent(sandbox, "POST", "/v2/batches"), sent(sandbox, "POST", "/v1/datasets"))
    for args in (
        ("create", "--dataset", dataset_id, "--model", TYPO),
        ("create", "--file", str(path), "--model", TYPO),
        ("jobs", "create", str(path), "--model", TYPO, "--max-records-per-batch", "1"),
    ):
        refused = cli(*args, exit_code=ExitCode.USAGE).stderr
        assert refused.strip().splitlines()[-1] == (
            f"error: the API lists no model {TYPO!r}; did you mean 'command-r-08-2024'?"
        ), args
    after = (sent(sandbox, "POST", "/v2/batches"), sent(sandbox, "POST", "/v1/datasets"))
    assert after == before, "something was sent for a refused model"


def test_an_unlisted_name_with_nothing_close_and_a_deprecated_one_only_warn(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    dataset_id = make_dataset(client, write_jsonl(tmp_path / "in.jsonl", chat_records(1)))
    unlisted = cli("create", "--dataset", dataset_id, "--model", "batch-embed-v4", "-q")
    assert "warning: the API lists no model 'batch-embed-v4'; sending it anyway" in unlisted.stderr
    assert unlisted.stdout.strip()
    old = cli("create", "--dataset", dataset_id, "--model", "command-r", "--json")
    assert "warning: model 'command-r' is deprecated" in old.stderr
    assert json.loads(old.stdout)["model"] == "command-r"


def test_the_model_list_is_asked_for_once_per_base_url_and_profile(
    cli: Cli, client: CohereClient, sandbox: Any, tmp_path: Path
) -> None:
    dataset_id = make_dataset(client, write_jsonl(tmp_path / "in.jsonl", chat_records(1)))
    before = sent(sandbox, "GET", "/v1/models")
    for _ in range(2):
        cli("create", "--dataset", dataset_id, "--model", "command-r-08-2024", "-q")
    assert sent(sandbox, "GET", "/v1/models") - before == 1
    config = tmp_path / "config.toml"
    config.write_text('[profiles.other]\nclient_name = "other"\n', encoding="utf-8")
    cli("--profile", "other", "create", "--dataset", dataset_id, "--model", "command-r-08-2024",
        "-q", env={"CBATCH_CONFIG": str(config)})  # fmt: skip
    assert sent(sandbox, "GET", "/v1/models") - before == 2
