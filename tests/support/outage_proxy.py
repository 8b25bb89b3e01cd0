"""A reverse proxy in front of the sandbox that can fail the way an API does, on the test's word.

``answer(500)`` makes every request get that status (the server is there and says
it failed); ``down()`` closes the listening socket (connection refused: nothing
answers on the port); ``up()`` listens on the same port again and passes requests
through. cbatch is pointed at the proxy, so a watch meets a real outage and a real
recovery on loopback.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class OutageProxy:
    """Forwards to ``upstream`` until told to answer an error status or to stop listening."""

    def __init__(self, upstream: str) -> None:
        self._http = httpx.Client(base_url=upstream, timeout=30)
        self._status: int | None = None
        self._httpd: _Server | None = None
        self.port = 0
        self.up()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Listen (on the same port as before, if any) and pass requests through."""
        self._status = None
        if self._httpd is None:
            self._httpd = _Server(("127.0.0.1", self.port), self._handler())
            self.port = self._httpd.server_address[1]
            threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()

    def answer(self, status: int) -> None:
        """Answer every request with ``status`` and a JSON message, as a failing API does."""
        self._status = status

    def down(self) -> None:
        """Stop listening: connections to the port are refused."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def close(self) -> None:
        self.down()
        self._http.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def do_DELETE(self) -> None:
                self._forward()

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status = proxy._status
                if status is not None:
                    data = json.dumps({"message": "internal server error"}).encode()
                    self._reply(status, {"content-type": "application/json"}, data)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                answer = proxy._http.request(self.command, self.path, headers=headers, content=body)
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
                kept.pop("content-encoding", None)
                self._reply(answer.status_code, kept, answer.content)

            def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
