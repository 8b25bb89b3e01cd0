"""create, list, get and cancel against the real sandbox, in every output mode."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.models import BatchStatus
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, make_batch, make_dataset, wait_terminal, write_jsonl


@pytest.fixture
def client(sandbox: object) -> Iterator[CohereClient]:
    with CohereClient(TEST_KEY, sandbox.base_url) as c:  # type: ignore[attr-defined]
        yield c


@pytest.fixture
def dataset_id(client: CohereClient, tmp_path: Path) -> str:
    return make_dataset(client, write_jsonl(tmp_path / "in.jsonl", chat_records(4)))


def test_create_as_written_in_the_issue(cli: Cli, dataset_id: str) -> None:
    result = cli("create", "--name", "foo", "--dataset", dataset_id, "--model", "command-r")
    assert "created batch" in result.stderr
    assert "Name:" in result.stdout and "foo" in result.stdout
    assert (
        "queued" in result.stdout or "in progress" in result.stdout or "completed" in result.stdout
    )


def test_create_json_prints_the_batch_itself(cli: Cli, dataset_id: str) -> None:
    result = cli(
        "create",
        "--name",
        "json-one",
        "--dataset",
        dataset_id,
        "--model",
        "command-r-08-2024",
        "--json",
    )  # fmt: skip (a current model: a deprecated one's warning is on stderr)
    batch = json.loads(result.stdout)
    assert batch["name"] == "json-one" and batch["status"] == "BATCH_STATUS_QUEUED"
    assert isinstance(batch["input_tokens"], str), "the API's own object, token counts as sent"
    assert result.stderr == ""


def test_create_quiet_prints_only_the_id(cli: Cli, dataset_id: str, client: CohereClient) -> None:
    result = cli("create", "-n", "quiet-one", "-d", dataset_id, "-m", "command-r", "-q")
    batch_id = result.stdout.strip()
    assert client.get_batch(batch_id).name == "quiet-one"


def test_create_with_an_unknown_dataset_is_refused(cli: Cli) -> None:
    result = cli(
        "create",
        "-n",
        "x",
        "-d",
        "no-such-dataset",
        "-m",
        "command-r",
        exit_code=ExitCode.NOT_FOUND,
    )
    assert "no-such-dataset" in result.stderr


def test_get_json_works_with_jq_style_access(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, 3)
    wait_terminal(client, batch.id)
    data = json.loads(cli("get", batch.id, "--json").stdout)
    assert data["id"] == batch.id and data["status"] == "BATCH_STATUS_COMPLETED"
    assert data["num_successful_records"] == 3


def test_get_plain_shows_every_field_readably(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, 3, fail={1})
    wait_terminal(client, batch.id)
    out = cli("get", batch.id).stdout
    assert "Status:" in out and "completed" in out
    assert (
        "Records:        3\n" in out
        and "Succeeded:      2\n" in out
        and "Failed:         1\n" in out
    )
    assert "\x1b[" not in out, "no colour when stdout is not a terminal"


def test_get_unknown_batch_exits_4(cli: Cli) -> None:
    result = cli("get", "00000000-0000-0000-0000-000000000000", exit_code=ExitCode.NOT_FOUND)
    assert result.stderr.startswith("error: HTTP 404")


def test_list_streams_every_page_with_all(cli: Cli, client: CohereClient, tmp_path: Path) -> None:
    made = {make_batch(client, tmp_path, 1, name="paged").id for _ in range(3)}
    lines = cli("list", "--all", "--jsonl").stdout.splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert made <= set(ids) and len(ids) == len(set(ids))
    as_array = json.loads(cli("list", "--all", "--json").stdout)
    assert [b["id"] for b in as_array] == ids


def test_list_limit_name_and_status_filters(cli: Cli, client: CohereClient, tmp_path: Path) -> None:
    make_batch(client, tmp_path, 1, name="filter-other")  # two batches at least, whatever ran first
    done = make_batch(client, tmp_path, 1, name="filter-me")
    wait_terminal(client, done.id)
    out = cli("list", "--name", "filter-me", "--status", "completed", "-q").stdout.split()
    assert done.id in out
    assert all(client.get_batch(i).name == "filter-me" for i in out)
    assert len(cli("list", "--limit", "2", "-q").stdout.split()) == 2


def test_list_filters_by_model_and_created_time(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    """--model, --since and --until combine with each other and with --status (issue 24 item 17)."""
    older = make_batch(client, tmp_path, 1, name="when-older")
    time.sleep(0.05)
    other_model = client.create_batch(
        name="when-newer",
        input_dataset_id=make_dataset(client, write_jsonl(tmp_path / "n.jsonl", chat_records(1))),
        model="command-a-03-2025",
    )
    assert older.created_at is not None and other_model.created_at is not None
    assert older.created_at < other_model.created_at
    cut = other_model.created_at.isoformat()

    def listed(*args: str) -> set[str]:
        return set(cli("list", "--all", "-q", *args).stdout.split())

    assert other_model.id in listed("--model", "COMMAND-A-03-2025")
    assert older.id not in listed("--model", "command-a-03-2025")
    since = listed("--since", cut)
    assert other_model.id in since and older.id not in since
    until = listed("--until", cut)
    assert older.id in until and other_model.id not in until
    assert {older.id, other_model.id} <= listed("--since", "1h")
    assert older.id in listed("--since", older.created_at.isoformat(), "--model", "command-r")
    assert listed("--since", cut, "--model", "command-r") == set()
    bad = cli("list", "--since", "yesterday", exit_code=2)
    assert "neither a duration (2h, 3d) nor a date or time" in bad.stderr
    empty = cli("list", "--since", cut, "--until", cut, exit_code=2)
    assert "--since must be before --until" in empty.stderr


def test_list_plain_is_tab_separated_without_boxes(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    make_batch(client, tmp_path, 1, name="tsv")
    first = cli("list", "--limit", "1").stdout.splitlines()[0]
    fields = first.split("\t")
    assert len(fields) == 8 and fields[2] in {
        "queued",
        "in_progress",
        "canceling",
        "completed",
        "failed",
        "canceled",
    }
    assert not set("│┃─━") & set(first)


def test_plain_output_gives_one_raw_value_a_column(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, 4, fail={3}, name="raw numbers")
    wait_terminal(client, batch.id)
    (line,) = cli("list", "--name", "raw numbers", "--limit", "1").stdout.splitlines()
    batch_id, name, status, model, records, succeeded, failed, created = line.split("\t")
    assert (batch_id, name, status, model) == (batch.id, "raw numbers", "completed", "command-r")
    assert (records, succeeded, failed) == ("4", "3", "1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created), created
    shown = cli("get", batch.id).stdout
    assert (
        "Records:        4\n" in shown and "Failed:         1\n" in shown and "(100%)" not in shown
    )
    datasets = cli("datasets", "list").stdout.splitlines()
    assert all(len(row.split("\t")) == 7 for row in datasets)
    assert not [row for row in datasets if re.search(r"\d,\d| [KMG]?B\t", row)], (
        "no 1,000 nor 1.3 KB"
    )


def test_list_newest_first(cli: Cli, client: CohereClient, tmp_path: Path) -> None:
    first = make_batch(client, tmp_path, 1, name="older")
    second = make_batch(client, tmp_path, 1, name="newer")
    ids = cli("list", "--limit", "2", "-q").stdout.split()
    assert ids == [second.id, first.id]


def test_quiet_list_pipes_into_cancel(tmp_path: Path) -> None:
    """``cbatch list -q --status queued | xargs cbatch cancel --wait``: the ids from the list get cancelled.

    A sandbox of its own keeps its batches QUEUED for a minute, so a batch
    can only end CANCELED if the cancel worked (the shared sandbox finishes
    small batches within the cancel grace period, which would prove nothing),
    and a batch that was not listed stays queued.
    """
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(
        data_dir=tmp_path / "slow", port=0, queue_delay=60.0, validation_delay=0.0
    )
    with SandboxServer(settings) as server, CohereClient(TEST_KEY, server.base_url) as client:
        wanted = [make_batch(client, tmp_path, 3, name="to-cancel") for _ in range(2)]
        kept = make_batch(client, tmp_path, 3, name="keep-me")
        cli = Cli(server.base_url, TEST_KEY)
        ids = cli("list", "-q", "--status", "queued", "--name", "to-cancel").stdout.split()
        assert sorted(ids) == sorted(b.id for b in wanted)
        result = cli(
            "cancel", *ids, "--wait", "--json"
        )  # exit 0: docs/watch-and-ci.md, cancel --wait
        outcomes = [json.loads(line) for line in result.stdout.splitlines()[: len(ids)]]
        assert outcomes == [{"id": i, "cancel_requested": True} for i in ids]
        events = [json.loads(line) for line in result.stdout.splitlines()[len(ids) :]]
        assert events[-1]["event"] == "all_done" and events[-1]["exit_code"] == 0
        assert {client.get_batch(i).status for i in ids} == {BatchStatus.CANCELED}
        assert client.get_batch(kept.id).status == BatchStatus.QUEUED


def test_cancel_a_finished_batch_is_refused(cli: Cli, client: CohereClient, tmp_path: Path) -> None:
    batch = make_batch(client, tmp_path, 1)
    wait_terminal(client, batch.id)
    result = cli("cancel", batch.id, exit_code=ExitCode.REFUSED)
    assert "not cancelled" in result.stderr


def test_wrong_key_against_a_locked_sandbox(tmp_path: Path) -> None:
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    with SandboxServer(
        SandboxSettings(data_dir=tmp_path / "locked", port=0, api_keys=("right-key",))
    ) as server:
        result = Cli(server.base_url, "wrong-key")("list", exit_code=ExitCode.AUTH)
        assert "authentication failed" in result.stderr
        Cli(server.base_url, "right-key")("list")
