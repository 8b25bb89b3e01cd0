"""SIGKILL at a moment found by watching, never by a timer: the kill tests' one helper.

The retry and jobs kill tests stop the installed ``cbatch`` at the point a
condition names (a step in the state store, a request in the sandbox's log), as a
power cut or ``kill -9`` would, then check that running the same command again
doubles nothing and loses nothing.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

import pytest


def kill_when(
    proc: subprocess.Popen[str], condition: Callable[[], bool], what: str, timeout: float = 60.0
) -> None:
    """SIGKILL ``proc`` as soon as ``condition`` holds (checked every few milliseconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"cbatch ended ({proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.003)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
