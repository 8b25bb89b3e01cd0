"""A loopback batch API whose batches move only when the test says so, for watch tests.

The real sandbox moves batches on a wall clock; the watch engine's tests run
on a fake clock, so here each batch follows a script of states and
:meth:`BatchServer.advance` moves every script one step (the fake sleep calls
it). It serves ``GET /v2/batches/{id}`` and ``GET /v2/batches`` (newest
``updated_at`` first, offset page tokens), can answer 503 or cut the
connection for the next N requests (an outage that recovers), and counts
every request, so tests can assert what a watch cost.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

EPOCH = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)


def batch_state(
    status: str,
    *,
    total: int = 100,
    ok: int = 0,
    failed: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """One scripted state: a status and counters (the id, name and times are filled in)."""
    state: dict[str, Any] = {
        "status": f"BATCH_STATUS_{status.upper()}",
        "num_records": total,
        "num_successful_records": ok,
        "num_failed_records": failed,
        "input_tokens": str(ok * 10),
        "output_tokens": str(ok * 5),
    }
    state.update(extra)
    return state


@dataclass
class _Script:
    id: str
    name: str
    states: list[dict[str, Any]]
    step: int = 0
    updated: datetime = EPOCH
    created: datetime = EPOCH

    def current(self) -> dict[str, Any]:
        state = self.states[min(self.step, len(self.states) - 1)]
        raw = {
            "id": self.id,
            "name": self.name,
            "created_at": self.created.isoformat().replace("+00:00", "Z"),
            "updated_at": self.updated.isoformat().replace("+00:00", "Z"),
            "input_dataset_id": f"{self.id}-input",
            "model": "command-r",
        }
        raw.update(state)
        return raw


@dataclass
class BatchServer:
    """Scripted batches behind a real HTTP socket; see the module docstring."""

    scripts: dict[str, _Script] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    others: int = 0
    """Unwatched batches in the account, updated at every step (they crowd the list)."""
    hidden_from_list: set[str] = field(default_factory=set)
    oldest_first: bool = False
    """List oldest update first: the API does not document the direction, so a client must cope."""
    """Batches the list leaves out (an eventually consistent index) but GET serves."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[str] = []  # "503", "429", "html", "reset" for the next requests
        self._now = EPOCH
        self._absent_until: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # see PERF-NOTES: no 40 ms stall per request

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- control ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> BatchServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def add(
        self, batch_id: str, *states: dict[str, Any], name: str | None = None, absent_steps: int = 0
    ) -> None:
        """A batch following ``states`` one step per :meth:`advance`; 404 for ``absent_steps`` first."""
        with self._lock:
            self.scripts[batch_id] = _Script(
                batch_id,
                name or f"name-{batch_id}",
                list(states),
                updated=self._now,
                created=self._now,
            )
            if absent_steps:
                self._absent_until[batch_id] = absent_steps

    def advance(self, steps: int = 1) -> None:
        """Move every batch ``steps`` states on; changed ones get a newer ``updated_at``."""
        with self._lock:
            for _ in range(steps):
                self._now += timedelta(seconds=1)
                for script in self.scripts.values():
                    before = script.current()
                    script.step += 1
                    if script.current() != before:
                        script.updated = self._now
                for batch_id in list(self._absent_until):
                    self._absent_until[batch_id] -= 1
                    if self._absent_until[batch_id] <= 0:
                        del self._absent_until[batch_id]

    def fail_next(self, count: int, how: str = "503") -> None:
        """The next ``count`` requests fail: ``503``, ``429``, ``html`` (200 with HTML) or ``reset``."""
        with self._lock:
            self._failures.extend([how] * count)

    def count(self, kind: str) -> int:
        """Requests seen of one kind: ``get`` (one batch) or ``list``."""
        return sum(1 for _, k in self.requests if k == kind)

    # -- serving -----------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        kind = "list" if url.path == "/v2/batches" else "get"
        with self._lock:
            self.requests.append((handler.path, kind))
            failure = self._failures.pop(0) if self._failures else None
        if failure == "reset":
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        if failure == "html":
            self._send(handler, 200, b"<html>proxy says hi</html>", "text/html")
            return
        if failure is not None:
            self._send_json(handler, int(failure), {"message": "try again later"})
            return
        if kind == "list":
            self._send_json(handler, 200, self._list(parse_qs(url.query)))
            return
        batch_id = unquote(url.path.removeprefix("/v2/batches/"))
        with self._lock:
            script = self.scripts.get(batch_id)
            absent = batch_id in self._absent_until
            body = script.current() if script else None
        if body is None or absent:
            self._send_json(handler, 404, {"message": f"batch {batch_id} not found"})
        else:
            self._send_json(handler, 200, {"batch": body})

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        size = int(query.get("page_size", ["50"])[0])
        offset = int(query.get("page_token", ["0"])[0])
        with self._lock:
            rows = [
                s.current()
                for s in self.scripts.values()
                if s.id not in self._absent_until and s.id not in self.hidden_from_list
            ]
            for i in range(self.others):
                stamp = self._now.isoformat().replace("+00:00", "Z")
                rows.append(
                    {"id": f"other-{i}", "status": "BATCH_STATUS_IN_PROGRESS", "updated_at": stamp}
                )
        rows.sort(key=lambda r: r["updated_at"], reverse=not self.oldest_first)
        page = rows[offset : offset + size]
        out: dict[str, Any] = {"batches": page}
        if offset + size < len(rows):
            out["next_page_token"] = str(offset + size)
        return out

    def _send_json(self, handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        self._send(handler, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
