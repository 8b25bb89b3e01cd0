"""A batch cancelled after it started keeps what it finished as a real output dataset, so
its ``output_dataset_id`` (and every hint a client prints from it) leads somewhere."""

from __future__ import annotations

from typing import Any

from tests.sandbox.sandbox_client import chat_lines


def test_a_cancelled_batch_writes_the_records_it_finished(start: Any) -> None:
    api = start(records_per_second=100, cancel_grace=0.1)
    batch = api.create(api.validated(chat_lines(400, fail={0, 1, 2})))
    api.wait_batch(batch["id"], until=lambda b: b["num_successful_records"] >= 20)
    assert api.http.post(f"/v2/batches/{batch['id']}:cancel").status_code == 200
    done = api.wait_batch(batch["id"])
    assert done["status"] == "BATCH_STATUS_CANCELED"
    finished = done["num_successful_records"] + done["num_failed_records"]
    assert 20 <= finished < 400
    out = api.wait_dataset(done["output_dataset_id"])
    assert out["validation_status"] == "validated" and out["dataset_type"] == "batch-chat-v2-output"
    records = api.by_id(done["output_dataset_id"])
    assert len(records) == finished
    assert {"r0", "r1", "r2"} <= set(records), "records run in input order: the first ones finished"
    assert sum(1 for r in records.values() if r["error"]) == done["num_failed_records"] == 3
    assert done["input_tokens"] != "0"


def test_a_batch_cancelled_while_queued_has_no_output(start: Any) -> None:
    api = start(queue_delay=30, cancel_grace=0.05)
    batch = api.create(api.validated(chat_lines(3)))
    api.http.post(f"/v2/batches/{batch['id']}:cancel")
    done = api.wait_batch(batch["id"])
    assert done["status"] == "BATCH_STATUS_CANCELED" and "output_dataset_id" not in done
