"""Helpers that put real datasets and batches into a sandbox, through the real client."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.models import Batch
from cohere_batch_cli.tasks.datasets import wait_for_dataset

FAIL = "[[sandbox:fail]]"


def chat_records(
    count: int, *, fail: set[int] = frozenset(), prefix: str = "r"
) -> list[dict[str, Any]]:  # type: ignore[assignment]
    return [
        {
            "custom_id": f"{prefix}-{i}",
            "body": {
                "messages": [
                    {"role": "user", "content": f"question {i}" + (f" {FAIL}" if i in fail else "")}
                ]
            },
        }
        for i in range(count)
    ]


def embed_records(count: int, *, prefix: str = "e") -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"{prefix}-{i}",
            "body": {"texts": [f"text {i}", f"more {i}"], "input_type": "search_document"},
        }
        for i in range(count)
    ]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def client_for(server: Any, key: str) -> CohereClient:
    return CohereClient(key, server.base_url)


def make_dataset(
    client: CohereClient, path: Path, dataset_type: str = "batch-chat-v2-input"
) -> str:
    dataset_id = client.upload_dataset(
        path, name=path.stem, dataset_type=dataset_type, keep_fields=["custom_id"]
    )
    dataset = wait_for_dataset(client, dataset_id, timeout=30)
    assert dataset.validation_status == "validated", dataset.raw
    return dataset_id


def make_batch(
    client: CohereClient,
    tmp_path: Path,
    count: int = 5,
    *,
    fail: set[int] = frozenset(),
    name: str = "test-batch",
) -> Batch:  # type: ignore[assignment]
    path = write_jsonl(
        tmp_path / f"{name}-{time.monotonic_ns()}.jsonl", chat_records(count, fail=fail)
    )
    dataset_id = make_dataset(client, path)
    return client.create_batch(name=name, input_dataset_id=dataset_id, model="command-r")


def wait_terminal(client: CohereClient, batch_id: str, timeout: float = 30) -> Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.get_batch(batch_id)
        if batch.status.is_terminal:
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} still {batch.status}"
        time.sleep(0.05)
