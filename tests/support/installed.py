"""Running the installed ``cbatch`` script as a user's shell would: a real process, real streams."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY


def cbatch_path() -> str:
    found = shutil.which("cbatch", path=os.path.dirname(sys.executable))
    if found is None:
        pytest.skip("cbatch is not installed in this environment")
    return found


def cbatch_env(base_url: str | None, cwd: Path, **extra: str) -> dict[str, str]:
    """The environment of one run: the test key and URL, config, state and cache inside ``cwd``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CO_", "COHERE_", "CBATCH_"))}
    env.update(
        CO_API_KEY=TEST_KEY,
        CBATCH_CONFIG=str(cwd / "config.toml"),
        CBATCH_STATE_DIR=str(cwd / "state"),
        CBATCH_RETRY_BASE="0.01",
        XDG_CACHE_HOME=str(cwd / "cache"),
        NO_COLOR="1",
        PYTHONFAULTHANDLER="1",
    )
    if base_url:
        env["CO_API_URL"] = base_url
    env.update(extra)
    return env


def run_cbatch(
    base_url: str | None, args: list[str], cwd: Path, *, timeout: float = 30, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``cbatch ARGS`` to the end; stdout and stderr captured unless ``popen`` says otherwise."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    popen.setdefault("stdin", subprocess.DEVNULL)
    result = subprocess.run(
        [cbatch_path(), *args],
        cwd=cwd,
        env=cbatch_env(base_url, cwd),
        text=True,
        timeout=timeout,
        check=False,
        **popen,
    )
    assert TEST_KEY not in (result.stdout or "") + (result.stderr or "")
    return result
