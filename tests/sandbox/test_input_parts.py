"""Input datasets read back as the real service serves them: the parsed records as Avro
parts, and the uploaded file itself under ``original_url`` when it was kept."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.sandbox.sandbox_client import chat_lines, jsonl, read_avro


def _schema_fields(ds: dict[str, Any]) -> list[str]:
    return [f["name"] for f in json.loads(ds["schema"])["fields"]]


def test_input_parts_are_avro_records_that_rebuild_the_upload(start: Any) -> None:
    api = start(part_max_records=4)
    data = chat_lines(10)
    ds = api.wait_dataset(api.validated(data))
    assert _schema_fields(ds) == ["custom_id", "body"]
    assert [p["num_rows"] for p in ds["dataset_parts"]] == [4, 4, 2]
    assert all("original_url" not in p for p in ds["dataset_parts"])
    rebuilt = [
        {"custom_id": r["custom_id"], "body": json.loads(r["body"])}
        for part in sorted(ds["dataset_parts"], key=lambda p: p["index"])
        for r in read_avro(httpx.get(part["url"]))
    ]
    assert rebuilt == [json.loads(line) for line in data.splitlines()]


def test_the_original_file_is_served_byte_for_byte_when_kept(shared: Any) -> None:
    data = (
        b'{"custom_id":"a", "body": {"messages":[{"role":"user","content":"caf\xc3\xa9"}]}}\r\n\n'
        + chat_lines(2)
    )
    ds = shared.wait_dataset(shared.validated(data, keep_original_file="true"))
    (part,) = ds["dataset_parts"]
    assert httpx.get(part["original_url"]).content == data
    records = read_avro(httpx.get(part["url"]))
    assert [r["custom_id"] for r in records] == ["a", "r0", "r1"]
    assert json.loads(records[0]["body"])["messages"][0]["content"] == "café"


def test_kept_fields_get_a_column_of_their_own(shared: Any) -> None:
    rows = [
        {
            "custom_id": "a",
            "body": {"messages": [{"role": "user", "content": "x"}]},
            "meta": {"team": "blue"},
        },
        {"custom_id": "b", "body": {"messages": [{"role": "user", "content": "y"}]}},
    ]
    ds = shared.wait_dataset(
        shared.validated(jsonl(rows), keep_fields="custom_id", optional_fields="meta")
    )
    assert _schema_fields(ds) == ["custom_id", "body", "meta"]
    assert ds["preserve_fields"] == ["custom_id", "meta"]
    first, second = read_avro(httpx.get(ds["dataset_parts"][0]["url"]))
    assert json.loads(first["meta"]) == {"team": "blue"} and second["meta"] is None
