"""The watch engine: poll batches until each one ends, and say what changed as typed events.

Nothing here prints or imports rich/typer: :mod:`cohere_batch_cli.output.watch_views`
turns the events into a live view, plain lines or JSON lines, and ``cli/watch.py``
wires the two together. Keeping the engine apart means it is tested with a fake
clock and a fake sleep, and ``create --watch``, ``cancel --wait`` and ``results
--wait`` reuse exactly the same loop.

How one watch goes::

    round:  <= 3 batches left: one GET per batch still running
            >  3 batches left: ONE paged list (order_by=updated_at, newest first),
                               pages followed only while watched ids are missing and
                               the pages are not yet older than the oldest update
                               already seen; a GET for each id the list did not show
    events: Snapshot (first sight), StatusChanged, Progress (counters moved),
            BatchDone (terminal), then AllDone or TimedOut; TransientError and
            Recovered around outages
    sleep:  back to --interval while something moved; x1.5 per idle round (x2
            while everything is QUEUED) up to --max-interval; shortened to the
            nearest ETA; +-10 % jitter so many watchers do not poll in step;
            never past the --timeout deadline
    errors: NetworkError, RateLimitError, ServerError, UnexpectedResponseError are
            transient: reported, backed off (the shared RetryPolicy's doubling
            step from --interval to --max-interval, with the pacing jitter),
            retried; after ``outage_limit`` seconds of nothing but failures the
            last one is re-raised. A 404 for a batch never seen is retried for
            ``not_found_grace`` seconds (a batch just created may not be
            readable yet); one still missing after that is reported at once
            (NotFound), dropped, and counted in the exit code (4) while the
            others are followed to the end. Anything else is raised at once.
    order:  the list round trusts only a page that is newest update first;
            the API does not document the order, so at the first page in
            another the watch falls back to one GET per batch for good.
"""

from __future__ import annotations

import random
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol

