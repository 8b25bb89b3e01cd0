"""The state every command shares: global options, the run's output object, one API client.

The root callback stores a :class:`CliState` on typer's context; commands ask
it for what they need, and it builds each thing at most once and only when
asked, so a command that needs no client never resolves the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..engine import CohereClient, Settings
    from ..output.core import Output


def _new_output() -> Output:
    """A default output object, imported only when a command runs (``--help`` needs none)."""
    from ..output.core import Output

    return Output()


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
    out: Output = field(default_factory=_new_output)
    _settings: Settings | None = field(default=None, repr=False)
    _client: CohereClient | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from ..engine import resolve

            self.use_settings(resolve(profile=self.profile, base_url_flag=self.base_url))
        assert self._settings is not None
        return self._settings

    def use_settings(self, settings: Settings) -> None:
        """Run with these settings instead of the resolved ones (``cbatch demo``'s sandbox)."""
        self._settings = settings
        for warning in settings.warnings:
            self.out.warn(warning)

    @property
    def key_source(self) -> str | None:
        """Where the key in use came from, for the hint on a refused key (None: not resolved)."""
        return self._settings.api_key.source if self._settings is not None else None

    def cache_scope(self) -> str:
        """The base URL and profile the completion cache of this run belongs to."""
        from ..engine import scope_of

        settings = self.settings()
        return scope_of(settings.base_url.value or "", settings.profile)

    def client(self) -> CohereClient:
        """The process's one API client, built on first use."""
        if self._client is None:
            from ..engine import CohereClient

            self._client = CohereClient.from_settings(
                self.settings(),
                timeout=self.timeout,
                retries=self.retries,
                ca_bundle=self.ca_bundle,
                debug=self.out.debug if self.debug else None,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def get_state(ctx: typer.Context) -> CliState:
    """The CliState of this invocation (a default one when a command runs alone in tests)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
