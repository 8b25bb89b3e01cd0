"""Dataset limits and lifetimes as Cohere publishes them (CONTRACT.md, Datasets and "What
real clients have seen": Limits), set small so a few-MB file splits as a 20 GB one would."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.sandbox.sandbox_client import chat_lines


def _usage(api: Any) -> int:
    return int(api.http.get("/v1/datasets/usage").json()["organization_usage"])


def _ids(api: Any) -> set[str]:
    return {d["id"] for d in api.http.get("/v1/datasets").json()["datasets"]}


def _chunks(data: bytes, limit: int) -> list[bytes]:
    """Whole lines, each chunk at most ``limit`` bytes: how a client splits a big file."""
    chunks, current = [], b""
    for line in data.splitlines(keepends=True):
        if current and len(current) + len(line) > limit:
            chunks.append(current)
            current = b""
        current += line
    return [*chunks, current]


def test_one_dataset_over_the_size_limit_is_refused_naming_the_limit(start: Any) -> None:
    api = start(dataset_max_bytes=1000)
    data = chat_lines(40)
    refused = api.upload(data)
    assert refused.status_code == 400
    assert refused.json() == {
        "message": f"dataset too large: the file is {len(data):,} bytes, over the limit of 1,000 bytes "
        "for one dataset; split it into smaller datasets"
    }
    assert _ids(api) == set() and _usage(api) == 0
    assert api.upload(chat_lines(5)).status_code == 200


def test_a_megabyte_file_splits_into_datasets_under_the_limits(start: Any) -> None:
    data = chat_lines(12_000)  # about 1 MB
    api = start(dataset_max_bytes=120_000, org_max_bytes=len(data) + 10_000)
    chunks = _chunks(data, 120_000)
    assert len(chunks) >= 7 and all(len(c) <= 120_000 for c in chunks)
    ids = [api.validated(chunk, name=f"part-{n}") for n, chunk in enumerate(chunks)]
    assert sum(api.dataset(i)["dataset_parts"][0]["num_rows"] for i in ids) == 12_000
    assert _usage(api) == len(data), "usage counts each input dataset's uploaded bytes"
    full = api.upload(chat_lines(200, prefix="late"))
    assert full.status_code == 400 and full.json() == {"message": "You have exceeded capacity"}


def test_usage_counts_batch_outputs_and_capacity_counts_them_too(start: Any) -> None:
    data = chat_lines(50)
    api = start(org_max_bytes=2 * len(data) + 100)
    done = api.run(data)
    out = api.wait_dataset(done["output_dataset_id"])
    output_bytes = sum(p["size_bytes"] for p in out["dataset_parts"])
    assert output_bytes > 100
    assert _usage(api) == len(data) + output_bytes
    refused = api.upload(data)  # would fit beside the input alone, not beside the output too
    assert refused.status_code == 400 and refused.json()["message"] == "You have exceeded capacity"
    assert api.http.delete(f"/v1/datasets/{done['output_dataset_id']}").status_code == 200
    assert _usage(api) == len(data)
    assert api.upload(data).status_code == 200


def test_names_must_stay_under_50_characters(shared: Any) -> None:
    assert shared.upload(chat_lines(1), name="n" * 49).status_code == 200
    refused = shared.upload(chat_lines(1), name="n" * 50)
    assert refused.status_code == 400
    assert refused.json() == {"message": "dataset name must be under 50 characters, got 50"}


def test_expired_datasets_are_gone_and_batches_still_read(start: Any) -> None:
    api = start(dataset_ttl=1.0)
    done = api.run(chat_lines(3))
    assert done["input_dataset_id"] and done["output_dataset_id"]
    url = api.wait_dataset(done["output_dataset_id"])["dataset_parts"][0]["url"]
    assert _usage(api) > 0
    time.sleep(1.3)
    for dataset_id in (done["input_dataset_id"], done["output_dataset_id"]):
        assert api.http.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert _ids(api) == set() and _usage(api) == 0
    old = api.batch(done["id"])
    assert old["status"] == "BATCH_STATUS_COMPLETED" and old["num_successful_records"] == 3
    assert old["input_dataset_id"] == "" and old["output_dataset_id"] == ""
    listed = api.http.get("/v2/batches").json()["batches"]
    assert [(b["input_dataset_id"], b["output_dataset_id"]) for b in listed] == [("", "")]
    assert httpx.get(url).status_code == 404


def test_a_batch_whose_input_expired_before_it_started_fails(start: Any) -> None:
    api = start(dataset_ttl=0.5, queue_delay=0.8)
    batch = api.create(api.validated(chat_lines(2)))
    done = api.wait_batch(batch["id"])
    assert done["status"] == "BATCH_STATUS_FAILED"
    assert "no longer available" in done["status_reason"]
    assert done["input_dataset_id"] == ""
