"""What a task may say while it works: the one interface between tasks and the output.

In a command the reporter is the run's :class:`~cohere_batch_cli.output.core.Output`;
a task never learns whether its words reach a terminal, a log or nowhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..output.progress import ProgressSink
    from ..output.watch_views import WatchView


class Reporter(Protocol):
    """Messages, progress and watch views, as the output object provides them."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def debug(self, message: str) -> None: ...

    def progress(self, description: str) -> ProgressSink: ...

    def watch_view(self, batch_ids: Sequence[str]) -> WatchView: ...

    @property
    def interactive(self) -> bool:
        """Someone can answer a question: stdin and stderr are terminals."""
        ...

    def ask(self, question: str) -> str | None:
        """The answer typed at a terminal (stripped), or None when nobody can answer."""
        ...

    def spell(self, command: str, program: str) -> str:
        """Of one thing to do, the words of whoever hears this reporter: ``command``'s, or ``program``'s.

        A task that names what to do next (a flag, a command to run) says it
        through here, giving both: a command's output says the command line's
        words (``--no-dedupe``, ``cbatch watch ID``), the library's reporter a
        program's (``dedupe=False``, ``Run.wait()``). The task's logic stays
        one, and a program is never pointed at a flag it does not have.
        """
        ...
