"""A loopback stand-in for the storage behind pre-signed part links, misbehaving on a plan.

Each file is served at ``/parts/<name>?X-Signature=...`` (the query string
plays the signature and is ignored). Every request for a file takes the next
step of its plan; once the plan runs out the file is served normally. Steps:

``OK``      the whole file (honouring ``Range: bytes=N-`` with a 206)
``ERROR``   a 500 with a short body
``FORBID``  a 403 with an XML body, as a signed-URL store refuses an expired link
``DENY``    a 403 with a plain-text body: a refusal that is not the store's XML
``LIMIT``   a 429 with ``Retry-After: <retry_after>``, as a throttled bucket answers
``DROP``    headers promising the whole file, half of it, then the socket closed
``STALL``   headers and half the file, then silence until the server stops
``SLOW``    the whole file in small pieces with pauses (``slow_delay`` each)

Every request's headers and arrival time are recorded, so a test can assert that no
``Authorization`` header ever reached storage and that a retry asked for a
``Range``. ``disable_nagle_algorithm`` keeps keep-alive requests from the
40 ms Nagle/delayed-ACK stall.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

OK = "ok"
ERROR = "error"
FORBID = "forbid"
DENY = "deny"
LIMIT = "limit"
DROP = "drop"
STALL = "stall"
SLOW = "slow"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    step: str
    at: float = 0.0
    """``time.monotonic()`` when the request arrived."""
    query: str = ""
    """The link's query string: which 'signature' the client used."""


class _QuietServer(ThreadingHTTPServer):
    """No traceback on stderr when a client hangs up mid-answer: tests do that on purpose."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class PartServer:
    """Serves byte strings by name on 127.0.0.1 and a free port; a context manager."""

    def __init__(
        self, slow_delay: float = 0.02, slow_pieces: int = 8, retry_after: str = "1"
    ) -> None:
        self.files: dict[str, bytes] = {}
        self.retry_after = retry_after
        self.plans: dict[str, list[str]] = defaultdict(list)
        self.requests: list[Request] = []
        self.slow_delay = slow_delay
        self.slow_pieces = slow_pieces
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- set-up -------------------------------------------------------------------------

    def add(self, name: str, data: bytes, plan: list[str] | None = None) -> str:
        """Serve ``data`` under ``name``; returns its 'pre-signed' URL."""
        self.files[name] = data
        self.plans[name] = list(plan or [])
        return self.url(name)

    def url(self, name: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/parts/{name}?X-Signature=sig-{name}-SECRET"

    def requests_for(self, name: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == f"/parts/{name}"]

    def __enter__(self) -> PartServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    # -- serving ------------------------------------------------------------------------

    def _next_step(self, name: str) -> str:
        with self._lock:
            plan = self.plans.get(name)
            return plan.pop(0) if plan else OK

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                path = split.path
                name = path.removeprefix("/parts/")
                data = server.files.get(name)
                step = server._next_step(name) if data is not None else "missing"
                with server._lock:
                    server.requests.append(
                        Request(
                            path, dict(self.headers.items()), step, time.monotonic(), split.query
                        )
                    )
                if data is None:
                    self._simple(404, b"no such part")
                elif step == ERROR:
                    self._simple(500, b"internal error")
                elif step == FORBID:
                    self._simple(403, b"<Error>Request has expired</Error>")
                elif step == DENY:
                    self._simple(403, b"forbidden", {"Content-Type": "text/plain"})
                elif step == LIMIT:
                    self._simple(
                        429, b"<Error>SlowDown</Error>", {"Retry-After": server.retry_after}
                    )
                else:
                    self._serve(data, step)

            def _simple(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _serve(self, data: bytes, step: str) -> None:
                start = _range_start(self.headers.get("Range"))
                etag = '"' + hashlib.md5(data).hexdigest() + '"'
                if (
                    start is not None
                    and self.headers.get("If-Range", etag) == etag
                    and start < len(data)
                ):
                    body = data[start:]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    body = data
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if step == DROP:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self._cut()
                elif step == STALL:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server._stopping.wait(30)
                    self._cut()
                elif step == SLOW:
                    piece = max(1, len(body) // server.slow_pieces + 1)
                    for i in range(0, len(body), piece):
                        self.wfile.write(body[i : i + piece])
                        self.wfile.flush()
                        server._stopping.wait(server.slow_delay)
                else:
                    self.wfile.write(body)

            def _cut(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

        return Handler


def _range_start(value: str | None) -> int | None:
    if not value or not value.startswith("bytes="):
        return None
    first = value[len("bytes=") :].split("-", 1)[0]
    return int(first) if first.isdigit() else None
