"""A loopback stand-in for the model endpoint and for the public storage its tokenizer_url names.

``ModelAPI`` answers ``GET /v1/models/{model}`` with a context length and a
``tokenizer_url`` of the test's choosing (404 for any other model), as the API does.
``TokenizerHost`` serves files by name at ``/tokenizers/<name>``, over HTTPS when given
a TLS context, and acts as a plain-http forward proxy as well (a request for an absolute
URL is served from its path), so a test can prove a proxy setting reaches the storage
host. Both record every request's headers: a test asserts the API key reached the API
and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]


class _Server:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def answer(self, path: str) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def encoding(self, path: str) -> str | None:
        """The ``Content-Encoding`` the answer to ``path`` is sent in, if any."""
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def handle(self) -> None:
                # A client that refuses a body mid-way (a gzip bomb cut off) hangs up on purpose.
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(Seen("GET", self.path, dict(self.headers.items())))
                status, kind, body = server.answer(urlsplit(self.path).path)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                encoding = server.encoding(urlsplit(self.path).path)
                if encoding:
                    self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class ModelAPI(_Server):
    """``GET /v1/models/{model}`` for the models in ``models`` (name -> GetModelResponse fields)."""

    def __init__(self, models: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.models = models

    def answer(self, path: str) -> tuple[int, str, bytes]:
        name = unquote(path.removeprefix("/v1/models/"))
        model = self.models.get(name) if path.startswith("/v1/models/") else None
        if model is None:
            return (
                404,
                "application/json",
                json.dumps({"message": f"model '{name}' not found"}).encode(),
            )
        return (
            200,
            "application/json",
            json.dumps({"name": name, "endpoints": ["chat"], **model}).encode(),
        )


class TokenizerHost(_Server):
    """Public storage: ``/tokenizers/<name>`` serves ``files[name]``, to anyone, without a key."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(tls)
        self.files: dict[str, bytes] = {}
        self.encodings: dict[str, str] = {}
        """Files sent already encoded, by name: their ``Content-Encoding``."""

    def encoding(self, path: str) -> str | None:
        return self.encodings.get(path.removeprefix("/tokenizers/"))

    def add(self, name: str, data: bytes, host: str | None = None) -> str:
        """Serve ``data``; returns its URL (on ``host`` instead, to reach it through this as a proxy)."""
        self.files[name] = data
        return f"{'http://' + host if host else self.base_url}/tokenizers/{name}"

    def answer(self, path: str) -> tuple[int, str, bytes]:
        data = self.files.get(path.removeprefix("/tokenizers/"))
        if data is None:
            return 404, "application/xml", b"<Error><Code>NoSuchKey</Code></Error>"
        return 200, "application/json", data
