"""Odd answers and careless input, each case from issue 12, through cbatch's CliRunner or the installed script.

Bodies that are not JSON, a listing that fails part way, a file read from a
pipe, a --join file that matches nothing, a watch of an id that does not
exist, a cancelled batch whose output dataset was never written, a batch list
sorted the other way, and a dataset list that pages.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import fastavro
import pytest

from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.avro_output import OUTPUT_SCHEMA
from tests.conftest import TEST_KEY, Cli
from tests.support.fake_api import FakeApi, _now_rfc3339
from tests.support.fault_server import FaultServer, batch_json
from tests.support.flows import chat_records, write_jsonl
from tests.support.installed import cbatch_env, cbatch_path


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi().start()
    yield server
    server.stop()


@pytest.fixture
def fake_cli(api: FakeApi) -> Cli:
    return Cli(api.base_url, TEST_KEY)


def serve_records(api: FakeApi, records: list[dict[str, Any]]) -> None:
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(OUTPUT_SCHEMA), records)
    api.parts["out-1-0"] = buffer.getvalue()
    api.datasets["out-1"]["dataset_parts"][0].update(
        size_bytes=len(buffer.getvalue()), num_rows=len(records)
    )
    api.batches["b-done"]["num_records"] = len(records)


# -- 5: a body that is not JSON is never spliced into a line ------------------------------------


@pytest.mark.parametrize(
    "body", ["{oops}", '{"a": NaN}', '{"a": 1', "not json at all", '{"a": Infinity}']
)
def test_a_body_that_is_not_json_is_kept_as_a_string(
    fake_cli: Cli, api: FakeApi, body: str
) -> None:
    serve_records(api, [
        {"custom_id": "a", "body": body, "error": None},
        {"custom_id": "b", "body": '{"fine": true}', "error": None},
    ])  # fmt: skip
    result = fake_cli("results", "b-done", "-o", "out.jsonl")
    lines = [strict_json(line) for line in Path("out.jsonl").read_text().splitlines()]
    assert lines == [{"custom_id": "a", "body": body}, {"custom_id": "b", "body": {"fine": True}}]
    assert (
        "warning: 1 record has a body that is not JSON; it is written as a JSON string"
        in result.stderr
    )


# -- 6: a listing that fails after its first page ---------------------------------------------


def test_a_json_listing_that_fails_part_way_is_still_one_json_array(
    fault_server: FaultServer,
) -> None:
    page = (200, {}, {"batches": [batch_json("b-1"), batch_json("b-2")], "next_page_token": "next"})
    failure = (500, {}, {"message": "internal error"})
    fault_server.plans["GET /v2/batches"] = [page, failure]
    fault_server.steady["GET /v2/batches"] = failure
    result = Cli(fault_server.base_url, TEST_KEY)(
        "--retries", "0", "list", "--all", "--json", exit_code=ExitCode.SERVER
    )
    assert [b["id"] for b in strict_json(result.stdout)] == ["b-1", "b-2"]
    assert result.stderr.strip().startswith("error: HTTP 500")


def test_a_jsonl_listing_that_fails_part_way_keeps_whole_lines(fault_server: FaultServer) -> None:
    page = (200, {}, {"batches": [batch_json("b-1")], "next_page_token": "next"})
    fault_server.plans["GET /v2/batches"] = [page]
    fault_server.steady["GET /v2/batches"] = (503, {}, {"message": "overloaded"})
    result = Cli(fault_server.base_url, TEST_KEY)(
        "--retries", "0", "list", "--all", "--jsonl", exit_code=ExitCode.SERVER
    )
    assert [strict_json(line)["id"] for line in result.stdout.splitlines()] == ["b-1"]


# -- 7: input from a pipe is checked and sent from one copy -------------------------------------


def test_upload_from_a_process_substitution_sends_what_it_checked(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    """``cbatch datasets upload <(cat requests.jsonl)``: a pipe is read once; the check must not eat it."""
    source = write_jsonl(tmp_path / "requests.jsonl", chat_records(4))
    script = f'exec "$0" datasets upload <(cat {source}) --wait -q'
    env = cbatch_env(sandbox.base_url, tmp_path)
    done = subprocess.run(
        ["bash", "-c", script, cbatch_path()],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "4 records of batch-chat-v2-input, checked" in done.stderr
    assert "dataset " in done.stderr and ": validated" in done.stderr
    dataset = json.loads(cli("datasets", "get", done.stdout.strip(), "--json").stdout)
    assert (
        dataset["validation_status"] == "validated" and dataset["dataset_parts"][0]["num_rows"] == 4
    )


def test_dash_reads_stdin_for_upload_validate_and_create(cli: Cli, tmp_path: Path) -> None:
    text = "".join(json.dumps(r) + "\n" for r in chat_records(3, prefix="stdin"))
    checked = cli("datasets", "validate", "-", input=text)
    assert "stdin: 3 records of batch-chat-v2-input" in checked.stderr
    uploaded = cli("datasets", "upload", "-", "--wait", "-q", input=text)
    dataset_id = uploaded.stdout.strip()
    assert dataset_id.startswith("stdin-")
    created = cli("create", "--file", "-", "--model", "command-r", "-q", input=text)
    batch = json.loads(cli("get", created.stdout.strip(), "--json").stdout)
    assert batch["name"] == "stdin" and batch["num_records"] == 3


def test_a_bad_line_on_stdin_is_named_as_stdin(cli: Cli) -> None:
    result = cli(
        "datasets", "upload", "-", input='{"custom_id": "a"}\n', exit_code=ExitCode.REFUSED
    )
    assert result.stderr.startswith("stdin:1: ")
    assert "error: stdin has 2 problems; nothing was uploaded" in result.stderr


# -- 8: --join says how well it matched ---------------------------------------------------------


def test_join_reports_matches_and_names_what_did_not_match(
    fake_cli: Cli, api: FakeApi, tmp_path: Path
) -> None:
    serve_records(api, [
        {"custom_id": "r-0", "body": '{"n": 0}', "error": None},
        {"custom_id": "r-1", "body": '{"n": 1}', "error": None},
        {"custom_id": "r-1", "body": '{"n": 1}', "error": None},
        {"custom_id": "zz", "body": None, "error": "boom"},
    ])  # fmt: skip
    write_jsonl(
        tmp_path / "in.jsonl", [{"custom_id": c, "body": {"q": c}} for c in ("r-0", "r-1", "r-2")]
    )
    result = fake_cli("results", "b-done", "--join", "in.jsonl", "-o", "joined.jsonl")
    assert "joined 3 of 4 results with their requests from in.jsonl" in result.stderr
    assert "warning: 1 result has no request in in.jsonl: zz ('request' is null)" in result.stderr
    assert "warning: 1 request in in.jsonl has no result: r-2" in result.stderr
    assert "warning: 1 custom_id came back more than once: r-1" in result.stderr
    assert len(Path("joined.jsonl").read_text().splitlines()) == 4


def test_join_with_a_file_that_matches_nothing_fails_and_writes_nothing(
    fake_cli: Cli, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "other.jsonl", [{"custom_id": f"x-{i}", "body": {}} for i in range(3)])
    result = fake_cli(
        "results",
        "b-done",
        "--join",
        "other.jsonl",
        "-o",
        "joined.jsonl",
        exit_code=ExitCode.REFUSED,
    )
    assert (
        "error: none of the 3 results has a request in --join other.jsonl (its custom_ids look like x-0, x-1, x-2)"
        in result.stderr
    )
    assert "nothing was written to joined.jsonl" in result.stderr
    assert not Path("joined.jsonl").exists()


def test_join_with_a_file_that_is_not_jsonl_fails_before_downloading(
    fake_cli: Cli, api: FakeApi, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("just some notes\nnothing here\n")
    result = fake_cli("results", "b-done", "--join", "notes.txt", exit_code=ExitCode.USAGE)
    assert "--join notes.txt holds no JSON line with a custom_id" in result.stderr
    assert not [r for r in api.requests if r.path.startswith("/_parts/")]


# -- 9: a watch of several batches, one of them missing ------------------------------------------


def test_watch_reports_a_missing_id_drops_it_and_follows_the_rest(
    fake_cli: Cli, api: FakeApi
) -> None:
    result = fake_cli(
        "watch",
        "b-done",
        "no-such-batch",
        "--plain",
        "--interval",
        "0.5",
        exit_code=ExitCode.NOT_FOUND,
    )
    assert (
        "warning: batch no-such-batch was not found (HTTP 404: batch not found); no longer watched"
        in result.stderr
    )
    assert "done (b-done) completed" in result.stdout
    assert "all 2 batches ended: 1 completed, 1 not found (exit 4)" in result.stdout


# -- 10: every hint is true whether the output dataset exists or not -----------------------------


def _cancelled(api: FakeApi, batch_id: str, output: str | None) -> None:
    api.batches[batch_id] = api._batch(
        batch_id, batch_id, "BATCH_STATUS_CANCELED", output_dataset_id=output
    )


def test_a_cancelled_batch_whose_output_was_never_written_offers_no_results(
    fake_cli: Cli, api: FakeApi
) -> None:
    _cancelled(api, "b-cxl", "cxl-output-gone")
    watched = fake_cli("watch", "b-cxl", "--plain", exit_code=ExitCode.BATCH_CANCELED)
    assert (
        "its output dataset cxl-output-gone was not found: there are no results to download"
        in watched.stdout
    )
    assert "cbatch results" not in watched.stdout
    events = [
        json.loads(line)
        for line in fake_cli(
            "watch", "b-cxl", "--json", exit_code=ExitCode.BATCH_CANCELED
        ).stdout.splitlines()
    ]
    [done] = [e for e in events if e["event"] == "batch_done"]
    assert done["output_dataset_found"] is False and done["results_command"] is None
    fetched = fake_cli("results", "b-cxl", exit_code=ExitCode.NOT_FOUND)
    assert (
        fetched.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "batch b-cxl ended canceled and names output dataset cxl-output-gone, which does not exist: "
            "there are no results to download"
        )
    )


def test_a_cancelled_batch_whose_output_exists_offers_its_results(
    fake_cli: Cli, api: FakeApi
) -> None:
    _cancelled(api, "b-cxl", "out-1")
    watched = fake_cli("watch", "b-cxl", "--plain", exit_code=ExitCode.BATCH_CANCELED)
    assert "get results: cbatch results b-cxl -o results.jsonl" in watched.stdout
    fake_cli("results", "b-cxl", "-o", "r.jsonl")
    assert len(Path("r.jsonl").read_text().splitlines()) == 3


def test_a_cancelled_batch_without_an_output_dataset_says_so(fake_cli: Cli, api: FakeApi) -> None:
    _cancelled(api, "b-cxl", None)
    watched = fake_cli("watch", "b-cxl", "--plain", exit_code=ExitCode.BATCH_CANCELED)
    assert "no output dataset: there are no results to download" in watched.stdout
    fetched = fake_cli(
        "results", "b-cxl", exit_code=ExitCode.NOT_FOUND
    )  # docs/scripting.md's one rule
    assert "was canceled before any record ran: there are no results to download" in fetched.stderr


# -- 12: the duplicate-create look-up, whichever way the list is sorted ----------------------------


class OldestFirstApi(FakeApi):
    """Lists batches oldest first, 50 a page unless asked otherwise: the order the API leaves open."""

    def _answer(self, recorded: Any, *, act: bool) -> Any:
        url = urlsplit(recorded.path)
        if recorded.method != "GET" or url.path != "/v2/batches":
            return super()._answer(recorded, act=act)
        query = parse_qs(url.query)
        size = int((query.get("page_size") or ["50"])[0])
        start = int((query.get("page_token") or ["0"])[0])
        with self._store_lock:
            ordered = sorted(self.batches.values(), key=lambda b: b["created_at"])
        page = ordered[start : start + size]
        body: dict[str, Any] = {"batches": page}
        if start + size < len(ordered):
            body["next_page_token"] = str(start + size)
        return (200, {}, body)


def test_a_lost_create_answer_is_found_when_the_list_is_oldest_first(tmp_path: Path) -> None:
    api = OldestFirstApi().start()
    try:
        for i in range(
            120
        ):  # an account with history: the new batch is far down an oldest-first list
            stamp = (datetime.now(timezone.utc) - timedelta(days=1, seconds=i)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            api.batches[f"old-{i}"] = api._batch(
                f"old-{i}", "nightly", "BATCH_STATUS_COMPLETED", created_at=stamp, updated_at=stamp
            )
        api.fail("500", 1)  # the POST is acted on, its answer lost
        result = Cli(api.base_url, TEST_KEY)(
            "create", "--name", "nightly", "--dataset", "ds-in", "--model", "command-r", "-q"
        )
        created = [b for b in api.batches.values() if b["id"].startswith("b-new")]
        assert len(created) == 1, "a second batch was made"
        assert result.stdout.strip() == created[0]["id"]
        assert sum(1 for r in api.requests if r.method == "POST" and r.path == "/v2/batches") == 1
    finally:
        api.stop()


# -- 13: datasets list reads every page ---------------------------------------------------------


class CappedDatasetsApi(FakeApi):
    """Answers at most 2 datasets a request, whatever ``limit`` asks: a capped answer."""

    def _answer(self, recorded: Any, *, act: bool) -> Any:
        url = urlsplit(recorded.path)
        if recorded.method != "GET" or url.path != "/v1/datasets":
            return super()._answer(recorded, act=act)
        query = parse_qs(url.query)
        offset = int((query.get("offset") or ["0"])[0])
        limit = min(2, int((query.get("limit") or ["2"])[0]))
        ordered = sorted(self.datasets.values(), key=lambda d: d["id"])
        return (200, {}, {"datasets": ordered[offset : offset + limit]})


def test_datasets_list_pages_past_a_capped_answer(tmp_path: Path) -> None:
    api = CappedDatasetsApi().start()
    try:
        for i in range(5):
            api.datasets[f"ds-{i}"] = api._dataset(f"ds-{i}", "batch-chat-v2-input")
        cli = Cli(api.base_url, TEST_KEY)
        ids = cli("datasets", "list", "-q").stdout.split()
        assert ids == sorted(api.datasets) and len(ids) == 7  # ds-0..4, ds-in, out-1
        assert (
            cli("datasets", "list", "-q", "--limit", "3").stdout.split() == sorted(api.datasets)[:3]
        )
    finally:
        api.stop()


def test_a_dataset_list_that_ignores_offset_is_an_error_not_a_loop(
    fault_server: FaultServer,
) -> None:
    fault_server.steady["GET /v1/datasets"] = (
        200,
        {},
        {"datasets": [{"id": "same", "name": "same", "created_at": _now_rfc3339()}]},
    )
    result = Cli(fault_server.base_url, TEST_KEY)(
        "datasets", "list", "--json", exit_code=ExitCode.SERVER
    )
    assert "repeated a page" in result.stderr
    assert [d["id"] for d in strict_json(result.stdout)] == ["same"]
