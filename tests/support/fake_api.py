"""A stateful fake of the batch and dataset API that fails on a budget, for the fault matrix.

It is the fault server (same wire behaviour: ``RESET``, ``TRUNCATE``, a slow
answer, an HTML 502) with a small store behind it, so a test can count what
the server really did: how many batches a ``create`` left behind, whether a
``:cancel`` ever arrived. A fault is one of :data:`FAULTS`; ``faults_left``
API requests (paths under ``/v1/`` and ``/v2/``) get it, in arrival order
whatever their route, then every request is answered normally. ``math.inf``
makes an outage that never ends.

What the server does when a request meets a fault follows what a real
service behind a proxy can do, the worst case for the client: a 429 or a 503
is a refusal (nothing happened), every other fault hits the *answer* after
the request was acted on (the batch was created, the cancel taken, the upload
stored), so a client that repeats blindly would do things twice.

Parts of output datasets are served at ``/_parts/<name>`` (never subject to
the fault budget: storage faults are the part server's business).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.fault_server import HTML_502, RESET, TRUNCATE, FaultServer

WRONG_SHAPE: dict[str, Any] = {
    "batch": "b-1",
    "batches": "b-1",
    "dataset": "ds-1",
    "datasets": "ds-1",
    "id": 1,
}
"""Every field an answer should hold, with the wrong type: valid JSON, wrong shape."""

FAULT_ANSWERS: dict[str, Any] = {
    "429": (429, {"Retry-After": "0"}, {"message": "rate limited"}),
    "500": (500, {}, {"message": "internal error"}),
    "503": (503, {}, {"message": "overloaded"}),
    "html502": HTML_502,
    "reset": RESET,
    "truncated": TRUNCATE,
    "not_json": (
        200,
        {"Content-Type": "text/html"},
        "<html><body>Sign in to the Wi-Fi</body></html>",
    ),
    "wrong_shape": (200, {}, WRONG_SHAPE),
    "slow": "slow",  # acted on, then answered after ``slow_seconds``
    "trickle": "trickle",  # acted on, then the answer's body a few bytes at a time, for ~``slow_seconds`` x 20
}
FAULTS = tuple(FAULT_ANSWERS)
REFUSALS = frozenset({"429", "503"})
"""Faults the server answers *instead of* acting."""

_FAKE = "fake"


def _now_rfc3339(offset: float = 0.0) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.cache
def _output_part() -> bytes:
    return avro_part(OUTPUT_RECORDS)


def avro_part(records: list[dict[str, Any]]) -> bytes:
    """An output part as the API serves it: an Avro container of custom_id/body/error records."""
    import fastavro

    from cohere_batch_cli.sandbox.avro_output import OUTPUT_SCHEMA

    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(OUTPUT_SCHEMA), records)
    return buffer.getvalue()


OUTPUT_RECORDS = [
    {
        "custom_id": "r-0",
        "body": json.dumps({"message": {"content": [{"type": "text", "text": "hi"}]}}),
        "error": None,
    },
    {
        "custom_id": "r-1",
        "body": json.dumps({"message": {"content": [{"type": "text", "text": "yo"}]}}),
        "error": None,
    },
    {"custom_id": "r-2", "body": None, "error": "boom"},
]


@dataclass
class FakeApi(FaultServer):
    """Batches ``b-done`` (COMPLETED, output ``out-1``) and ``b-run`` (IN_PROGRESS), dataset ``ds-in``."""

    fault: str | None = None
    faults_left: float = 0
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    parts: dict[str, bytes] = field(default_factory=dict)
    part_url: str | None = None
    """Where ``out-1``'s part lives; None: this server's own ``/_parts/out-1-0``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._store_lock = threading.Lock()
        self._serial = 0
        self.reset()

    def reset(self) -> FakeApi:
        """Back to the first state: the seeded objects only, no fault, no request seen."""
        with self._lock:
            self.requests.clear()
            self.fault, self.faults_left = None, 0
            self.batches.clear()
            self.datasets.clear()
            self.parts.clear()
            self._seed()
        return self

    def _seed(self) -> None:
        self.batches["b-done"] = self._batch(
            "b-done", "done", "BATCH_STATUS_COMPLETED", offset=-3600,
            output_dataset_id="out-1", num_records=3, num_successful_records=2, num_failed_records=1,
        )  # fmt: skip
        self.batches["b-run"] = self._batch(
            "b-run", "running", "BATCH_STATUS_IN_PROGRESS", offset=-1800
        )
        self.datasets["ds-in"] = self._dataset("ds-in", "batch-chat-v2-input")
        self.parts["out-1-0"] = _output_part()
        self.datasets["out-1"] = self._dataset("out-1", "batch-chat-v2-output")

    # -- set-up ------------------------------------------------------------------------

    def fail(self, fault: str, times: float) -> FakeApi:
        """The next ``times`` API requests meet ``fault`` (``math.inf``: all of them)."""
        assert fault in FAULT_ANSWERS, fault
        self.fault, self.faults_left = fault, times
        return self

    def heal(self) -> None:
        self.faults_left = 0

    # -- what the server saw -------------------------------------------------------------

    def created(self, name: str) -> list[dict[str, Any]]:
        """Batches created through the API with this name."""
        return [b for b in self.batches.values() if b["name"] == name]

    def cancels(self) -> int:
        return sum(
            1
            for r in self.requests
            if r.method == "POST" and r.path.split("?")[0].endswith(":cancel")
        )

    def api_requests(self) -> int:
        return sum(1 for r in self.requests if r.path.startswith(("/v1/", "/v2/")))

    # -- objects -------------------------------------------------------------------------

    def _batch(
        self, batch_id: str, name: str, status: str, offset: float = 0.0, **fields: Any
    ) -> dict[str, Any]:
        batch = {
            "id": batch_id, "name": name, "status": status, "model": "command-r", "input_dataset_id": "ds-in",
            "num_records": 3, "num_successful_records": 0, "num_failed_records": 0,
            "input_tokens": "0", "output_tokens": "0",
            "created_at": _now_rfc3339(offset), "updated_at": _now_rfc3339(offset),
        }  # fmt: skip
        batch.update(fields)
        return batch

    def _dataset(self, dataset_id: str, dataset_type: str) -> dict[str, Any]:
        dataset: dict[str, Any] = {
            "id": dataset_id, "name": dataset_id, "dataset_type": dataset_type, "validation_status": "validated",
            "created_at": _now_rfc3339(), "updated_at": _now_rfc3339(),
        }  # fmt: skip
        if dataset_id == "out-1":
            data = self.parts["out-1-0"]
            dataset["dataset_parts"] = [{
                "id": "p-0", "name": "part-0", "index": 0, "size_bytes": len(data), "num_rows": 3,
                "url": self.part_url or f"{self.base_url}/_parts/out-1-0?sig=not-a-secret",
            }]  # fmt: skip
        return dataset

    # -- serving -------------------------------------------------------------------------

    def _steady_for(self, key: str) -> Any:
        # Called under the server's lock, just after this request was recorded.
        recorded = self.requests[-1]
        fault = None
        if recorded.path.startswith(("/v1/", "/v2/")) and self.faults_left > 0:
            self.faults_left -= 1
            fault = self.fault
        return (_FAKE, recorded, fault)

    def _serve(self, handler: BaseHTTPRequestHandler, step: Any) -> None:
        if not (isinstance(step, tuple) and step and step[0] == _FAKE):
            super()._serve(handler, step)
            return
        _, recorded, fault = step
        answer = self._answer(recorded, act=fault not in REFUSALS)
        if fault == "slow":
            time.sleep(self.slow_seconds)
        elif fault == "trickle":
            self._trickle(handler, answer)
            return
        elif fault is not None:
            answer = FAULT_ANSWERS[fault]
        with contextlib.suppress(OSError):  # the client gave up on a slow answer
            super()._serve(handler, answer)

    def _trickle(self, handler: BaseHTTPRequestHandler, answer: Any) -> None:
        """Headers at once, then the body in pieces: every read arrives well within any timeout."""
        status, _headers, body = answer
        payload = json.dumps(body).encode() + b" " * 400
        pause = self.slow_seconds / 20
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.flush()
            for i in range(0, len(payload), 4):
                handler.wfile.write(payload[i : i + 4])
                handler.wfile.flush()
                time.sleep(pause)
        except OSError:
            handler.close_connection = True

    def _answer(self, recorded: Any, *, act: bool) -> Any:
        url = urlsplit(recorded.path)
        path, query = unquote(url.path), parse_qs(url.query)
        method = recorded.method
        with self._store_lock:
            if path.startswith("/_parts/"):
                data = self.parts.get(path[len("/_parts/") :])
                if data is None:
                    return (404, {}, {"message": "no such part"})
                return (200, {"Content-Type": "application/octet-stream"}, data)
            if method == "GET" and path == "/v2/batches":
                ordered = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
                return (200, {}, {"batches": ordered})
            if method == "POST" and path == "/v2/batches":
                body = json.loads(recorded.body or b"{}")
                self._serial += 1
                batch = self._batch(f"b-new-{self._serial}", body.get("name", ""), "BATCH_STATUS_QUEUED",
                                    input_dataset_id=body.get("input_dataset_id"), model=body.get("model"))  # fmt: skip
                if act:
                    self.batches[batch["id"]] = batch
                return (200, {}, {"batch": batch})
            if method == "POST" and path.startswith("/v2/batches/") and path.endswith(":cancel"):
                batch = self.batches.get(path[len("/v2/batches/") : -len(":cancel")])
                if batch is None:
                    return (404, {}, {"message": "batch not found"})
                if act and batch["status"] in ("BATCH_STATUS_QUEUED", "BATCH_STATUS_IN_PROGRESS"):
                    batch["status"] = "BATCH_STATUS_CANCELING"
                return (200, {}, {})
            if method == "GET" and path.startswith("/v2/batches/"):
                batch = self.batches.get(path[len("/v2/batches/") :])
                return (
                    (200, {}, {"batch": batch})
                    if batch
                    else (404, {}, {"message": "batch not found"})
                )
            if method == "POST" and path == "/v1/datasets":
                self._serial += 1
                name = (query.get("name") or ["dataset"])[0]
                dataset = self._dataset(f"{name}-{self._serial}", (query.get("type") or [""])[0])
                if act:
                    self.datasets[dataset["id"]] = dataset
                return (200, {}, {"id": dataset["id"]})
            if method == "GET" and path.startswith("/v1/datasets/"):
                dataset = self.datasets.get(path[len("/v1/datasets/") :])
                return (
                    (200, {}, {"dataset": dataset})
                    if dataset
                    else (404, {}, {"message": "dataset not found"})
                )
        return (404, {}, {"message": f"no route {method} {path}"})
