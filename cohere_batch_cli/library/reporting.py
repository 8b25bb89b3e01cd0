"""The library's reporter: a task's words go to ``logging``, its progress to a callback; nothing prints.

Tasks speak through a :class:`~cohere_batch_cli.tasks.reporting.Reporter`; in a
command that is the run's output object, which writes to the terminal. A
program that imports cbatch owns its own stdout and stderr, so here messages
become records of the ``cohere_batch_cli`` logger (info, warning, debug) and
progress becomes :class:`~.events.Event` values handed to the program's
callback. The logger gets a ``NullHandler``: without one, Python's last-resort
handler would print warnings to stderr in a program that configured no logging.
Nobody can be asked a question: :meth:`LibraryReporter.ask` answers None,
which every task takes as "refuse rather than guess".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .events import Event, EventKind, from_watch

if TYPE_CHECKING:
    from ..output.progress import ProgressSink
    from ..output.watch_views import WatchView
    from ..watcher import WatchEvent

LOGGER_NAME = "cohere_batch_cli"
logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())

EventCallback = Callable[[Event], None]
"""What a program passes to hear of progress: called with each :class:`Event`, in order."""

TRANSFER_EVERY = 0.25
"""Seconds between two ``step_progress`` events of one step (its first and last always come)."""


class LibraryReporter:
    """A :class:`~cohere_batch_cli.tasks.reporting.Reporter` for a program: logging and callbacks."""

    def __init__(self, *callbacks: EventCallback | None) -> None:
        self._callbacks = tuple(c for c in callbacks if c is not None)

    def also(self, callback: EventCallback | None) -> LibraryReporter:
        """This reporter with one more callback (a wait's ``on_progress`` beside the client's)."""
        return LibraryReporter(*self._callbacks, callback)

    def emit(self, event: Event) -> None:
        for callback in self._callbacks:
            callback(event)

    def info(self, message: str) -> None:
        logger.info(message.strip())

    def warn(self, message: str) -> None:
        logger.warning(message.strip())

    def debug(self, message: str) -> None:
        logger.debug(message.strip())

    def progress(self, description: str) -> ProgressSink:
        return StepEvents(description, self.emit)

    def watch_view(self, batch_ids: Sequence[str]) -> WatchView:
        return WatchEvents(self.emit)

    @property
    def interactive(self) -> bool:
        """Never: a library has nobody at a terminal to answer."""
        return False

    def ask(self, question: str) -> str | None:
        return None

    def spell(self, command: str, program: str) -> str:
        """A program's words: it has no flags (:meth:`~cohere_batch_cli.tasks.reporting.Reporter.spell`)."""
        return program


class StepEvents:
    """A step's progress as events (a check, an upload, a download): started, progress (at most 4 a second), done."""

    def __init__(self, description: str, emit: EventCallback) -> None:
        self._description = description
        self._emit = emit
        self._bytes = 0
        self._records = 0
        self._total_bytes: int | None = None
        self._total_records: int | None = None
        self._last = 0.0

    def _event(self, kind: EventKind) -> Event:
        return Event(
            kind,
            description=self._description,
            bytes_done=self._bytes,
            bytes_total=self._total_bytes,
            records_done=self._records,
            records_total=self._total_records,
        )

    def start(self, total_bytes: int | None = None, total_records: int | None = None) -> None:
        self._total_bytes, self._total_records = total_bytes, total_records
        self._last = time.monotonic()
        self._emit(self._event("step_started"))

    def advance(self, bytes: int = 0, records: int = 0) -> None:
        self._bytes += bytes
        self._records += records
        now = time.monotonic()
        if now - self._last >= TRANSFER_EVERY:
            self._last = now
            self._emit(self._event("step_progress"))

    def finish(self) -> None:
        self._emit(self._event("step_done"))


class WatchEvents:
    """A watch view that draws nothing: each engine event becomes an :class:`Event` for the callbacks."""

    def __init__(self, emit: EventCallback) -> None:
        self._emit = emit

    def __enter__(self) -> WatchEvents:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        return None

    def handle(self, events: Sequence[WatchEvent]) -> None:
        for event in events:
            self._emit(from_watch(event))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
