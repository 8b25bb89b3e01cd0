"""The full life of a batch over HTTP: upload, validate, create, progress, results."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.sandbox.sandbox_client import Api, chat_lines, read_avro

UUID_LEN = 36


def test_upload_validates_and_describes_the_parts(shared: Api) -> None:
    r = shared.upload(
        chat_lines(5), name="My Requests", keep_fields="custom_id", keep_original_file="true"
    )
    assert r.status_code == 200
    dataset_id = r.json()["id"]
    assert dataset_id.startswith("my-requests-")
    ds = shared.wait_dataset(dataset_id)
    assert ds["validation_status"] == "validated"
    assert ds["dataset_type"] == "batch-chat-v2-input"
    assert ds["created_at"].endswith("Z") and "." in ds["created_at"]
    assert "custom_id" in ds["preserve_fields"]
    (part,) = ds["dataset_parts"]
    assert part["num_rows"] == 5 and part["index"] == 0 and part["size_bytes"] > 0
    assert json.loads(part["samples"][0])["custom_id"] == "r0"
    original = httpx.get(part["original_url"])
    assert original.content == chat_lines(5)
    parsed = read_avro(httpx.get(part["url"]))
    assert [r["custom_id"] for r in parsed] == [f"r{i}" for i in range(5)]
    assert json.loads(parsed[0]["body"]) == {
        "messages": [{"role": "user", "content": "question 0"}]
    }


def test_broken_file_fails_validation_naming_the_line(shared: Api) -> None:
    data = (
        chat_lines(2)
        + b'{"custom_id": "r0", "body": {"messages": [{"role": "user", "content": "x"}]}}\n'
    )
    ds = shared.wait_dataset(shared.upload(data).json()["id"])
    assert ds["validation_status"] == "failed"
    assert ds["validation_error"] == 'line 3: duplicate custom_id "r0" (first on line 1)'
    assert ds["dataset_parts"] == []
    bad_json = shared.wait_dataset(shared.upload(chat_lines(1) + b"{nope\n").json()["id"])
    assert bad_json["validation_error"].startswith("line 2: invalid JSON")


def test_skip_malformed_input_drops_rows_with_warnings(shared: Api) -> None:
    data = (
        chat_lines(3)
        + b"not json\n"
        + b'{"custom_id": "x", "body": {"model": "m", "messages": []}}\n'
    )
    ds = shared.wait_dataset(shared.upload(data, skip_malformed_input="true").json()["id"])
    assert ds["validation_status"] == "validated"
    assert ds["dataset_parts"][0]["num_rows"] == 3
    assert len(ds["validation_warnings"]) == 2
    assert "line 4" in ds["validation_warnings"][0]


def test_batch_runs_to_completion_with_every_result(shared: Api) -> None:
    dataset_id = shared.validated(chat_lines(30))
    created = shared.create(dataset_id, name="my batch")
    assert created["status"] == "BATCH_STATUS_QUEUED"
    assert len(created["id"]) == UUID_LEN
    assert created["num_records"] == 30
    assert created["input_tokens"] == "0" and created["output_tokens"] == "0"
    done = shared.wait_batch(created["id"])
    assert done["status"] == "BATCH_STATUS_COMPLETED"
    assert done["num_successful_records"] == 30 and done["num_failed_records"] == 0
    assert isinstance(done["input_tokens"], str) and int(done["input_tokens"]) > 0
    assert done["output_dataset_id"].startswith("my-batch-output-")
    out = shared.wait_dataset(done["output_dataset_id"])
    assert out["dataset_type"] == "batch-chat-v2-output"
    assert json.loads(out["schema"])["type"] == "record"
    records = shared.by_id(done["output_dataset_id"])
    assert sorted(records) == sorted(f"r{i}" for i in range(30))
    body: dict[str, Any] = json.loads(records["r0"]["body"])
    assert body["message"]["content"][0]["text"] == "Sandbox reply to: question 0"
    assert body["finish_reason"] == "COMPLETE"
    assert all(r["error"] == "" for r in records.values()), (
        "a success carries an empty error, as recorded"
    )
    bodies = [json.loads(r["body"]) for r in records.values()]
    assert (
        str(sum(b["usage"]["billed_units"]["input_tokens"] for b in bodies)) == done["input_tokens"]
    )
    assert (
        str(sum(b["usage"]["billed_units"]["output_tokens"] for b in bodies))
        == done["output_tokens"]
    )


def test_marker_fails_records_and_a_batch_of_failures_fails(shared: Api) -> None:
    some = shared.wait_batch(shared.create(shared.validated(chat_lines(10, fail={2, 5})))["id"])
    assert some["status"] == "BATCH_STATUS_COMPLETED"
    assert (some["num_successful_records"], some["num_failed_records"]) == (8, 2)
    records = shared.by_id(some["output_dataset_id"])
    assert records["r2"]["body"] is None
    assert records["r2"]["error"] == "sandbox: failure requested by [[sandbox:fail]] marker"

    every = shared.wait_batch(
        shared.create(shared.validated(chat_lines(4, fail={0, 1, 2, 3})))["id"]
    )
    assert every["status"] == "BATCH_STATUS_FAILED"
    assert every["status_reason"]
    assert len(shared.results(every["output_dataset_id"])) == 4


def test_embed_batch_respects_embedding_types(shared: Api) -> None:
    rows = [
        {
            "custom_id": "e0",
            "body": {
                "texts": ["a", "b"],
                "input_type": "search_document",
                "embedding_types": ["float", "int8"],
            },
        },
        {
            "custom_id": "e1",
            "body": {"texts": ["c [[sandbox:fail]]"], "input_type": "search_document"},
        },
    ]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    done = shared.wait_batch(
        shared.create(shared.validated(data, type_="batch-embed-v2-input"), model="embed-v4.0")[
            "id"
        ]
    )
    assert (done["num_successful_records"], done["num_failed_records"]) == (1, 1)
    assert shared.dataset(done["output_dataset_id"])["dataset_type"] == "batch-embed-v2-output"
    records = shared.by_id(done["output_dataset_id"])
    body = json.loads(records["e0"]["body"])
    assert sorted(body["embeddings"]) == ["float", "int8"]
    assert len(body["embeddings"]["float"]) == 2 and len(body["embeddings"]["float"][0]) == 1536
    assert all(-128 <= v <= 127 for v in body["embeddings"]["int8"][0])
    assert body["texts"] == ["a", "b"]
    assert records["e1"]["error"] and records["e1"]["body"] is None


def test_output_is_split_into_parts(start: Any) -> None:
    api = start(part_max_records=4)
    done = api.wait_batch(api.create(api.validated(chat_lines(10)))["id"])
    parts = api.wait_dataset(done["output_dataset_id"])["dataset_parts"]
    assert [p["num_rows"] for p in parts] == [4, 4, 2]
    assert [p["index"] for p in parts] == [0, 1, 2]
    assert sorted(r["custom_id"] for r in api.results(done["output_dataset_id"])) == sorted(
        f"r{i}" for i in range(10)
    )
