"""A reverse proxy in front of the sandbox whose storage is slow enough for links to expire mid-part.

cbatch is pointed at the proxy (``CO_API_URL``); the sandbox builds its part links from
the address a client used, so they point at the proxy too. API calls pass through. The
first request of each part link path (``/_sandbox/parts/...``, no ``Range``) is answered
with the headers of the whole part, half its body, then ``hold`` seconds of silence and
a closed connection: a large download on a slow line, cut off. With the sandbox's
``link_ttl`` shorter than ``hold``, the link has expired by the time the client asks for
the rest with ``Range``, and the store refuses it, as real clients have seen. Later
requests for the path pass through.

Every request's path is recorded (the signature replaced), with the ``Range`` it asked
for, so a test can see each part resumed where it stopped.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "content-encoding",
}


@dataclass
class Seen:
    method: str
    path: str
    """Path and query, with the signature replaced."""
    range: str | None
    status: int
    cut: bool


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up on a held answer is the point


class StorageProxy:
    """Forwards to ``upstream``; holds the first download of each part for ``hold`` seconds."""

    def __init__(self, upstream: str, hold: float) -> None:
        self.upstream = upstream
        self.hold = hold
        self.seen: list[Seen] = []
        self._firsts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._http = httpx.Client(base_url=upstream, timeout=60)
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def parts_seen(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.startswith("/_sandbox/parts/")]

    def __enter__(self) -> StorageProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        self._http.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def do_DELETE(self) -> None:
                self._forward()

            def _forward(self) -> None:
                from cohere_batch_cli.sandbox.links import redact

                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers["Host"] = self.headers.get(
                    "Host", ""
                )  # links are built from it: they point here
                answer = proxy._http.request(self.command, self.path, headers=headers, content=body)
                path = self.path.split("?", 1)[0]
                part = path.startswith("/_sandbox/parts/") and self.command == "GET"
                with proxy._lock:
                    proxy._firsts[path] += part and "Range" not in self.headers
                    cut = part and answer.status_code == 200 and proxy._firsts[path] == 1
                    proxy.seen.append(
                        Seen(
                            self.command,
                            redact(self.path),
                            self.headers.get("Range"),
                            answer.status_code,
                            cut,
                        )
                    )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                if not cut:
                    self.wfile.write(answer.content)
                    return
                self.wfile.write(answer.content[: len(answer.content) // 2])
                self.wfile.flush()
                proxy._stopping.wait(proxy.hold)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

        return Handler
