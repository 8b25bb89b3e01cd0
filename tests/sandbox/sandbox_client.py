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
        rows.append(
            {"custom_id": f"{prefix}{i}", "body": {"messages": [{"role": "user", "content": text}]}}
        )
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

    def upload(
        self, data: bytes, type_: str = "batch-chat-v2-input", name: str = "in", **params: Any
    ) -> httpx.Response:
        query = {"name": name, "type": type_, **params}
        return self.http.post(
            "/v1/datasets", params=query, files={"data": ("in.jsonl", io.BytesIO(data))}
        )

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v1/datasets/{dataset_id}")
        assert r.status_code == 200, r.text
        return r.json()["dataset"]  # type: ignore[no-any-return]

    def wait_dataset(self, dataset_id: str, timeout: float = 10) -> dict[str, Any]:
        return self._wait(
            lambda: self.dataset(dataset_id),
            lambda d: d["validation_status"] in ("validated", "failed"),
            timeout,
        )

    def validated(self, data: bytes, **kw: Any) -> str:
        r = self.upload(data, **kw)
        assert r.status_code == 200, r.text
        ds = self.wait_dataset(r.json()["id"])
        assert ds["validation_status"] == "validated", ds
        return ds["id"]  # type: ignore[no-any-return]

    def create(self, dataset_id: str, name: str = "b", model: str = "command-r") -> dict[str, Any]:
        r = self.http.post(
            "/v2/batches", json={"name": name, "input_dataset_id": dataset_id, "model": model}
        )
        assert r.status_code == 200, r.text
        return r.json()["batch"]  # type: ignore[no-any-return]

    def batch(self, batch_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v2/batches/{batch_id}")
        assert r.status_code == 200, r.text
        return r.json()["batch"]  # type: ignore[no-any-return]

    def wait_batch(
        self,
        batch_id: str,
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 15,
    ) -> dict[str, Any]:
        return self._wait(
            lambda: self.batch(batch_id), until or (lambda b: b["status"] in TERMINAL), timeout
        )

    def results(self, output_dataset_id: str) -> list[dict[str, Any]]:
        """Every output record, parts in index order, fetched with a key-less client."""
        return [r for part in self.parts(output_dataset_id) for r in part]

    def parts(self, dataset_id: str) -> list[list[dict[str, Any]]]:
        """The records of each part of a validated dataset, parts in index order."""
        ds = self.wait_dataset(dataset_id)
        assert ds["validation_status"] == "validated", ds
        with httpx.Client(timeout=30) as anon:
            return [
                read_avro(anon.get(p["url"]))
                for p in sorted(ds["dataset_parts"], key=lambda p: p["index"])
            ]

    def by_id(self, output_dataset_id: str) -> dict[str, dict[str, Any]]:
        """The output records keyed by custom_id (the output is not in input order)."""
        records = self.results(output_dataset_id)
        keyed = {r["custom_id"]: r for r in records}
        assert len(keyed) == len(records), "a custom_id appears twice in the output"
        return keyed

    def run_existing(self, dataset_id: str, model: str = "command-r") -> dict[str, Any]:
        """Run a batch of a dataset already validated; the finished batch."""
        return self.wait_batch(self.create(dataset_id, model=model)["id"])

    def run(
        self,
        data: bytes,
        type_: str = "batch-chat-v2-input",
        model: str = "command-r",
        **upload: Any,
    ) -> dict[str, Any]:
        """Upload, validate, run a batch to its end; the finished batch."""
        return self.wait_batch(
            self.create(self.validated(data, type_=type_, **upload), model=model)["id"]
        )

    @staticmethod
    def _wait(
        get: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            value = get()
            if done(value) or time.monotonic() > deadline:
                return value
            time.sleep(0.02)


def read_avro(response: httpx.Response) -> list[dict[str, Any]]:
    """The records of one downloaded Avro part."""
    import fastavro

    assert response.status_code == 200, response.text
    return list(fastavro.reader(io.BytesIO(response.content)))  # type: ignore[arg-type]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def embed_lines(texts: list[str], prefix: str = "e", **body: Any) -> bytes:
    """One embed record per text, ``{"texts": [text], "input_type": "search_document", **body}``."""
    return jsonl(
        [
            {
                "custom_id": f"{prefix}{i}",
                "body": {"texts": [t], "input_type": "search_document", **body},
            }
            for i, t in enumerate(texts)
        ]
    )
