"""From a JSONL file to results on disk, through the CLI, against the real sandbox."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import FAIL, chat_records, embed_records, write_jsonl


def uploads(sandbox: object) -> int:
    return sum(
        1
        for method, path, _ in sandbox.request_log
        if method == "POST" and path.startswith("/v1/datasets")
    )  # type: ignore[attr-defined]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def submit(cli: Cli, path: Path, *extra: str, model: str = "command-r") -> str:
    """One-step create, watched to the end in plain lines; returns the batch id."""
    result = cli("create", "--file", str(path), "--model", model, "--watch", *extra)
    return next(
        line.split()[-1] for line in result.stderr.splitlines() if line.startswith("created batch")
    )


def test_a_broken_file_is_rejected_with_every_bad_line_and_nothing_uploaded(
    cli: Cli, sandbox: object, tmp_path: Path
) -> None:
    good = chat_records(3)
    lines = [json.dumps(good[0]), "{not json", json.dumps({"body": good[1]["body"]}), json.dumps(good[0]),
             json.dumps({"custom_id": "x", "body": {"messages": [{"role": "user", "content": "hi"}], "model": "m"}})]  # fmt: skip
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n")
    before = uploads(sandbox)
    result = cli("datasets", "upload", str(path), exit_code=ExitCode.REFUSED)
    for line_no, fragment in [
        (2, "invalid JSON"),
        (3, "missing custom_id"),
        (4, "duplicate custom_id"),
        (5, "body.model"),
    ]:
        assert f"broken.jsonl:{line_no}: {fragment}" in result.stderr, result.stderr
    assert "4 problems; nothing was uploaded" in result.stderr
    assert uploads(sandbox) == before
    cli("create", "--file", str(path), "--model", "m", exit_code=ExitCode.REFUSED)
    assert uploads(sandbox) == before
    validated = cli("datasets", "validate", str(path), exit_code=ExitCode.REFUSED)
    assert "nothing was uploaded" not in validated.stderr


def test_validate_passes_a_good_file(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "good.jsonl", embed_records(5))
    result = cli("datasets", "validate", str(path))
    assert "5 records of batch-embed-v2-input" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("kind", ["chat", "embed"])
def test_file_to_results_with_every_custom_id_once(
    cli: Cli, sandbox: object, tmp_path: Path, kind: str
) -> None:
    records = chat_records(25, fail={3, 7}) if kind == "chat" else embed_records(25)
    path = write_jsonl(tmp_path / f"{kind}.jsonl", records)
    batch_id = submit(cli, path, model="command-r" if kind == "chat" else "embed-english-v3.0")
    out = tmp_path / "out.jsonl"
    summary = cli("results", batch_id, "-o", str(out)).stderr
    rows = read_jsonl(out)
    assert sorted(r["custom_id"] for r in rows) == sorted(r["custom_id"] for r in records)
    assert all(next(iter(r)) == "custom_id" for r in rows)
    if kind == "chat":
        failed = {r["custom_id"] for r in rows if "error" in r}
        assert failed == {"r-3", "r-7"}
        assert "wrote 25 records" in summary and "23 succeeded, 2 failed" in summary
        assert next(r for r in rows if "error" not in r)["body"]["message"]["content"][0]["text"]
    else:
        assert all(isinstance(r["body"]["embeddings"]["float"][0][0], float) for r in rows)
    part_requests = [(p, h) for m, p, h in sandbox.request_log if p.startswith("/_sandbox/parts/")]  # type: ignore[attr-defined]
    assert part_requests, "results were fetched from the parts' links"
    for _, headers in part_requests:
        assert TEST_KEY not in json.dumps(headers)
        assert "authorization" not in {k.lower() for k in headers}


def test_csv_failed_only_and_join(cli: Cli, tmp_path: Path) -> None:
    records = chat_records(12, fail={2, 5})
    path = write_jsonl(tmp_path / "req.jsonl", records)
    batch_id = submit(cli, path)
    table = cli("results", batch_id, "--format", "csv", "-o", "-").stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert sorted(r["custom_id"] for r in rows) == sorted(r["custom_id"] for r in records)
    assert {r["custom_id"] for r in rows if r["status"] == "failed"} == {"r-2", "r-5"}
    assert all(r["text"] for r in rows if r["status"] == "succeeded")
    failed = tmp_path / "failed.jsonl"
    cli("results", batch_id, "--failed-only", "-o", str(failed))
    assert sorted(r["custom_id"] for r in read_jsonl(failed)) == ["r-2", "r-5"]
    lines = cli("results", batch_id, "--join", str(path), "-o", "-").stdout.splitlines()
    joined = {
        row["custom_id"]: row for row in map(json.loads, lines)
    }  # the output is not in input order
    assert list(joined["r-0"]) == ["custom_id", "request", "response", "error"]
    assert (
        joined["r-2"]["request"]["messages"][0]["content"].endswith(FAIL) and joined["r-2"]["error"]
    )
    assert joined["r-0"]["request"] == records[0]["body"] and joined["r-0"]["response"]["message"]


def test_results_twice_give_the_same_bytes_and_leave_no_temporary_file(
    cli: Cli, tmp_path: Path
) -> None:
    batch_id = submit(cli, write_jsonl(tmp_path / "req.jsonl", chat_records(30, fail={1})))
    out = tmp_path / "res" / "r.jsonl"
    out.parent.mkdir()
    cli("results", batch_id, "-o", str(out))
    first = out.read_bytes()
    cli("results", batch_id, "-o", str(out))
    assert out.read_bytes() == first
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.jsonl"]


def test_results_of_a_running_batch_says_how_to_wait(cli: Cli, tmp_path: Path) -> None:
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(data_dir=tmp_path / "slow", port=0, records_per_second=5.0)
    with SandboxServer(settings) as server:
        slow = Cli(server.base_url, TEST_KEY)
        path = write_jsonl(tmp_path / "req.jsonl", chat_records(50))
        batch_id = slow("create", "--file", str(path), "--model", "m", "-q").stdout.strip()
        result = slow("results", batch_id, exit_code=ExitCode.REFUSED)
        assert f"cbatch watch {batch_id}" in result.stderr
        slow("cancel", batch_id)


def test_datasets_list_get_usage_and_delete(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "ds.jsonl", chat_records(4))
    dataset_id = cli("datasets", "upload", str(path), "--wait", "-q").stdout.strip()
    shown = json.loads(cli("datasets", "get", dataset_id, "--json").stdout)
    assert shown["validation_status"] == "validated" and shown["dataset_parts"][0]["num_rows"] == 4
    listed = cli("datasets", "list", "--type", "batch-chat-v2-input", "-q").stdout.split()
    assert dataset_id in listed
    assert (
        cli("datasets", "get", dataset_id, "--query", "validation_status").stdout.strip()
        == '"validated"'
    )
    usage = json.loads(cli("datasets", "usage", "--json").stdout)
    assert usage["organization_usage"] > 0
    cli("datasets", "delete", dataset_id)
    gone = cli("datasets", "get", dataset_id, exit_code=ExitCode.NOT_FOUND)
    assert "cbatch datasets list" in gone.stderr


def test_a_file_that_fails_server_validation_is_reported(cli: Cli, tmp_path: Path) -> None:
    """Skipping the local check (the API would see it too) shows the server's validation_error."""
    from cohere_batch_cli.api.client import CohereClient
    from cohere_batch_cli.tasks.datasets import wait_for_dataset

    path = tmp_path / "bad.jsonl"
    path.write_text('{"custom_id": "a", "body": {"messages": []}}\n')
    with CohereClient(TEST_KEY, cli.base_url or "") as client:
        dataset_id = client.upload_dataset(path, name="bad", dataset_type="batch-chat-v2-input")
        dataset = wait_for_dataset(client, dataset_id, timeout=10)
    assert dataset.validation_status == "failed" and "line 1" in (dataset.validation_error or "")
    out = cli("datasets", "get", dataset_id).stdout
    assert "Validation error:" in out and "line 1" in out


def test_create_quiet_watch_prints_only_the_id_on_stdout(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", chat_records(3))
    result = cli("create", "--file", str(path), "--model", "m", "-q", "--watch")
    assert len(result.stdout.split()) == 1 and "completed" in result.stderr


def test_a_batch_of_one_record_is_counted_in_the_singular(
    cli: Cli, sandbox: object, tmp_path: Path
) -> None:
    """ "1 record", never "1 records", from the check to the download (issue 24, item 20)."""
    path = write_jsonl(tmp_path / "one.jsonl", chat_records(1))
    batch_id = submit(cli, path)
    fetched = cli("results", batch_id, "-o", str(tmp_path / "one-out.jsonl"))
    said = cli("datasets", "upload", str(path)).stderr + fetched.stderr
    assert "one.jsonl: 1 record of batch-chat-v2-input, checked" in said
    assert f"wrote 1 record to {tmp_path / 'one-out.jsonl'}" in said
    assert "1 records" not in said
