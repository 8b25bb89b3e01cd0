"""Follow batches to the end, showing each change, and return the exit code of the outcome.

The engine (:mod:`cohere_batch_cli.watcher`) polls and yields events; the
reporter's watch view renders them (a live view, plain lines or JSON lines);
this task wires the two together and decides what Ctrl-C and a timeout mean:
nothing is ever cancelled, and the caller's ``resume`` command is printed so
the watch can be picked up again exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import stop_word
from ..exit_codes import ExitCode, combine, for_interruption
from ..watcher import BatchDone, NotFound, WatchOptions

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from .reporting import Reporter


def follow(
    client: CohereClient,
    batch_ids: Sequence[str],
    reporter: Reporter,
    *,
    options: WatchOptions | None = None,
    resume: str = "",
    retries: int | None = None,
    on_done: Callable[[BatchDone], None] | None = None,
    records_count: bool = False,
) -> ExitCode:
    """Watch ``batch_ids`` until each has ended (or ``options.timeout``); return the exit code.

    A COMPLETED batch is a success however many of its records failed; with
    ``records_count``, records that failed or never came back make the watch
    exit 12 (forgiven by ``options.no_exit_status``, as 8 and 9 are).

    Each poll fails fast (at most one quick retry for a blip, ``retries``
    caps it): the watcher's own backoff and outage limit handle anything
    longer, so ``--timeout`` stays a real bound. A lasting outage, a 404 past
    the grace period or a refused key are raised for the caller's error table.
    """
    from ..api.retry import RetryPolicy
    from ..watcher import Watcher

    options = options or WatchOptions()
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
                if on_done is not None:  # after the view, so the line saying it ended comes first
                    for event in events:
                        if isinstance(event, BatchDone):
                            on_done(event)
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
        short = [
            b
            for b in watcher.batches()
            if b.status.is_terminal and (b.num_records or 0) > b.num_successful_records
        ]
        for batch in short:
            left = (batch.num_records or 0) - batch.num_successful_records
            reporter.info(
                f"batch {batch.id}: {left:,} of {batch.num_records or 0:,} records failed or have no result"
            )
        if short:
            code = combine([code, ExitCode.RECORDS_FAILED])
    if code == ExitCode.TIMEOUT and resume:
        reporter.info(f"the batches keep running; continue with: {resume}")
    return code
