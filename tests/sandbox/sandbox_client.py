"""A small client of the sandbox for its tests: uploads, waits, Avro decoding of results.

It speaks plain HTTP with httpx the way a client of the real API would, and fetches
part URLs with a second client that has no API key, as pre-signed links require.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from cohere_batch_cli.sandbox.server import SandboxServer

KEY = "sandbox-test-key"
TERMINAL = {"BATCH_STATUS_COMPLETED", "BATCH_STATUS_FAILED", "BATCH_STATUS_CANCELED"}


def chat_lines(n: int, fail: set[int] = frozenset(), prefix: str = "r") -> bytes:  # type: ignore[assignment]
    rows = []
    for i in range(n):
        text = f"question {i}" + (" [[sandbox:fail]]" if i in fail else "")
        rows.append({"custom_id": f"{prefix}{i}", "body": {"messages": [{"role": "user", "content": text}]}})
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


class Api:
    """A thin client of the sandbox with the waits tests need."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
        )

    def close(self) -> None:
        self.http.close()

    def upload(self, data: bytes, type_: str = "batch-chat-v2-input", name: str = "in", **params: Any) -> httpx.Response:
        query = {"name": name, "type": type_, **params}
        return self.http.post("/v1/datasets", params=query, files={"data": ("in.jsonl", io.BytesIO(data))})

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v1/datasets/{dataset_id}")
        assert r.status_code == 200, r.text
        return r.json()["dataset"]  # type: ignore[no-any-return]

    def wait_dataset(self, dataset_id: str, timeout: float = 10) -> dict[str, Any]:
        return self._wait(lambda: self.dataset(dataset_id), lambda d: d["validation_status"] in ("validated", "failed"), timeout)

    def validated(self, data: bytes, **kw: Any) -> str:
        r = self.upload(data, **kw)
        assert r.status_code == 200, r.text
        ds = self.wait_dataset(r.json()["id"])
        assert ds["validation_status"] == "validated", ds
        return ds["id"]  # type: ignore[no-any-return]

    def create(self, dataset_id: str, name: str = "b", model: str = "command-r") -> dict[str, Any]:
        r = self.http.post("/v2/batches", json={"name": name, "input_dataset_id": dataset_id, "model": model})
        assert r.status_code == 200, r.text
        return r.json()["batch"]  # type: ignore[no-any-return]

    def batch(self, batch_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v2/batches/{batch_id}")
        assert r.status_code == 200, r.text
        return r.json()["batch"]  # type: ignore[no-any-return]

    def wait_batch(self, batch_id: str, until: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 15) -> dict[str, Any]:
        return self._wait(lambda: self.batch(batch_id), until or (lambda b: b["status"] in TERMINAL), timeout)

    def results(self, output_dataset_id: str) -> list[dict[str, Any]]:
        """Every output record, parts in index order, fetched with a key-less client."""
        import fastavro

        ds = self.wait_dataset(output_dataset_id)
        assert ds["validation_status"] == "validated"
        records: list[dict[str, Any]] = []
        with httpx.Client(timeout=30) as anon:
            for part in sorted(ds["dataset_parts"], key=lambda p: p["index"]):
                r = anon.get(part["url"])
                assert r.status_code == 200, r.text
                records.extend(fastavro.reader(io.BytesIO(r.content)))
        return records

    @staticmethod
    def _wait(get: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            value = get()
            if done(value) or time.monotonic() > deadline:
                return value
            time.sleep(0.02)
