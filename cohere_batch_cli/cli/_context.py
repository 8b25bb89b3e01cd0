"""The state every command shares: global options, resolved settings, one API client.

The root callback stores a :class:`CliState` on typer's context; commands ask
it for what they need, and it builds each thing at most once and only when
asked, so a command that needs no client never resolves the config.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..api.client import CohereClient
    from ..config import Settings


@dataclass
class CliState:
    """Global options as given, plus the objects built from them on first use."""

    profile: str | None = None
    base_url: str | None = None
    timeout: float | None = None
    retries: int | None = None
    no_color: bool = False
    debug: bool = False
    ca_bundle: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _client: CohereClient | None = field(default=None, repr=False)
    _stderr: Console | None = field(default=None, repr=False)
    _stdout: Console | None = field(default=None, repr=False)

    # -- settings and client -------------------------------------------------

    def settings(self) -> Settings:
        if self._settings is None:
            from ..config import resolve

            self._settings = resolve(profile=self.profile, base_url_flag=self.base_url)
            for warning in self._settings.warnings:
                self.warn(warning)
        return self._settings

    def client(self) -> CohereClient:
        """The process's one API client, built on first use."""
        if self._client is None:
            from ..api.client import CohereClient, RetryPolicy, Timeouts

            settings = self.settings()
            timeouts = Timeouts(read=self.timeout) if self.timeout else Timeouts()
            self._client = CohereClient(
                settings.require_api_key(),
                settings.base_url.value or "",
                timeouts=timeouts,
                retry=RetryPolicy.from_env(self.retries),
                client_name=settings.client_name.value or "cbatch",
                ca_bundle=self.ca_bundle_path(),
                debug=self.debug_line if self.debug else None,
            )
        return self._client

    def ca_bundle_path(self) -> str | None:
        return self.ca_bundle or None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- terminals ------------------------------------------------------------

    @property
    def stdout_is_tty(self) -> bool:
        return sys.stdout.isatty()

    @property
    def stderr_is_tty(self) -> bool:
        return sys.stderr.isatty()

    def color_disabled(self) -> bool:
        return self.no_color or bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"

    def console(self) -> Console:
        """A rich console on stdout, for people; only built when a view needs one."""
        if self._stdout is None:
            self._stdout = _make_console(sys.stdout, self.color_disabled())
        return self._stdout

    def err_console(self) -> Console:
        """A rich console on stderr, for progress and live views."""
        if self._stderr is None:
            self._stderr = _make_console(sys.stderr, self.color_disabled())
        return self._stderr

    # -- messages (stderr) ----------------------------------------------------

    def info(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    def warn(self, message: str) -> None:
        self.info(f"warning: {message}")

    def debug_line(self, message: str) -> None:
        self.info(f"debug: {message}")


def _make_console(stream: Any, no_color: bool) -> Console:
    from rich.console import Console

    return Console(file=stream, no_color=no_color or None, highlight=False, soft_wrap=False)


def get_state(ctx: typer.Context) -> CliState:
    """The CliState of this invocation (a default one when a command runs alone in tests)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
