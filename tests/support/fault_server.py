"""A small HTTP server on loopback that misbehaves on a plan, for retry and fault tests.

Each request takes the next step of its route's plan; when the plan runs
out, the route's steady answer is served. Steps are ``(status, headers, body)``
or one of the special actions: ``RESET`` (close the socket without an answer),
``TRUNCATE`` (promise a body longer than what is sent), ``SLOW`` (sleep past
the client's timeout before answering).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RESET = "reset"
TRUNCATE = "truncate"
SLOW = "slow"

Step = Any  # (status, headers, body) or RESET/TRUNCATE/SLOW


class _QuietServer(ThreadingHTTPServer):
    """No traceback when a client hangs up on an answer it refused (a bomb cut off): that is the point."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FaultServer:
    """Routes are keyed by ``"METHOD /path"`` (query string ignored)."""

    steady: dict[str, tuple[int, dict[str, str], Any]] = field(default_factory=dict)
    plans: dict[str, list[Step]] = field(default_factory=lambda: defaultdict(list))
    requests: list[Recorded] = field(default_factory=list)
    slow_seconds: float = 2.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                key = f"{self.command} {path}"
                with server._lock:
                    server.requests.append(
                        Recorded(self.command, self.path, dict(self.headers), body)
                    )
                    plan = server.plans.get(key)
                    step = plan.pop(0) if plan else server._steady_for(key)
                server._serve(self, step)

            do_GET = do_POST = do_DELETE = _handle

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _steady_for(self, key: str) -> Step:
        if key in self.steady:
            return self.steady[key]
        method, path = key.split(" ", 1)
        for pattern, answer in self.steady.items():
            p_method, p_path = pattern.split(" ", 1)
            if p_method == method and p_path.endswith("*") and path.startswith(p_path[:-1]):
                return answer
        return (404, {}, {"message": f"no route {key}"})

    def _serve(self, handler: BaseHTTPRequestHandler, step: Step) -> None:
        if step == RESET:
            sock = handler.connection
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            handler.close_connection = True
            return
        if step == TRUNCATE:
            payload = b'{"batch": {"id": "trunc'
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload) + 100))
            handler.end_headers()
            handler.wfile.write(payload)
            handler.wfile.flush()
            handler.close_connection = True
            return
        if step == SLOW:
            time.sleep(self.slow_seconds)
            step = (200, {}, {"slow": True})
        status, headers, body = step
        if isinstance(body, (dict, list)):
            payload = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **headers}
        else:
            payload = body.encode() if isinstance(body, str) else body
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def count(self, key: str) -> int:
        method, path = key.split(" ", 1)
        return sum(1 for r in self.requests if r.method == method and r.path.split("?")[0] == path)


HTML_502 = (
    502,
    {"Content-Type": "text/html"},
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
)


def batch_json(batch_id: str = "b-1", **fields: Any) -> dict[str, Any]:
    """A batch object shaped like the API's, token counts as strings."""
    base = {
        "id": batch_id,
        "name": "nightly",
        "status": "BATCH_STATUS_IN_PROGRESS",
        "model": "command-r",
        "input_dataset_id": "ds-1",
        "num_records": 10,
        "num_successful_records": 4,
        "num_failed_records": 1,
        "input_tokens": "1234",
        "output_tokens": "567",
        "created_at": "2026-11-29T10:00:00.000000Z",
        "updated_at": "2026-11-29T10:01:00.000000Z",
    }
    base.update(fields)
    return base
