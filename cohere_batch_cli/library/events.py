"""What the library tells a program while it works: one typed event, never a line of text.

A command prints a watch as a live view or plain lines; a program wants the
numbers. The watch engine's events (:mod:`cohere_batch_cli.watcher`) and the
upload and download progress of a task are turned into one :class:`Event`
each, handed to the callback the program gave (``on_event`` of the client,
``on_progress`` of a wait), so a notebook draws its own bar and an
orchestrator logs its own fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..api.models import Batch, BatchStatus
    from ..watcher import WatchEvent

EventKind = Literal[
    "snapshot",
    "progress",
    "status_changed",
    "batch_done",
    "not_found",
    "transient_error",
    "recovered",
    "timed_out",
    "all_done",
    "step_started",
    "step_progress",
    "step_done",
]
"""What happened. The watch's kinds are the engine's own (``cbatch watch --json`` names them
the same); ``step_*`` are a step's bytes and records: the local check of a file, its
upload, a download of results, a count of tokens (``description`` says which)."""


@dataclass(frozen=True)
class Event:
    """One thing that moved: a batch's status or counts, or the bytes of a step (an upload...).

    Watch events carry the batch as last read (``batch``, whose ``raw`` is the
    API's object whole) and its counts; step events carry ``description``
    (``"checking requests.jsonl"``, ``"uploading requests.jsonl"``, ``"downloading
    results"``) and bytes and records so far. A field an event does not know is None.
    """

    kind: EventKind
    batch_id: str | None = None
    status: BatchStatus | None = None
    """The batch's status (``cb.BatchStatus``; ``status.label`` reads ``in progress``)."""
    records_total: int | None = None
    records_done: int | None = None
    """Records processed so far (succeeded and failed), or records a step went through."""
    records_failed: int | None = None
    rate: float | None = None
    """Records a second over the recent window, once measurable."""
    eta: float | None = None
    """Seconds until every record is processed at ``rate``."""
    elapsed: float | None = None
    """Seconds since the watch started."""
    bytes_done: int | None = None
    bytes_total: int | None = None
    description: str | None = None
    error: str | None = None
    """What went wrong, for ``transient_error`` and ``not_found``."""
    batch: Batch | None = None


def from_watch(event: WatchEvent) -> Event:
    """The engine's event as a program's: the same kind, the numbers as fields."""
    from ..watcher import (
        AllDone,
        BatchDone,
        NotFound,
        Progress,
        Recovered,
        Snapshot,
        StatusChanged,
        TimedOut,
        TransientError,
    )

    if isinstance(event, Progress):  # before Snapshot, which it extends
        return _of_batch("progress", event.batch, event.elapsed, event.rate, event.eta)
    if isinstance(event, Snapshot):
        return _of_batch("snapshot", event.batch, event.elapsed, event.rate, event.eta)
    if isinstance(event, StatusChanged):
        return _of_batch("status_changed", event.batch, event.elapsed, event.rate, event.eta)
    if isinstance(event, BatchDone):
        return _of_batch("batch_done", event.batch, event.elapsed, None, None)
    if isinstance(event, NotFound):
        return Event(
            "not_found", batch_id=event.batch_id, error=str(event.error), elapsed=event.elapsed
        )
    if isinstance(event, TransientError):
        return Event("transient_error", error=str(event.error), elapsed=event.elapsed)
    if isinstance(event, Recovered):
        return Event("recovered", elapsed=event.elapsed)
    if isinstance(event, TimedOut):
        return Event("timed_out", elapsed=event.elapsed)
    assert isinstance(event, AllDone)
    return Event("all_done", elapsed=event.elapsed)


def _of_batch(
    kind: EventKind, batch: Batch, elapsed: float, rate: float | None, eta: float | None
) -> Event:
    return Event(
        kind,
        batch_id=batch.id,
        status=batch.status,
        records_total=batch.num_records,
        records_done=batch.num_processed,
        records_failed=batch.num_failed_records,
        rate=rate,
        eta=eta,
        elapsed=elapsed,
        batch=batch,
    )
