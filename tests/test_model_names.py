"""Model names are checked against ``GET /v1/models`` before anything is sent (issue 24, item 5).

``create --dataset ds --model comand-r`` made a batch that could only fail, and
``create --file`` only warned. A name the list lacks with a listed name close to
it is refused with the suggestion (exit 2); nothing close is a warning (batch-only
names such as ``batch-embed-v4`` may be missing from the list); a deprecated
model warns. The list is kept briefly, per base URL and profile. Driven through the
Python API in-process (``client.create``, ``create_job``), with one command-line case for
how ``cbatch`` words the refusal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, make_dataset, write_jsonl
from tests.support.quiet import nothing_printed

TYPO = "comand-r-08-2024"


@pytest.fixture
def api_client(sandbox: Any) -> Any:
    with CohereClient(TEST_KEY, sandbox.base_url) as c:
        yield c


def sent(sandbox: Any, method: str, path: str) -> int:
    return sum(1 for m, p, _ in sandbox.request_log if m == method and p.split("?")[0] == path)


def test_a_likely_typo_is_refused_with_the_listed_name_before_anything_is_sent(
    cli: Cli, client: cb.Client, api_client: CohereClient, sandbox: Any, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", chat_records(2))
    dataset_id = make_dataset(api_client, path)
    before = (sent(sandbox, "POST", "/v2/batches"), sent(sandbox, "POST", "/v1/datasets"))
    for call in (
        lambda: client.create(cb.Dataset(dataset_id), model=TYPO),
        lambda: client.create(path, model=TYPO),
        lambda: client.create_job(path, model=TYPO, split=cb.Split(max_records=1)),
    ):
        with nothing_printed(), pytest.raises(cb.UsageError) as refused:
            call()
        assert refused.value.exit_code == ExitCode.USAGE
        assert str(refused.value) == (
            f"the API lists no model {TYPO!r}; did you mean 'command-r-08-2024'?"
        )
    said = cli("create", "--dataset", dataset_id, "--model", TYPO, exit_code=ExitCode.USAGE)
    assert said.stderr.strip().splitlines()[-1] == (
        f"error: the API lists no model {TYPO!r}; did you mean 'command-r-08-2024'?"
    )
    after = (sent(sandbox, "POST", "/v2/batches"), sent(sandbox, "POST", "/v1/datasets"))
    assert after == before, "something was sent for a refused model"


def test_an_unlisted_name_with_nothing_close_and_a_deprecated_one_only_warn(
    client: cb.Client, api_client: CohereClient, tmp_path: Path, logged: Any
) -> None:
    dataset_id = make_dataset(api_client, write_jsonl(tmp_path / "in.jsonl", chat_records(1)))
    with nothing_printed():
        unlisted = client.create(cb.Dataset(dataset_id), model="batch-embed-v4")
    assert "the API lists no model 'batch-embed-v4'; sending it anyway" in logged()
    assert unlisted.batch.model == "batch-embed-v4"
    with nothing_printed():
        old = client.create(cb.Dataset(dataset_id), model="command-r")
    assert "model 'command-r' is deprecated" in logged()
    assert old.batch.model == "command-r"


def test_the_model_list_is_asked_for_once_per_base_url_and_profile(
    client: cb.Client, api_client: CohereClient, sandbox: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    dataset_id = make_dataset(api_client, write_jsonl(tmp_path / "in.jsonl", chat_records(1)))
    before = sent(sandbox, "GET", "/v1/models")
    with nothing_printed():
        for _ in range(2):
            client.create(cb.Dataset(dataset_id), model="command-r-08-2024")
    assert sent(sandbox, "GET", "/v1/models") - before == 1
    config = tmp_path / "config.toml"
    config.write_text('[profiles.other]\nclient_name = "other"\n', encoding="utf-8")
    monkeypatch.setenv("CBATCH_CONFIG", str(config))
    with (
        nothing_printed(),
        cb.Client(TEST_KEY, base_url=sandbox.base_url, profile="other") as other,
    ):
        other.create(cb.Dataset(dataset_id), model="command-r-08-2024")
    assert sent(sandbox, "GET", "/v1/models") - before == 2


def test_a_model_of_the_other_kind_is_refused_before_anything_is_sent(
    client: cb.Client, tmp_path: Path, posts: Any
) -> None:
    """An embed table sent to a chat model (or chat requests to an embed model) would fail every
    record, or be judged against the wrong context: the API's list says which endpoints a model
    serves, and the check refuses the mismatch (exit 2), for a batch and for a job."""
    table = tmp_path / "docs.csv"
    table.write_text("text\nalpha\nbeta\n")
    cases = [
        (cb.EmbedTable(table, "text"), "command-r-08-2024", "serves chat, not embed"),
        (cb.PromptTable(table, "{{ text }}"), "embed-english-v3.0", "serves embed, not chat"),
    ]
    with nothing_printed():
        for source, model, says in cases:
            for send in (client.create, client.create_job):
                with pytest.raises(cb.UsageError) as refused:
                    send(source, model=model)
                assert refused.value.exit_code == 2 and f"model {model} {says}" in str(
                    refused.value
                )
        assert client.jobs() == []
    assert posts() == []