from . import pace
from .api.errors import (
    CohereAPIError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from .api.models import Batch, BatchStatus, newest_first
from .api.retry import RetryPolicy
from .exit_codes import ExitCode, combine

TRANSIENT_ERRORS: tuple[type[CohereAPIError], ...] = (
    NetworkError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
"""Errors that say nothing about the batches, only about the road to them: never fatal at once."""

MAX_PAGE_SIZE = 1000
_MOVING = frozenset({BatchStatus.IN_PROGRESS, BatchStatus.CANCELING})
"""The statuses in which records are processed: the only ones the rate is measured over."""


class BatchSource(Protocol):
    """The two calls the engine needs; ``CohereClient`` has them, tests may fake them.

    A source that also has ``get_dataset(id)`` lets the engine check that a
    CANCELED batch's output dataset exists before a view offers to download
    it (see :attr:`BatchDone.results`).
    """

    def get_batch(self, batch_id: str, *, timeout: float | None = None) -> Batch: ...

    def list_batches_page(
        self,
        *,
        page_size: int = 50,
        page_token: str | None = None,
        order_by: str | None = None,
        timeout: float | None = None,
    ) -> tuple[list[Batch], str | None]: ...


@dataclass(frozen=True)
class WatchOptions:
    """Pace and limits of one watch; every duration in seconds."""

    interval: float = pace.INTERVAL
    """Shortest pause between rounds (used while progress moves)."""
    max_interval: float = pace.MAX_INTERVAL
    """Longest pause between rounds (reached while nothing moves)."""
    timeout: float | None = None
    """Give up (TimedOut, exit 10) after this long; the batches keep running."""
    outage_limit: float = pace.OUTAGE_LIMIT
    """Re-raise the last transient error once polls have failed for this long."""
    not_found_grace: float = 10.0
    """Keep retrying a 404 for a batch never seen, for this long after the start."""
    list_threshold: int = 3
    """Above this many running batches, one list request per round replaces the GETs."""
    max_list_pages: int = 5
    """Pages one round may read before falling back to GETs for the ids still missing."""
    jitter: float = 0.1
    """Each pause is multiplied by a random factor in [1 - jitter, 1 + jitter]."""
    rate_window: float = 60.0
    """Records/second is measured over the observations of this last stretch of time."""
    no_exit_status: bool = False
    """Any terminal outcome counts as success (exit 0)."""

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        if self.max_interval < self.interval:
            raise ValueError("max_interval must be at least interval")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.outage_limit < 0:
            raise ValueError("outage_limit must not be negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def outage_policy(self) -> RetryPolicy:
        """How polls back off through an outage: doubling from ``interval`` to ``max_interval``.

        Bounded by ``outage_limit`` in total, never by a count: the watch retries
        for as long as the limit allows. The jitter is the watch's own pacing
        jitter, applied by the engine to every pause alike.
        """
        return RetryPolicy(
            retries=sys.maxsize,
            initial=self.interval,
            maximum=self.max_interval,
            max_total=self.outage_limit,
            jitter=0.0,
        )


# -- events --------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """A batch seen for the first time in this watch (terminal ones are followed by BatchDone)."""

    kind: ClassVar[str] = "snapshot"
    batch: Batch
    rate: float | None
    """Records processed per second over the recent window; None until measurable."""
    eta: float | None
    """Seconds until every record is processed at ``rate``; None without a rate or a total."""
    elapsed: float
    """Seconds since the watch started."""


@dataclass(frozen=True)
class Progress(Snapshot):
    """A batch's counters (records, tokens) moved while its status stayed the same."""

    kind: ClassVar[str] = "progress"


@dataclass(frozen=True)
class StatusChanged:
    """A batch moved from one status to another (the batch carries its counters too)."""

    kind: ClassVar[str] = "status_changed"
    batch: Batch
    old: BatchStatus
    new: BatchStatus
    rate: float | None
    eta: float | None
    elapsed: float


@dataclass(frozen=True)
class TransientError:
    """A poll failed in a way that may pass; the watch goes on after ``retry_in`` seconds."""

    kind: ClassVar[str] = "transient_error"
    error: CohereAPIError
    retry_in: float
    down_for: float
    """Seconds since the first of the failures in a row (0 for the first one)."""
    elapsed: float


@dataclass(frozen=True)
class Recovered:
    """Polls succeed again after one or more transient errors."""

    kind: ClassVar[str] = "recovered"
    down_for: float
    elapsed: float


@dataclass(frozen=True)
class BatchDone:
    """A batch reached COMPLETED, FAILED or CANCELED; ``exit_code`` is its own outcome."""

    kind: ClassVar[str] = "batch_done"
    batch: Batch
    exit_code: ExitCode
    elapsed: float
    results: bool | None = None
    """Whether its output dataset can be read: True (a finished batch's, or a cancelled one's
    that was found), False (none, or the one it names was not found), None (not known)."""


@dataclass(frozen=True)
class NotFound:
    """A watched batch still answered 404 after the grace period (or stopped existing): dropped."""

    kind: ClassVar[str] = "not_found"
    batch_id: str
    error: CohereAPIError
    elapsed: float
    exit_code: ExitCode = ExitCode.NOT_FOUND


@dataclass(frozen=True)
class TimedOut:
    """The ``timeout`` ran out before every batch ended; they are left running."""

    kind: ClassVar[str] = "timed_out"
    pending_ids: tuple[str, ...]
    batches: tuple[Batch, ...]
    """The last state seen of every watched batch (those never seen are absent)."""
    elapsed: float
    exit_code: ExitCode = ExitCode.TIMEOUT


@dataclass(frozen=True)
class AllDone:
    """Every watched batch is terminal; ``exit_code`` is the watch's outcome."""

    kind: ClassVar[str] = "all_done"
    batches: tuple[Batch, ...]
    exit_code: ExitCode
    elapsed: float
    not_found: tuple[str, ...] = ()
    """Ids that answered 404 and were dropped (see :class:`NotFound`)."""


WatchEvent = (
    Snapshot
    | Progress
    | StatusChanged
    | TransientError
    | Recovered
    | BatchDone
    | NotFound
    | TimedOut
    | AllDone
)
"""Every event the engine yields; ``event.kind`` names it in JSON lines."""


# -- outcome -------------------------------------------------------------------------


def batch_exit_code(batch: Batch) -> ExitCode:
    """One batch's outcome: 0 COMPLETED, 8 FAILED, 9 CANCELED, 10 still running."""
    status = batch.status
    if status == BatchStatus.COMPLETED:
        return ExitCode.OK
    if status == BatchStatus.FAILED:
        return ExitCode.BATCH_FAILED
    if status == BatchStatus.CANCELED:
        return ExitCode.BATCH_CANCELED
    return ExitCode.TIMEOUT


def outcome_exit_code(
    batches: Iterable[Batch], no_exit_status: bool = False, *, not_found: int = 0
) -> ExitCode:
    """The exit code of a watch over ``batches``, ``not_found`` more having answered 404.

    The worst outcome wins, in the one order :func:`~cohere_batch_cli.exit_codes.combine`
    keeps: a batch that does not exist (4), then a wait that ended first (10;
    a batch still running), then FAILED (8) before CANCELED (9).
    ``no_exit_status`` forgives only how batches ended, never 4 or 10.
    """
    codes = {batch_exit_code(b) for b in batches}
    if no_exit_status:
        codes -= {ExitCode.BATCH_FAILED, ExitCode.BATCH_CANCELED}
    if not_found:
        codes.add(ExitCode.NOT_FOUND)
    return combine(codes)


# -- per-batch tracking --------------------------------------------------------------


def _counters(batch: Batch) -> tuple[int | None, ...]:
    return (
        batch.num_records,
        batch.num_successful_records,
        batch.num_failed_records,
        batch.input_tokens,
        batch.output_tokens,
    )


@dataclass
class _Tracked:
    """What the engine remembers of one batch: its last state and recent progress samples."""

    id: str
    batch: Batch | None = None
    done: bool = False
    missing: bool = False
    """It answered 404 past the grace period and was dropped."""
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add_sample(self, now: float, processed: int, window: float) -> None:
        if self.samples and processed < self.samples[-1][1]:
            self.samples.clear()  # counters went back: a reset, not negative progress
        self.samples.append((now, processed))
        while len(self.samples) > 2 and now - self.samples[1][0] >= window:
            self.samples.popleft()

    def rate(self) -> float | None:
        """Records/second between the oldest and newest sample of the window."""
        if len(self.samples) < 2:
            return None
        (t0, p0), (t1, p1) = self.samples[0], self.samples[-1]
        if t1 <= t0:
            return None
        return (p1 - p0) / (t1 - t0)

    def eta(self) -> float | None:
        """Seconds left at the current rate; None when not moving or the total is unknown."""
        batch = self.batch
        rate = self.rate()
        if batch is None or batch.status.is_terminal or not rate or rate <= 0:
            return None
        total = batch.num_records
        if not total:
            return None
        return max(0.0, (total - batch.num_processed) / rate)


@dataclass
class PollStats:
    """Requests the engine made, for tests and ``--debug``: the cost of a watch at a glance."""

    gets: int = 0
    list_pages: int = 0
    rounds: int = 0
    failures: int = 0

    @property
    def requests(self) -> int:
        return self.gets + self.list_pages


class _Missing(Exception):
    """Internal: a batch not found yet, still within its grace period."""


# -- the engine ----------------------------------------------------------------------


class Watcher:
    """Polls ``batch_ids`` through ``source`` and yields what changed.

    Iterate :meth:`rounds` for one list of events per poll round (what a live
    view refreshes on, and what every renderer consumes). The iteration ends
    after :class:`AllDone` or :class:`TimedOut`; fatal errors propagate, and
    so does KeyboardInterrupt (the caller decides what Ctrl-C means; the
    engine never cancels anything).
    """

    def __init__(
        self,
        source: BatchSource,
        batch_ids: Sequence[str],
        options: WatchOptions = WatchOptions(),
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        ids = list(dict.fromkeys(batch_ids))  # once each, in the order given
        if not ids:
            raise ValueError("no batch to watch")
        self.source = source
        self.options = options
        self.stats = PollStats()
        self.exit_code: ExitCode | None = None
        self._tracked = {i: _Tracked(i) for i in ids}
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._outage = options.outage_policy()
        self._started = 0.0
        self._pace = options.interval
        self._list_unordered = False

    def batches(self) -> list[Batch]:
        """The last state seen of each watched batch, in the order given (dropped ones left out)."""
        return [t.batch for t in self._tracked.values() if t.batch is not None and not t.missing]

    # -- the loop ---------------------------------------------------------------------

    def rounds(self) -> Iterator[list[WatchEvent]]:
        opts = self.options
        self._started = self._clock()
        deadline = None if opts.timeout is None else self._started + opts.timeout
        outage_since: float | None = None
        failures = 0
        while True:
            events: list[WatchEvent] = []
            self.stats.rounds += 1
            try:
                moved = self._poll_round(events, deadline)
            except TRANSIENT_ERRORS as exc:
                now = self._clock()
                self.stats.failures += 1
                failures += 1
                if outage_since is None:
                    outage_since = now
                down_for = now - outage_since
                if deadline is not None and now >= deadline:
                    yield [*events, self._timed_out()]
                    return
                if down_for >= self._outage.max_total:
                    if events:
                        yield events
                    raise exc
                step = self._outage.step(failures)
                wait = self._jittered(step, floor=min(opts.interval, step))
                wait = min(wait, max(0.0, self._outage.max_total - down_for))
                events.append(TransientError(exc, wait, down_for, self._elapsed()))
            else:
                if outage_since is not None:
                    events.insert(0, Recovered(self._clock() - outage_since, self._elapsed()))
                    outage_since, failures = None, 0
                if all(t.done for t in self._tracked.values()):
                    final = [
                        t.batch
                        for t in self._tracked.values()
                        if t.batch is not None and not t.missing
                    ]
                    missing = sum(t.missing for t in self._tracked.values())
                    self.exit_code = outcome_exit_code(
                        final, opts.no_exit_status, not_found=missing
                    )
                    gone = tuple(t.id for t in self._tracked.values() if t.missing)
                    yield [*events, AllDone(tuple(final), self.exit_code, self._elapsed(), gone)]
                    return
                wait = self._next_pause(moved)
            if deadline is not None:
                left = deadline - self._clock()
                if left <= 0:
                    yield [*events, self._timed_out()]
                    return
                wait = min(wait, left)
            yield events
            self._sleep(wait)
            if deadline is not None and self._clock() >= deadline:
                yield [self._timed_out()]
                return

    def _timed_out(self) -> TimedOut:
        pending = tuple(t.id for t in self._tracked.values() if not t.done)
        missing = sum(t.missing for t in self._tracked.values())
        self.exit_code = combine([ExitCode.TIMEOUT] + ([ExitCode.NOT_FOUND] if missing else []))
        return TimedOut(pending, tuple(self.batches()), self._elapsed(), self.exit_code)

    def _elapsed(self) -> float:
        return self._clock() - self._started

    def _jittered(self, seconds: float, floor: float) -> float:
        j = self.options.jitter
        factor = self._rng.uniform(1 - j, 1 + j) if j else 1.0
        return max(floor, min(self.options.max_interval, seconds * factor))

    def _next_pause(self, moved: bool) -> float:
        """The adaptive pause: quick while things move, slower and slower while idle."""
        opts = self.options
        running = [t for t in self._tracked.values() if not t.done]
        if any(t.batch is None for t in running):  # a 404 in its grace period
            return min(opts.interval, 1.0)
        if moved:
            self._pace = opts.interval
        else:
            queued = all(
                t.batch is not None and t.batch.status == BatchStatus.QUEUED for t in running
            )
            self._pace = min(opts.max_interval, self._pace * (2.0 if queued else 1.5))
        pace = self._pace
        etas = [e for e in (t.eta() for t in running) if e is not None]
        if etas:  # be there soon after the nearest batch should finish
            pace = min(pace, max(opts.interval, min(etas)))
        return self._jittered(pace, floor=opts.interval)

    # -- one round --------------------------------------------------------------------

    def _request_timeout(self, deadline: float | None) -> float | None:
        """A request may not outlive the watch: its timeout is at most the time left."""
        if deadline is None:
            return None
        return max(0.001, deadline - self._clock())

    def _poll_round(self, events: list[WatchEvent], deadline: float | None) -> bool:
        """Fetch every running batch once; append events; True when anything moved."""
        running = [t for t in self._tracked.values() if not t.done]
        if len(running) > self.options.list_threshold:
            missing = self._poll_list(running, events, deadline)
        else:
            missing = running
        moved = False
        for tracked in missing:
            try:
                batch = self._get(tracked, deadline)
            except _Missing:
                continue
            except (
                NotFoundError
            ) as exc:  # past the grace period: say so now, drop it, follow the rest
                tracked.done = tracked.missing = True
                events.append(NotFound(tracked.id, exc, self._elapsed()))
                continue
            moved = self._observe(tracked, batch, events) or moved
        return moved or bool(events)

    def _get(self, tracked: _Tracked, deadline: float | None) -> Batch:
        self.stats.gets += 1
        try:
            return self.source.get_batch(tracked.id, timeout=self._request_timeout(deadline))
        except NotFoundError:
            if tracked.batch is None and self._elapsed() < self.options.not_found_grace:
                raise _Missing(tracked.id) from None
            raise

    def _poll_list(
        self, running: list[_Tracked], events: list[WatchEvent], deadline: float | None
    ) -> list[_Tracked]:
        """One paged list, newest update first; returns the batches it did not show."""
        if self._list_unordered:
            return running  # the API did not list newest update first: read each batch instead
        wanted = {t.id: t for t in running}
        page_size = min(MAX_PAGE_SIZE, max(100, 4 * len(running)))
        token: str | None = None
        for _ in range(self.options.max_list_pages):
            self.stats.list_pages += 1
            page, token = self.source.list_batches_page(
                page_size=page_size,
                page_token=token,
                order_by="updated_at",
                timeout=self._request_timeout(deadline),
            )
            if not newest_first([b.updated_at for b in page]):
                # The paging rule below holds only for newest-first pages. The API does
                # not document the order, so an answer in any other is not trusted: its
                # batches are read one by one, now and for the rest of this watch.
                self._list_unordered = True
                return running
            oldest: datetime | None = None
            for batch in page:
                tracked = wanted.pop(batch.id, None)
                if tracked is not None:
                    self._observe(tracked, batch, events)
                updated = batch.updated_at
                if updated is not None and (oldest is None or updated < oldest):
                    oldest = updated
            if not wanted or not token or not page:
                break
            horizon = self._horizon(wanted.values())
            if horizon is not None and oldest is not None and oldest < horizon:
                break  # older pages cannot hold an update we have not seen
        return list(wanted.values())

    @staticmethod
    def _horizon(tracked: Iterable[_Tracked]) -> datetime | None:
        """The oldest last-seen update among ``tracked``; None if one was never seen."""
        seen = [t.batch.updated_at if t.batch is not None else None for t in tracked]
        if not seen or any(s is None for s in seen):
            return None
        return min(s for s in seen if s is not None)

    def _observe(self, tracked: _Tracked, batch: Batch, events: list[WatchEvent]) -> bool:
        """Record a fresh state of one batch; append its events; True when it changed."""
        now = self._clock()
        old = tracked.batch
        tracked.batch = batch
        if batch.status in _MOVING:
            tracked.add_sample(now, batch.num_processed, self.options.rate_window)
        else:
            # Time spent queued is not time spent processing: counted in, it halved the
            # rate shown (10.5/s for 20/s) and doubled the time left.
            tracked.samples.clear()
        elapsed = now - self._started
        changed = True
        if old is None:
            events.append(Snapshot(batch, tracked.rate(), tracked.eta(), elapsed))
        elif batch.status != old.status:
            events.append(
                StatusChanged(
                    batch, old.status, batch.status, tracked.rate(), tracked.eta(), elapsed
                )
            )
        elif _counters(batch) != _counters(old):
            events.append(Progress(batch, tracked.rate(), tracked.eta(), elapsed))
        else:
            changed = False
        if batch.status.is_terminal:
            tracked.done = True
            events.append(
                BatchDone(batch, batch_exit_code(batch), elapsed, self._results_readable(batch))
            )
        return changed

    def _results_readable(self, batch: Batch) -> bool | None:
        """Whether ``batch``'s output dataset can be read, so a view may offer ``cbatch results``.

        A COMPLETED or FAILED batch's output exists (the contract says so, if
        after a moment); a CANCELED one may name a dataset the service never
        wrote, so that one is looked up, once. A look-up that fails for
        another reason leaves it unknown (None), and no view claims either way.
        """
        if not batch.output_dataset_id:
            return False
        if batch.status != BatchStatus.CANCELED:
            return True
        get_dataset = getattr(self.source, "get_dataset", None)
        if get_dataset is None:
            return None
        self.stats.gets += 1
        try:
            get_dataset(batch.output_dataset_id)
        except NotFoundError:
            return False
        except CohereAPIError:
            return None
        return True
