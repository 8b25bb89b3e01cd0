"""Follow batches to the end, showing each change, and return the exit code of the outcome.

The engine (:mod:`cohere_batch_cli.watcher`) polls and yields events; the
reporter's watch view renders them (a live view, plain lines or JSON lines);
this task wires the two together and decides what Ctrl-C and a timeout mean:
nothing is ever cancelled, and the caller's ``resume`` command is printed so
the watch can be picked up again exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .. import pace
from ..errors import stop_word
from ..exit_codes import ExitCode, combine, for_interruption
from ..watcher import BatchDone, NotFound, WatchOptions

PROGRESS_EVERY = 30.0
"""Plain lines: at most one progress line per batch this often (seconds)."""


@dataclass(frozen=True)
class WatchSpec:
    """Everything a watch honours, parsed once per command from its flags and passed whole.

    Every command that runs a watch (``watch``, ``create --watch``, ``retry
    --watch``, the ``jobs`` commands, ``cancel --wait``) builds one of these
    from the same options and hands it, whole, to :func:`follow`: an option
    cannot be accepted by one command and lost on its way to the engine.
    ``deadline`` is the moment (``time.monotonic()``) the whole command must
    stop by: ``--timeout`` bounds the upload, the validation, the pauses
    between rounds and every watch of the run, not one watch alone. It is the
    command's one clock and lives here alone: it starts as the flags are
    parsed, and the send (:func:`.send_file.create_from_file`,
    :func:`.jobs.send_parts`) and the rounds (:func:`.retrying.retry_rounds`,
    :func:`.jobs.retry_job`) are handed this spec to read it, never a copy of
    the moment in their own options.
    """

    interval: float = pace.INTERVAL
    max_interval: float = pace.MAX_INTERVAL
    outage_limit: float = pace.OUTAGE_LIMIT
    progress_every: float = PROGRESS_EVERY
    no_exit_status: bool = False
    on_done: str | None = None
    timeout: float | None = None
    """``--timeout`` as given, in seconds (for the command that carries on)."""
    deadline: float | None = None
    plain: bool = False
    json_lines: bool = False
    fail_on_records: bool = False
    given: frozenset[str] = field(default=frozenset(), compare=False)
    """The watch options given on the command line (by their flag), for refusals."""

    def __post_init__(self) -> None:
        if self.timeout is not None and self.deadline is None:
            object.__setattr__(self, "deadline", time.monotonic() + self.timeout)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never below zero), None without ``--timeout``."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def options(self) -> WatchOptions:
        """The engine's pace and limits for a watch that starts now (its timeout: what is left)."""
        left = self.remaining()
        return WatchOptions(
            interval=self.interval,
            max_interval=max(self.interval, self.max_interval),
            timeout=None if left is None else max(left, 0.001),
            outage_limit=self.outage_limit,
            no_exit_status=self.no_exit_status,
        )

    def strict(self) -> WatchSpec:
        """This spec judging each batch as it ended: a round loop forgives (``--no-exit-status``) only at its end."""
        return replace(self, no_exit_status=False, fail_on_records=False)

    def forgive(self, code: ExitCode) -> ExitCode:
        """``--no-exit-status``: 8, 9 and 12 become 0; every other code stands."""
        if self.no_exit_status and code in (
            ExitCode.BATCH_FAILED,
            ExitCode.BATCH_CANCELED,
            ExitCode.RECORDS_FAILED,
        ):
            return ExitCode.OK
        return code


if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from .reporting import Reporter


def follow(
    client: CohereClient,
    batch_ids: Sequence[str],
    reporter: Reporter,
    spec: WatchSpec | None = None,
    *,
    resume: str = "",
    retries: int | None = None,
    on_ends: Callable[[list[BatchDone]], None] | None = None,
    invalid_left: Callable[[Batch], int] | None = None,
) -> ExitCode:
    """Watch ``batch_ids`` until each has ended (or the spec's deadline); return the exit code.

    A COMPLETED batch is a success however many of its records failed; with
    ``spec.fail_on_records``, records that failed or never came back make the
    watch exit 12 (forgiven by ``spec.no_exit_status``, as 8 and 9 are), and
    so do a schema run's invalid answers, which the API counts as successes:
    for a batch whose counts show no failure, ``invalid_left`` reads its
    answers (:func:`.retrying.invalid_left`).
    ``spec.on_done`` runs as each batch ends; then ``on_ends`` is told, once a
    poll, of every batch that ended in it (a job's one progress line for a
    burst of ends).

    Each poll fails fast (at most one quick retry for a blip, ``retries``
    caps it): the watcher's own backoff and outage limit handle anything
    longer, so ``--timeout`` stays a real bound. A lasting outage, a 404 past
    the grace period or a refused key are raised for the caller's error table.
    """
    from ..api.retry import RetryPolicy
    from ..watcher import Watcher

    spec = spec or WatchSpec()
    options = spec.options()
    records_count = spec.fail_on_records
    hooks: list[Callable[[BatchDone], None]] = []
    if spec.on_done:
        from .notify import OnDone

        hooks.append(OnDone(spec.on_done, reporter))
    ids = list(dict.fromkeys(batch_ids))
    view = reporter.watch_view(ids)
    source = client.with_retry(RetryPolicy.for_polls(retries))
    watcher = Watcher(source, ids, options, sleep=view.sleep)
    try:
        with view:
            for events in watcher.rounds():
                view.handle(events)
                for event in events:
                    if isinstance(event, NotFound):
                        reporter.warn(
                            f"batch {event.batch_id} was not found ({event.error}); "
                            "no longer watched: list batches with: cbatch list"
                        )
                ended = [event for event in events if isinstance(event, BatchDone)]
                for event in ended:  # after the view, so the line saying it ended comes first
                    for hook in hooks:
                        hook(event)
                if ended and on_ends is not None:
                    on_ends(ended)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the same words, the signal's code
        reporter.info(
            f"\n{stop_word(exc)}: stopped watching; nothing was cancelled, the batches keep running."
        )
        if resume:
            reporter.info(f"resume with: {resume}")
        return for_interruption(exc)
    finally:
        s = watcher.stats
        reporter.debug(
            f"watch: {s.requests} requests ({s.gets} GET, {s.list_pages} list pages) "
            f"in {s.rounds} rounds, {s.failures} failed"
        )
    code = watcher.exit_code if watcher.exit_code is not None else ExitCode.UNEXPECTED
    if (
        records_count
        and not options.no_exit_status
        and code in (ExitCode.OK, ExitCode.BATCH_FAILED, ExitCode.BATCH_CANCELED)
    ):
        short = False
        for batch in watcher.batches():
            if not batch.status.is_terminal:
                continue
            records = batch.num_records or 0
            if (left := records - batch.num_successful_records) > 0:
                reporter.info(
                    f"batch {batch.id}: {left:,} of {records:,} records failed or have no result"
                )
            elif invalid_left is not None and (left := invalid_left(batch)) > 0:
                reporter.info(
                    f"batch {batch.id}: {left:,} of {records:,} records have no answer that follows the run's schema"
                )
            short = short or left > 0
        if short:
            code = combine([code, ExitCode.RECORDS_FAILED])
    if code == ExitCode.TIMEOUT and resume:
        reporter.info(f"the batches keep running; continue with: {resume}")
    return code
