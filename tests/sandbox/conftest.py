"""Fixtures for the sandbox's own tests: a sandbox per test (``start``) or per module (``shared``).

Everything goes over real HTTP on loopback; see ``sandbox_client.py`` for the helpers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.sandbox.sandbox_client import Api


def make_settings(data_dir: Path, **overrides: Any) -> SandboxSettings:
    """Quick settings: outputs ready at once unless a test asks for the delay it checks."""
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "port": 0,
        "records_per_second": 5000.0,
        "output_ready_delay": 0.0,
    }
    base.update(overrides)
    return SandboxSettings(**base)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Start a sandbox with the given settings overrides; stopped at the end of the test."""
    started: list[Api] = []

    def _start(data_dir: Path | None = None, **overrides: Any) -> Api:
        server = SandboxServer(make_settings(data_dir or tmp_path / "data", **overrides)).start()
        api = Api(server)
        started.append(api)
        return api

    yield _start
    for api in started:
        api.close()
    stopping = [threading.Thread(target=api.server.stop) for api in started]  # each waits a tick
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One fast sandbox for tests that only read their own objects."""
    server = SandboxServer(make_settings(tmp_path_factory.mktemp("sbx"))).start()
    api = Api(server)
    yield api
    api.close()
    server.stop()
