"""Run the sandbox in a background thread: the object tests, the demo and the CLI use.

``with SandboxServer(settings) as server:`` returns once the socket accepts connections
and ``server.base_url`` is known (port 0 binds a free port first, so the URL is right
before uvicorn starts). Stopping ends uvicorn, then the worker, then closes the store.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import log
from .settings import SandboxSettings
from .store import Store
from .worker import Worker

__all__ = ["SandboxServer", "SandboxSettings", "run_foreground"]
logger = log.get("server")

if TYPE_CHECKING:
    from typing_extensions import Self


class _Discard(list[tuple[str, str, dict[str, str]]]):
    """A request log that keeps nothing."""

    def append(self, item: object) -> None:
        pass


class SandboxServer:
    """A sandbox listening on loopback (or ``settings.host``) from a daemon thread."""

    def __init__(self, settings: SandboxSettings, *, record_requests: bool = True) -> None:
        """``record_requests`` keeps every request (headers included) in ``request_log``
        for tests; a long-running foreground sandbox turns it off so memory stays flat
        and no key is held."""
        self.settings = settings
        self.request_log: list[tuple[str, str, dict[str, str]]] = []
        self._record_requests = record_requests
        self.store: Store | None = None
        self.worker: Worker | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        host = self.settings.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        import uvicorn  # lazy: the sandbox extra

        from .app import create_app

        self.store = Store(self.settings.data_dir)
        self.worker = Worker(self.store, self.settings)
        log = self.request_log if self._record_requests else _Discard()
        app = create_app(self.settings, store=self.store, worker=self.worker, request_log=log)
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
        try:
            sock.bind((self.settings.host, self.settings.port))
        except OSError:
            sock.close()
            self.store.close()
            raise
        sock.listen(2048)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            log_config=None,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)  # in a thread of its own: it leaves signals alone
        self._server = server
        self.worker.start()
        self._thread = threading.Thread(target=self._serve, name="cbatch-sandbox-http", daemon=True)
        self._thread.start()
        while not server.started:
            if self._error is not None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the sandbox did not start: {self._error!r}")
            threading.Event().wait(0.005)
        return self

    def _serve(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported by start(), and logged for a running server
            self._error = exc
            logger.exception("the HTTP server stopped")

    def stop(self) -> None:
        """Stop accepting, finish in-flight requests, stop the worker, close the database."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_foreground(
    settings: SandboxSettings, on_ready: Callable[[SandboxServer], None]
) -> SandboxServer:
    """Serve until SIGINT or SIGTERM (then stop cleanly); returns the stopped server.

    ``on_ready`` runs once the socket accepts connections: ``cbatch sandbox serve``
    prints the URL there, the line a parent process waits for.
    """
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with SandboxServer(settings, record_requests=False) as server:
            logger.info("listening on %s, data in %s", server.base_url, settings.data_dir)
            on_ready(server)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("stopped")
    return server
