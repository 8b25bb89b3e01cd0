"""Shared fixtures: every test runs isolated, against real servers on loopback.

- an autouse fixture points the config and the state store at temporary
  places and clears every variable that could leak the developer's own
  setup into a test (keys, profiles, proxies, TLS bundles, colour settings);
- ``sandbox`` is the real cbatch sandbox on a free port (one per session);
- ``fault_server`` is a small server that misbehaves on a plan;
- ``cli`` runs a command through typer's CliRunner and asserts its exit code,
  showing stdout and stderr when it differs;
- ``client`` is the Python API's ``cb.Client`` pointed at the sandbox, and
  ``logged`` what the library logged (tests/README.md: which of the two a test uses).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from tests.support.fault_server import FaultServer

if TYPE_CHECKING:
    import cohere_batch_cli as cb
    from tests.sandbox.sandbox_client import Api

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # Started as a background job of a shell without job control, the suite inherits
    # SIGINT ignored, and so would every cbatch it starts: the Ctrl-C tests would then
    # press a key nobody hears. Python's own handler is what a person's terminal gives.
    signal.signal(signal.SIGINT, signal.default_int_handler)

TEST_KEY = "test-key-0123456789abcdefSECRET"
"""The key tests use; test_secrets searches every captured output for it."""

_CLEARED = (
    "CO_API_KEY", "COHERE_API_KEY", "CO_API_URL", "CBATCH_PROFILE", "CBATCH_CONFIG",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
    "all_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "FORCE_COLOR", "NO_COLOR", "TERM", "CBATCH_RETRY_BASE", "CBATCH_STATE_DIR",
    "CBATCH_CACHE_DIR", "CBATCH_CACHE_MAX_BYTES",
)  # fmt: skip

CAPTURED: list[str] = []
"""Every stdout and stderr the ``cli`` fixture saw, for the secrets check at the end."""


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config" / "config.toml"
    monkeypatch.setenv("CBATCH_CONFIG", str(config))
    # Beside the test's folder, not in it: tests check what a command left in its folder.
    monkeypatch.setenv("CBATCH_STATE_DIR", str(tmp_path.parent / f"{tmp_path.name}-state"))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CBATCH_RETRY_BASE", "0.01")
    monkeypatch.chdir(tmp_path)
    from cohere_batch_cli.api.retry import RetryPolicy

    RetryPolicy.reset_env()  # the base is read once per process: a test that changed it must not leak
    yield config
    from cohere_batch_cli.state.store import close_all

    close_all()  # one connection per process: a test's store must not outlive its folder


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


class Cli:
    """Runs cbatch in-process with typer's CliRunner (stdout and stderr kept apart)."""

    def __init__(self, base_url: str | None, key: str | None) -> None:
        self.base_url = base_url
        self.key = key

    def __call__(
        self,
        *args: str,
        exit_code: int = 0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        from cohere_batch_cli.cli.app import app

        full_env = {"CO_API_KEY": self.key} if self.key else {}
        if self.base_url:
            full_env["CO_API_URL"] = self.base_url
        full_env.update(env or {})
        runner = CliRunner()
        result = runner.invoke(app, list(args), input=input, env=full_env, catch_exceptions=True)
        stdout, stderr = result.stdout, result.stderr
        CAPTURED.extend([stdout, stderr])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback

            detail = "".join(traceback.format_exception(result.exception))
            raise AssertionError(f"cbatch {' '.join(args)} raised:\n{detail}\nstderr:\n{stderr}")
        assert result.exit_code == exit_code, (
            f"cbatch {' '.join(args)} exited {result.exit_code}, expected {exit_code}\n"
            f"--- stdout\n{stdout}\n--- stderr\n{stderr}"
        )
        return Result(result.exit_code, stdout, stderr)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The real sandbox, fast-paced, shared by the session's tests."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("sandbox"),
        port=0,
        records_per_second=2000.0,
        queue_delay=0.0,
        validation_delay=0.0,
    )
    with SandboxServer(settings) as server:
        yield server


@pytest.fixture
def cli(sandbox: object) -> Cli:
    """cbatch pointed at the session's sandbox with the test key."""
    return Cli(sandbox.base_url, TEST_KEY)  # type: ignore[attr-defined]


@pytest.fixture
def client(sandbox: Any) -> Iterator[cb.Client]:
    """The Python API pointed at the session's sandbox with the test key (a test file's own ``client`` overrides it)."""
    import cohere_batch_cli as cb
    from tests.support.quiet import nothing_printed

    with nothing_printed():
        made = cb.Client(TEST_KEY, base_url=sandbox.base_url)
    yield made
    made.close()


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """What the library logged from here on (where a command prints on stderr), one message a line, read when called."""
    caplog.set_level(logging.INFO, logger="cohere_batch_cli")
    return lambda: "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("cohere_batch_cli")
    )


@pytest.fixture
def posts(sandbox: Any) -> Callable[[], list[tuple[str, str]]]:
    """The POSTs the sandbox receives from here on, as (method, path), read when called."""
    start = len(sandbox.request_log)
    return lambda: [(m, p) for m, p, _ in sandbox.request_log[start:] if m == "POST"]


@pytest.fixture
def api(sandbox: Any) -> Iterator[Api]:
    """A client that reads back what the session's sandbox holds (a test file's own ``api`` overrides it)."""
    from tests.sandbox.sandbox_client import Api

    client = Api(sandbox)
    yield client
    client.close()


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


@pytest.fixture
def fault_cli(fault_server: FaultServer) -> Cli:
    """cbatch pointed at the misbehaving server."""
    return Cli(fault_server.base_url, TEST_KEY)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaked = [text for text in CAPTURED if TEST_KEY in text]
    if leaked:
        session.exitstatus = 1
        print(f"\nthe test API key appeared in {len(leaked)} captured outputs:\n{leaked[0][:500]}")
