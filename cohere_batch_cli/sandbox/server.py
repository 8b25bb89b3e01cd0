"""Run the sandbox in a background thread: the object tests, the demo and the CLI use.

``with SandboxServer(settings) as server:`` returns once the socket accepts connections
and ``server.base_url`` is known (port 0 binds a free port first, so the URL is right
before uvicorn starts). Stopping ends uvicorn, then the worker, then closes the store.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from . import log
from .settings import SandboxSettings
from .store import Store
from .worker import Worker

__all__ = ["DataDirInUse", "SandboxServer", "SandboxSettings", "claim_data_dir", "run_foreground"]
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
        self._claim: IO[str] | None = None
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

        self._claim = claim_data_dir(self.settings.data_dir)
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
            self._release()
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
        self._release()

    def _release(self) -> None:
        if self._claim is not None:
            self._claim.close()  # closing the file drops the lock
            self._claim = None

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


class DataDirInUse(RuntimeError):
    """Another sandbox serves from this data directory: two would corrupt each other's state."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        self.data_dir = data_dir
        self.holder = holder
        super().__init__(f"another sandbox ({holder}) is using {data_dir}")


def claim_data_dir(data_dir: Path) -> IO[str]:
    """Hold ``data_dir`` for this server until the returned file is closed.

    Two servers on one folder would each run a worker over the same batches
    and hand out the same ids; the real service has one state per
    organisation. An OS lock (freed by the kernel when a holder dies, so a
    killed sandbox never leaves the folder claimed) decides, and the file
    says who holds it.
    """
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "serving.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held open
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "a process"
        handle.close()
        raise DataDirInUse(data_dir, holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


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
