"""Build the app's click command once, not once per ``CliRunner.invoke``.

typer's test runner converts the Typer app into a click command on every
invocation (tens of milliseconds of signature inspection); a test module that
runs the CLI hundreds of times (the fault matrix, property tests) caches it.
The command is rebuilt as soon as the cache is dropped, so nothing leaks out
of the test that asked for it.
"""

from __future__ import annotations

from typing import Any

import pytest


def cache_app_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within this test, typer.testing builds each app's command once."""
    import typer.testing

    build = getattr(typer.testing, "_get_command", None)
    if build is None:  # another typer: the tests are only slower
        return
    built: dict[int, Any] = {}
    monkeypatch.setattr(
        typer.testing, "_get_command", lambda app: built.setdefault(id(app), build(app))
    )
