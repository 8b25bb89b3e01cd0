"""What ``cbatch watch`` shows: three renderers of the watch engine's events.

- :class:`LiveRenderer`: a rich ``Live(auto_refresh=False)`` view redrawn in place,
  updated once per poll round (and once a second while waiting, so elapsed time
  and ETA tick); status changes and connection problems are printed above it
  as a timestamped log; a summary stays on screen at the end. The view is
  :func:`render_state`, a pure function of :class:`WatchState`: a block of three
  lines per batch while they fit the terminal, one compact line per batch when
  they do not, and the footer always. A batch's status is never the part cut.
- :class:`PlainRenderer`: one timestamped line per change, no control characters,
  for logs, pipes and CI; progress lines at most once per batch every
  ``progress_every`` seconds (status changes always).

Times are UTC with ``Z`` (or local with the offset, ``--local-time``: :mod:`.times`).
Commands meant to be copied (``cbatch results ...``) are printed with
``soft_wrap``, so rich never puts a line break inside one.

A batch can sit QUEUED for minutes on the real service (about 7 for 10 records
was recorded) while the watch, polling ever more slowly, has nothing to say.
So a queued batch shows how long it has been queued and when the next check
is (live view), or a calm line as its time in the queue passes 1, 2, 5 and 10
minutes and every 10 after (plain log), never a silence that reads as a stall.
- :class:`JsonRenderer`: one JSON object per change (JSON lines), each with
  ``event``, ``time`` (UTC, RFC 3339) and ``batch`` (the API's own object, or null).

None of them calls the API: they only read events (see :mod:`cohere_batch_cli.watcher`).
Rich is imported at module level here because this module is only imported by
watching code; nothing in ``output/__init__`` imports it.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..api.models import Batch, BatchStatus
from ..exit_codes import ExitCode
from ..naming import parse_batch_name
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
    WatchEvent,
)
from . import times
from .batch_views import STATUS_STYLES as _STATUS_STYLE
from .sanitize import clean
from .table import ELLIPSIS, cell_width, cut

Now = Callable[[], datetime]


class LineStream(Protocol):
    """Where plain and JSON lines go: the output object's stdout or stderr."""

    def write(self, text: str) -> int: ...

    def flush(self) -> None: ...


class WatchView(Protocol):
    """What the watch task drives: a renderer of the engine's events."""

    def __enter__(self) -> WatchView: ...

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...

    def handle(self, events: Sequence[WatchEvent]) -> None: ...

    def sleep(self, seconds: float) -> None: ...


def fmt_duration(seconds: float | None) -> str:
    """``45s``, ``3m05s``, ``2h07m``: short enough for a status line."""
    if seconds is None:
        return "?"
    if 0 < seconds < 9.95 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "-"
    return f"{rate:.0f}/s" if rate >= 100 else f"{rate:.1f}/s"


def label(batch: Batch) -> str:
    """``name (id)``, or the id alone for a batch without a name."""
    name = clean(batch.name)
    return f"{name} ({clean(batch.id)})" if name and name != batch.id else clean(batch.id)


def counts(batch: Batch) -> str:
    """``1,052/2,100 records (1,050 ok, 2 failed)``; the total may be unknown.

    Grouped as every other number of a watch's screen is (its tokens, a job's line), so
    one screen never shows ``2646`` beside ``2,646``.
    """
    total = batch.num_records
    done = f"{batch.num_processed:,}" + (f"/{total:,}" if total is not None else "")
    ok, failed = batch.num_successful_records, batch.num_failed_records
    return f"{done} records ({ok:,} ok, {failed:,} failed)"


def tokens(batch: Batch) -> str | None:
    if batch.input_tokens is None and batch.output_tokens is None:
        return None
    return f"tokens in {batch.input_tokens or 0:,} / out {batch.output_tokens or 0:,}"


QUEUE_MARKS = (60.0, 120.0, 300.0, 600.0)
"""Times in the queue at which the plain log says a batch is still queued; every 10 minutes after."""
QUEUE_USUAL = 60.0
"""Past this long in the queue, a view adds that such waits are usual."""


def queued_for(batch: Batch, now: datetime, first_seen: datetime | None = None) -> float | None:
    """Seconds a QUEUED batch has waited: since it was created (else since the watch first saw it)."""
    start = batch.created_at or first_seen
    if start is None:
        return None
    return max(0.0, (now - start).total_seconds())


def next_queue_mark(waited: float) -> float:
    """The first mark of :data:`QUEUE_MARKS` (then every 10 minutes) past ``waited``."""
    for mark in QUEUE_MARKS:
        if mark > waited:
            return mark
    return (waited // 600.0 + 1) * 600.0


def still_queued(batch: Batch, waited: float, pause: float | None) -> str:
    """The calm line for a long wait in the queue: how long, how often the watch looks, that it is usual."""
    checking = f"; checking every {fmt_duration(pause)}" if pause else ""
    return (
        f"{label(batch)}: still queued after {fmt_duration(waited)}{checking}; "
        "waits of several minutes are usual before a batch starts"
    )


def results_command(batch_id: str, output: str = "results.jsonl") -> str:
    """The command that downloads a finished batch's results."""
    return shlex.join(["cbatch", "results", batch_id, "-o", output])


def _results_file(batch: Batch, many: bool) -> str:
    return f"results-{batch.id}.jsonl" if many else "results.jsonl"


def describe(
    event: WatchEvent, *, many: bool = False, command: str | None = None, final: bool = True
) -> str:
    """The one line a person reads for an event (no timestamp, no styling).

    ``final``: the watch's outcome is the command's, so its summary names the exit code.
    """
    if isinstance(event, (Snapshot, Progress)):
        b = event.batch
        parts = [label(b), b.status.label, counts(b)]
        if event.rate is not None:
            parts.append(fmt_rate(event.rate))
        if event.eta is not None:
            parts.append(f"ETA {fmt_duration(event.eta)}")
        if tokens(b):
            parts.append(str(tokens(b)))
        return "  ".join(parts)
    if isinstance(event, StatusChanged):
        return (
            f"{label(event.batch)}: {event.old.label} -> {event.new.label}  {counts(event.batch)}"
        )
    if isinstance(event, BatchDone):
        return done_line(event.batch, many=many, results=event.results, command=command)
    if isinstance(event, NotFound):
        return f"{clean(event.batch_id)}: not found ({clean(str(event.error))}); no longer watched"
    if isinstance(event, TransientError):
        down = f", failing for {fmt_duration(event.down_for)}" if event.down_for else ""
        return (
            f"poll failed: {outage(event.error)}; retrying in {fmt_duration(event.retry_in)}{down}"
        )
    if isinstance(event, Recovered):
        return f"the API answers again, after {fmt_duration(event.down_for)} of failed polls"
    if isinstance(event, TimedOut):
        return f"timed out after {fmt_duration(event.elapsed)}; still running (not cancelled): {', '.join(event.pending_ids)}"
    if isinstance(event, AllDone):
        return outcome_line(
            event.batches, event.exit_code if final else None, not_found=len(event.not_found)
        )
    return event.kind  # pragma: no cover - every event is handled above


def outage(error: Exception) -> str:
    """What a failed poll met: the status the server answered, or the host and port it could not reach.

    An HTTP 500 is an answer, not a server out of reach; saying "cannot reach"
    for it sends a person to check the network instead of the service.
    """
    text = clean(str(error))
    if getattr(error, "status_code", None) is not None:
        return f"the server answered {text}"
    return text


def done_line(
    batch: Batch, *, many: bool = False, results: bool | None = True, command: str | None = None
) -> str:
    """A finished batch: outcome, counts, and where its results are, only if they can be read.

    ``results`` says whether the output dataset can be read (see
    :attr:`~cohere_batch_cli.watcher.BatchDone.results`): ``cbatch results``
    is named only then; a dataset that was looked for and not found is said so.
    ``command`` writes these batches' results together (a job's ``cbatch jobs
    results JOB``): named instead of each batch's own.
    """
    text = f"{label(batch)} {batch.status.label}: {counts(batch)}"
    if batch.status_reason:
        text += f"; reason: {clean(batch.status_reason)}"
    text += results_hint(batch, many=many, results=results, sep="; ", command=command)
    return text


def results_hint(
    batch: Batch, *, many: bool, results: bool | None, sep: str, command: str | None = None
) -> str:
    """Where a finished batch's results are, true whether its output dataset exists or not."""
    dataset = batch.output_dataset_id
    if not dataset:
        return (
            f"{sep}no output dataset: there are no results to download"
            if batch.status.is_terminal
            else ""
        )
    if results is False:
        return f"{sep}its output dataset {clean(dataset)} was not found: there are no results to download"
    text = f"{sep}output dataset {clean(dataset)}"
    if results:
        text += (
            f"{sep}get results: {command or results_command(batch.id, _results_file(batch, many))}"
        )
    return text


def outcome_line(batches: Sequence[Batch], code: ExitCode | None, *, not_found: int = 0) -> str:
    """``all 3 batches ended: 3 completed (exit 0)``; no exit code for one round of several,
    whose command goes on and ends with its own."""
    tally: dict[str, int] = {}
    for b in batches:
        tally[b.status.label] = tally.get(b.status.label, 0) + 1
    if not_found:
        tally["not found"] = not_found
    summary = ", ".join(f"{n} {status}" for status, n in tally.items())
    total = len(batches) + not_found
    noun = "batch" if total == 1 else "batches"
    return f"all {total} {noun} ended: {summary}" + (
        f" (exit {int(code)})" if code is not None else ""
    )


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


# -- plain lines ---------------------------------------------------------------------


class PlainRenderer:
    """One timestamped line per change, for logs and pipes: never a control character.

    Progress lines are throttled to one per batch every ``progress_every``
    seconds of the watch (a two-hour batch polled every 2 s wrote about 3,600
    lines); first sight, status changes, outcomes and outages always print.
    """

    def __init__(
        self,
        stream: LineStream,
        *,
        now: Now = _utc_now,
        many: bool = False,
        progress_every: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        results: str | None = None,
        final: bool = True,
    ) -> None:
        self.stream = stream
        self.results = results
        self.final = final
        """The command that writes these batches' results together (a job's), named in done lines."""
        self.now = now
        self.many = many
        self.progress_every = progress_every
        self._last_line: dict[str, float] = {}
        self._sleep = sleep
        self._queued: dict[str, tuple[Batch, datetime, float]] = {}
        """Batches last seen QUEUED: the batch, when first seen, the next mark to speak at."""
        self._pause: float | None = None
        self._ended = False
        """The watch timed out or every batch ended: no more lines on waits in the queue."""

    def __enter__(self) -> PlainRenderer:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        pass

    def handle(self, events: Sequence[WatchEvent]) -> None:
        for event in events:
            if isinstance(event, Snapshot) and event.batch.status.is_terminal:
                continue  # the BatchDone line that follows says it all
            if isinstance(event, AllDone) and not self.many:
                continue  # one batch: its BatchDone line was the outcome
            if isinstance(event, NotFound):
                continue  # said on stderr by the watch itself, where every error goes
            if isinstance(event, Progress):
                last = self._last_line.get(event.batch.id)
                if last is not None and event.elapsed - last < self.progress_every:
                    continue
            if isinstance(event, (Snapshot, StatusChanged)):
                self._last_line[event.batch.id] = event.elapsed
            stamp = times.when(self.now())
            line = describe(event, many=self.many, command=self.results, final=self.final)
            self.stream.write(f"{stamp}  {clean(line)}\n")
        if any(isinstance(event, (TimedOut, AllDone)) for event in events):
            self._ended, self._queued = True, {}
        if not self._ended:
            self._note_queued(events)
        self.stream.flush()

    def _note_queued(self, events: Sequence[WatchEvent]) -> None:
        """Follow which batches are QUEUED; say so when one's time in the queue passes a mark."""
        now = self.now()
        for event in events:
            batch = getattr(event, "batch", None)
            if not isinstance(batch, Batch):
                continue
            if batch.status != BatchStatus.QUEUED:
                self._queued.pop(batch.id, None)
            elif batch.id in self._queued:
                _, seen, mark = self._queued[batch.id]
                self._queued[batch.id] = (batch, seen, mark)
            else:  # first seen queued: speak at the next mark, not about the wait before the watch
                self._queued[batch.id] = (
                    batch,
                    now,
                    next_queue_mark(queued_for(batch, now) or 0.0),
                )
        for batch_id, (batch, seen, mark) in list(self._queued.items()):
            waited = queued_for(batch, now, seen)
            if waited is None or waited < mark:
                continue
            stamp = times.when(now)
            self.stream.write(f"{stamp}  {clean(still_queued(batch, waited, self._pause))}\n")
            self._queued[batch_id] = (batch, seen, next_queue_mark(waited))

    def sleep(self, seconds: float) -> None:
        self._pause = seconds  # the watch's pace, for the line on a long wait in the queue
        self._sleep(seconds)


# -- JSON lines ----------------------------------------------------------------------


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def event_json(event: WatchEvent, when: datetime) -> dict[str, Any]:
    """The JSON object of one event: ``event``, ``time``, ``batch`` and its own fields."""
    out: dict[str, Any] = {
        "event": event.kind,
        "time": when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "batch": getattr(event, "batch", None).raw if hasattr(event, "batch") else None,  # type: ignore[union-attr]
    }
    if isinstance(event, (Snapshot, StatusChanged)):
        b = event.batch
        out.update(
            status=str(b.status),
            processed=b.num_processed,
            total=b.num_records,
            successful=b.num_successful_records,
            failed=b.num_failed_records,
            rate=_round(event.rate),
            eta_seconds=_round(event.eta, 1),
        )
        if isinstance(event, StatusChanged):
            out.update(old=str(event.old), new=str(event.new))
    elif isinstance(event, BatchDone):
        b = event.batch
        out.update(
            status=str(b.status),
            exit_code=int(event.exit_code),
            output_dataset_id=b.output_dataset_id,
            output_dataset_found=event.results if b.output_dataset_id else False,
            results_command=results_command(b.id)
            if b.output_dataset_id and event.results
            else None,
        )
    elif isinstance(event, NotFound):
        out.update(
            id=event.batch_id,
            error=str(event.error),
            status_code=event.error.status_code,
            exit_code=int(event.exit_code),
        )
    elif isinstance(event, TransientError):
        out.update(
            error=str(event.error),
            error_type=type(event.error).__name__,
            status_code=event.error.status_code,
            retry_in=_round(event.retry_in),
            down_for=_round(event.down_for),
        )
    elif isinstance(event, Recovered):
        out.update(down_for=_round(event.down_for))
    elif isinstance(event, TimedOut):
        out.update(
            pending=list(event.pending_ids),
            batches=[b.raw for b in event.batches],
            exit_code=int(event.exit_code),
        )
    elif isinstance(event, AllDone):
        out.update(
            batches=[b.raw for b in event.batches],
            not_found=list(event.not_found),
            exit_code=int(event.exit_code),
        )
    out["elapsed"] = _round(event.elapsed)
    return out


class JsonRenderer:
    """One JSON object a line on ``stream``, flushed per round so a pipe sees it at once."""

    def __init__(
        self, stream: LineStream, *, now: Now = _utc_now, dumps: Callable[[Any], str] | None = None
    ) -> None:
        self.stream = stream
        self.now = now
        self.dumps = dumps or (lambda obj: json.dumps(obj, ensure_ascii=False))

    def __enter__(self) -> JsonRenderer:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        pass

    def handle(self, events: Sequence[WatchEvent]) -> None:
        when = self.now()
        for event in events:
            self.stream.write(self.dumps(event_json(event, when)) + "\n")
        self.stream.flush()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# -- the live view -------------------------------------------------------------------


@dataclass
class BatchView:
    batch: Batch
    rate: float | None = None
    eta: float | None = None
    results: bool | None = True


SUMMARY_DETAIL_MAX = 3
"""Up to this many batches, the end shows each one's outcome and results command; beyond, a short summary."""


@dataclass
class WatchState:
    """Everything the live view shows, updated from events; rendered by :func:`render_state`."""

    batch_ids: list[str]
    views: dict[str, BatchView] = field(default_factory=dict)
    elapsed: float = 0.0
    wall_now: datetime = field(default_factory=_utc_now)
    problem: str | None = None
    outcome: AllDone | TimedOut | None = None
    not_found: dict[str, str] = field(default_factory=dict)
    width: int = 80
    height: int = 24
    next_poll: float | None = None
    """Seconds until the watch asks again; None before the first pause."""
    data_at: datetime | None = None
    """When a poll last succeeded: what the rows show is as of then."""
    stale_since: datetime | None = None
    """While polls fail: when the data shown was last fresh (the view says so, and stops counting)."""
    results: str | None = None
    """The command that writes these batches' results together (a job's ``cbatch jobs results JOB``)."""
    final: bool = True
    """The watch's outcome is the command's: its summary names the exit code (not a round of several)."""

    def round(self, events: Sequence[WatchEvent], now: datetime) -> None:
        """Apply one poll round's events; a round that failed leaves the data stale since the last good one."""
        for event in events:
            self.apply(event)
        if any(isinstance(event, TransientError) for event in events):
            if self.stale_since is None:
                self.stale_since = self.data_at or now
        else:
            self.data_at, self.stale_since = now, None

    def apply(self, event: WatchEvent) -> None:
        self.elapsed = max(self.elapsed, event.elapsed)
        if isinstance(event, (Snapshot, StatusChanged)):
            self.views[event.batch.id] = BatchView(event.batch, event.rate, event.eta)
        elif isinstance(event, BatchDone):
            self.views[event.batch.id] = BatchView(event.batch, results=event.results)
        elif isinstance(event, NotFound):
            self.views.pop(event.batch_id, None)
            self.not_found[event.batch_id] = str(event.error)
        elif isinstance(event, TransientError):
            self.problem = describe(event)
        elif isinstance(event, Recovered):
            self.problem = None
        elif isinstance(event, (AllDone, TimedOut)):
            self.outcome = event
            self.problem = None


def progress_bar(batch: Batch, width: int = 30) -> Text:
    """Successful and failed records apart: ``█`` ok, ``▓`` failed, ``░`` still to do.

    The characters differ, not only the colours, so the split reads without colour.
    Cells are counted from the shares so far (the ok records, then ok and failed
    together), so a batch whose every record has an outcome fills its bar to the
    last cell: 17 ok and 3 failed of 20 is 25 and 5 cells of 30, never 25, 4 and
    an empty one at 100 %.
    """
    total = batch.num_records
    if not total:
        fill = width if batch.status == BatchStatus.COMPLETED else 0
        return Text("█" * fill, style="green") + Text("░" * (width - fill), style="bright_black")
    ok, bad = batch.num_successful_records, batch.num_failed_records
    ok_cells = min(width, ok * width // total)
    end = width if ok + bad >= total else min(width, (ok + bad) * width // total)
    if bad and end == ok_cells:  # a failure is always visible
        if end < width:
            end += 1
        elif ok_cells:
            ok_cells -= 1
    return Text.assemble(
        ("█" * ok_cells, "green"),
        ("▓" * (end - ok_cells), "red"),
        ("░" * (width - end), "bright_black"),
    )


SHORT_ID = 8
"""Characters of an id a row shows when the whole id does not fit: enough to tell batches apart."""


def short_id(batch_id: str) -> str:
    return clean(batch_id)[:SHORT_ID]


def fit_name(name: str, width: int) -> str:
    """A batch name in ``width`` columns: the user's part is cut, never the tag.

    The tag (``[job J part N]``, ``[retry N of ID]``) is what tells a job's parts
    and a chain's attempts apart; twenty rows of ``load-test-run…`` tell nothing.
    """
    if cell_width(name) <= width:
        return name
    label, lineage = parse_batch_name(name)
    if lineage is None:
        return cut(name, width)
    tag = name[len(label) :].lstrip()
    room = width - cell_width(tag) - 1
    if room >= 2:
        return cut(label, room) + " " + tag
    # Not even the tag fits: its end (the part number) stays.
    return ELLIPSIS + tag[len(tag) - max(0, width - 1) :] if width > 1 else ELLIPSIS[:width]


def _tag_width(name: str) -> int:
    label, lineage = parse_batch_name(name)
    return 0 if lineage is None else cell_width(name[len(label) :].lstrip())


def _batch_elapsed(batch: Batch, state: WatchState) -> float | None:
    """Time since the batch was created (to its last update once it is over; to the last good poll while stale)."""
    created = batch.created_at
    if created is None:
        return None
    if batch.status.is_terminal and batch.updated_at:
        end = batch.updated_at
    else:
        end = state.stale_since or state.wall_now
    seconds = (end - created).total_seconds()
    return seconds if seconds >= 0 else None


def _status_text(batch: Batch) -> Text:
    return Text(batch.status.label, style=_STATUS_STYLE.get(batch.status, "magenta"))


def _head(batch: Batch, width: int) -> Text:
    """``name  id  status`` in ``width`` columns: the name is cut first (never its tag), then
    the id is shortened to its first 8 characters, then it goes; never the status."""
    name = clean(batch.name) or "(no name)"
    status = batch.status.label
    whole = clean(batch.id)
    need = min(cell_width(name), max(24, _tag_width(name) + 8))
    for ident in (whole, short_id(batch.id)):
        room = width - cell_width(ident) - len(status) - 4
        if room >= need or (ident != whole and room >= 6):
            return Text.assemble(
                (fit_name(name, room), "bold"), "  ", (ident, "dim"), "  ", _status_text(batch)
            )
    return Text.assemble(
        (fit_name(name, max(1, width - len(status) - 2)), "bold"), "  ", _status_text(batch)
    )


def _batch_rows(view: BatchView, state: WatchState) -> list[Text]:
    b = view.batch
    share = b.progress
    stale = state.stale_since is not None
    detail = Text("  ") + progress_bar(b)
    detail.append(f" {share * 100:3.0f}%  " if share is not None else "   -   ")
    detail.append(counts(b))
    facts = [fmt_rate(view.rate) if view.rate is not None and not stale else None]
    if view.eta is not None and not b.status.is_terminal and not stale:
        facts.append(f"ETA {fmt_duration(view.eta)}")
    ran = _batch_elapsed(b, state)
    if b.status == BatchStatus.QUEUED:
        # A long wait in the queue is usual: say how long, and when the watch looks again.
        facts.append(f"queued for {fmt_duration(ran)}" if ran is not None else "queued")
        if state.next_poll is not None:
            facts.append(f"next check in {fmt_duration(state.next_poll)}")
        if ran is not None and ran >= QUEUE_USUAL:
            facts.append("waits of several minutes are usual")
    else:
        # While running: time since creation by this clock; once over: the batch's own run time.
        label = "took" if b.status.is_terminal else "elapsed"
        facts.append(f"{label} {fmt_duration(ran)}" if ran is not None else None)
    facts.append(tokens(b))
    line3 = Text("  " + "  ·  ".join(f for f in facts if f), style="dim")
    return [_head(b, state.width), detail, line3]


@dataclass(frozen=True)
class RowCells:
    """What one compact row says, before it is laid out."""

    name: str
    counts: str
    failed: str
    speed: str


def _row_cells(view: BatchView, stale: bool) -> RowCells:
    b = view.batch
    total = "?" if b.num_records is None else str(b.num_records)
    speed = []
    if not b.status.is_terminal and not stale:
        if view.rate is not None:
            speed.append(fmt_rate(view.rate))
        if view.eta is not None:
            speed.append(f"ETA {fmt_duration(view.eta)}")
    return RowCells(
        name=clean(b.name) or "(no name)",
        counts=f"{b.num_processed}/{total}",
        failed=f"({b.num_failed_records} failed)" if b.num_failed_records else "",
        speed=" ".join(speed),
    )


@dataclass(frozen=True)
class RowLayout:
    """The widths every compact row of one frame shares, so their columns line up."""

    name: int
    ident: bool
    status: int
    bar: int
    counts: int
    failed: int
    speed: int

    def total(self, name: int | None = None) -> int:
        width = (self.name if name is None else name) + 2 + self.status
        width += 2 + SHORT_ID if self.ident else 0
        width += 2 + (self.bar + 1 if self.bar else 0) + 4 + 2 + self.counts
        width += 1 + self.failed if self.failed else 0
        width += 2 + self.speed if self.speed else 0
        return width


BAR_CELLS = (12, 8)
"""The compact bar's widths, tried in turn when a row is too wide; it grows to 20 with room."""
BAR_MAX = 20


def plan_rows(cells: Sequence[RowCells], statuses: Sequence[str], width: int) -> RowLayout:
    """Widths for compact rows in ``width`` columns, from every row of the frame.

    The name gives way first, down to its tag and a few characters; then the
    speed, the failed count and the bar's length go, then the short id; the
    status and the counts stay.
    """
    natural = max((cell_width(c.name) for c in cells), default=8)
    floor = min(natural, max(12, max((_tag_width(c.name) for c in cells), default=0) + 8))
    layout = RowLayout(
        name=floor,
        ident=True,
        status=max((len(s) for s in statuses), default=11),
        bar=BAR_CELLS[0],
        counts=max((len(c.counts) for c in cells), default=1),
        failed=max((len(c.failed) for c in cells), default=0),
        speed=max((len(c.speed) for c in cells), default=0),
    )
    steps = (
        {"bar": BAR_CELLS[1]},
        {"speed": 0},
        {"failed": 0},
        {"bar": 0},
        {"ident": False},
    )
    for step in steps:
        if layout.total() <= width:
            break
        layout = replace(layout, **step)
    name = max(1, min(natural, width - layout.total(0)))
    layout = replace(layout, name=name)
    if layout.bar:
        layout = replace(layout, bar=min(BAR_MAX, layout.bar + max(0, width - layout.total())))
    return layout


def _compact_row(view: BatchView, layout: RowLayout, stale: bool) -> Text:
    """One line for one batch, in the frame's shared columns:
    ``name [job J part N]  1b4d957c  in progress  ████▓░░░  52%  52/100 (2 failed)  20.0/s ETA 2s``."""
    b = view.batch
    cells = _row_cells(view, stale)
    name = fit_name(cells.name, layout.name)
    share = b.progress
    parts: list[str | tuple[str, str] | Text] = [
        (name + " " * (layout.name - cell_width(name)), "bold")
    ]
    if layout.ident:
        parts += ["  ", (short_id(b.id), "dim")]
    parts += ["  ", _status_text(b), " " * (layout.status - len(b.status.label)), "  "]
    if layout.bar:
        parts += [progress_bar(b, layout.bar), " "]
    parts.append(f"{share * 100:3.0f}%" if share is not None else "   -")
    parts.append(f"  {cells.counts:>{layout.counts}}")
    if layout.failed:
        parts.append(f" {cells.failed:<{layout.failed}}")
    if layout.speed and cells.speed:
        parts.append(f"  {cells.speed}")
    line = Text.assemble(*parts)
    line.rstrip()
    return line


def _ended(state: WatchState, batch_id: str) -> bool:
    if batch_id in state.not_found:
        return True
    view = state.views.get(batch_id)
    return view is not None and view.batch.status.is_terminal


def _fit(state: WatchState, room: int) -> tuple[list[str], str | None]:
    """The batches that get a row in ``room`` lines, and the line that stands for the rest.

    The batches still running come first; ended ones are collapsed into a count
    by outcome when there is no room for them, so the view never outgrows the
    terminal (a view taller than the screen scrolls, and leaves a stale frame
    behind each time it is drawn).
    """
    ids = state.batch_ids
    if len(ids) <= room:
        return ids, None
    slots = max(0, room - 1)
    running = [i for i in ids if not _ended(state, i)]
    ended = [i for i in ids if _ended(state, i)]
    if len(running) >= slots:
        chosen = set(running[:slots])
        more = f"… and {len(ids) - slots} more: {len(running) - slots} running, {len(ended)} ended"
    else:
        kept = ended[: slots - len(running)]
        chosen = set(running) | set(kept)
        tally: dict[str, int] = {}
        for i in ended[len(kept) :]:
            word = "not found" if i in state.not_found else state.views[i].batch.status.label
            tally[word] = tally.get(word, 0) + 1
        summary = ", ".join(f"{n} {word}" for word, n in tally.items())
        more = f"… and {len(ids) - len(chosen)} more ended: {summary}"
    return [i for i in ids if i in chosen], more


def _footer(state: WatchState) -> Text:
    done = sum(1 for v in state.views.values() if v.batch.status.is_terminal) + len(state.not_found)
    text = f"{done}/{len(state.batch_ids)} done  ·  watching for {fmt_duration(state.elapsed)}"
    style = "dim"
    if state.stale_since is not None and state.outcome is None:
        ago = max(0.0, (state.wall_now - state.stale_since).total_seconds())
        text += (
            f"  ·  stale: last update {times.clock(state.stale_since)} ({fmt_duration(ago)} ago)"
        )
        style = "yellow"
    if state.outcome is None:
        text += "  ·  Ctrl-C stops watching, not the batches"
    # The last lines leave two columns free: a Ctrl-C echoed as ``^C`` must not wrap the
    # cursor to a new line, or the last frame is drawn one line low, its first line twice.
    return Text(cut(text, max(1, state.width - 2)), style=style)


def render_state(state: WatchState) -> RenderableType:
    """The live area for one moment: a block per batch (or a line each), then a footer line. Pure.

    It never has more lines than the terminal less one, so it never scrolls.
    """
    width = max(10, state.width)
    tail: list[Text] = [_footer(state)]
    if state.problem:
        tail.append(Text(cut(state.problem, max(1, width - 2)), style="yellow"))
    room = max(1, state.height - 1 - len(tail))
    stale = state.stale_since is not None
    lines: list[Text] = []
    if 3 * len(state.batch_ids) <= room:
        for batch_id in state.batch_ids:
            view = state.views.get(batch_id)
            if view is None:
                lines.append(_other_row(state, batch_id, width))
            else:
                lines += _batch_rows(view, state)
    else:
        ids, more = _fit(state, room)
        shown = [state.views[i] for i in ids if i in state.views and i not in state.not_found]
        layout = plan_rows(
            [_row_cells(v, stale) for v in shown], [v.batch.status.label for v in shown], width
        )
        for batch_id in ids:
            view = state.views.get(batch_id)
            if view is None or batch_id in state.not_found:
                lines.append(_other_row(state, batch_id, width))
            else:
                lines.append(_compact_row(view, layout, stale))
        if more:
            lines.append(Text(cut(more, width), style="dim"))
    grid = Table.grid(padding=(0, 0))
    grid.add_column(overflow="ellipsis", no_wrap=True)
    for line in lines:
        grid.add_row(line)
    return Group(grid, *tail)


def _other_row(state: WatchState, batch_id: str, width: int) -> Text:
    """A batch with nothing to show yet, or one the API does not know."""
    if batch_id in state.not_found:
        return Text.assemble((clean(batch_id), "dim"), ("  not found: no longer watched", "red"))
    return Text.assemble((cut(clean(batch_id), width), "dim"), "  waiting for the first answer...")


def render_summary(state: WatchState) -> list[Text]:
    """What stays on screen at the end, one Text a line (printed with ``soft_wrap``).

    Up to :data:`SUMMARY_DETAIL_MAX` batches: each one's outcome and how to get its
    results. More: the counts by outcome, the batches that did not complete one
    line each, and the command for the results of the others.
    """
    outcome = state.outcome
    lines: list[Text] = []
    ended = [
        state.views[i]
        for i in state.batch_ids
        if i in state.views and state.views[i].batch.status.is_terminal
    ]
    missing = [i for i in state.batch_ids if i in state.not_found]
    if len(state.batch_ids) <= SUMMARY_DETAIL_MAX:
        many = len(state.batch_ids) > 1
        lines += [Text.assemble(("✗ ", "red"), (f"{clean(i)}: not found", "bold")) for i in missing]
        for view in ended:
            b = view.batch
            mark, style = {"completed": ("✓", "green"), "failed": ("✗", "red")}.get(
                b.status.label, ("■", "yellow")
            )
            lines.append(
                Text.assemble(
                    (mark + " ", style), (f"{label(b)} {b.status.label}: {counts(b)}", "bold")
                )
            )
            if b.status_reason:
                lines.append(Text(f"  reason: {clean(b.status_reason)}"))
            if b.output_dataset_id and view.results is not False:
                lines.append(Text(f"  output dataset: {clean(b.output_dataset_id)}"))
                if view.results:
                    lines.append(
                        Text(
                            f"  get results:    {state.results or results_command(b.id, _results_file(b, many))}"
                        )
                    )
            else:
                lines.append(
                    Text(
                        results_hint(
                            b, many=many, results=view.results, sep="  ", command=state.results
                        ).rstrip()
                    )
                )
    else:
        lines += [Text(f"✗ {clean(i)}: not found", style="yellow") for i in missing]
        for view in ended:
            b = view.batch
            if b.status != BatchStatus.COMPLETED:
                mark = "✗" if b.status == BatchStatus.FAILED else "■"
                reason = f"; {clean(b.status_reason)}" if b.status_reason else ""
                lines.append(
                    Text(f"{mark} {label(b)} {b.status.label}: {counts(b)}{reason}", style="yellow")
                )
        completed = [
            v.batch
            for v in ended
            if v.batch.status == BatchStatus.COMPLETED and v.batch.output_dataset_id
        ]
        if completed and state.results:
            lines.append(Text(f"results of the {len(completed)} completed: {state.results}"))
        elif completed:
            lines.append(
                Text(
                    f"results of the {len(completed)} completed: cbatch results ID -o results-ID.jsonl for each id watched"
                )
            )
    if isinstance(outcome, AllDone):
        lines.append(
            Text(
                outcome_line(
                    outcome.batches,
                    outcome.exit_code if state.final else None,
                    not_found=len(outcome.not_found),
                ),
                style="bold",
            )
        )
    elif isinstance(outcome, TimedOut):
        lines.append(Text(describe(outcome), style="yellow"))
    return lines


class LiveRenderer:
    """A rich live view on a terminal, redrawn in place; logs above it, a summary at the end."""

    def __init__(
        self,
        console: Console,
        batch_ids: Sequence[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Now = _utc_now,
        tick: float = 1.0,
        results: str | None = None,
        final: bool = True,
    ) -> None:
        self.console = console
        self.state = WatchState(list(dict.fromkeys(batch_ids)), results=results, final=final)
        self._clock = clock
        self._now = now
        self._tick = tick
        self._started = clock()
        self._live: Live | None = None

    def __enter__(self) -> LiveRenderer:
        self._measure()
        self._live = Live(
            render_state(self.state),
            console=self.console,
            auto_refresh=False,
            # Many batches: the live area goes at the end, and the short summary stays.
            transient=len(self.state.batch_ids) > SUMMARY_DETAIL_MAX,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start(refresh=True)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        live, self._live = self._live, None
        if live is None:
            return
        self._measure()
        live.update(render_state(self.state), refresh=True)
        live.stop()
        if self.state.outcome is not None:
            for line in render_summary(self.state):
                self.console.print(line, soft_wrap=True)

    def handle(self, events: Sequence[WatchEvent]) -> None:
        """Apply a round's events, log what deserves a line, redraw once."""
        many = len(self.state.batch_ids) > 1
        self.state.round(events, self._now())
        for event in events:
            if isinstance(event, (StatusChanged, TransientError, Recovered, NotFound)):
                stamp = times.clock(self._now())
                line = describe(event, many=many)
                if self._live is not None:
                    style = "dim" if isinstance(event, Recovered) else ""
                    self._live.console.print(Text(f"{stamp}  {line}", style=style), soft_wrap=True)
        self._redraw()

    def sleep(self, seconds: float) -> None:
        """Wait between polls, redrawing each ``tick`` so elapsed time and ETAs count down."""
        end = self._clock() + seconds
        while True:
            left = end - self._clock()
            if left <= 0:
                self.state.next_poll = None
                return
            time.sleep(min(self._tick, left))
            for view in self.state.views.values():
                if view.eta is not None and self.state.stale_since is None:
                    view.eta = max(0.0, view.eta - min(self._tick, left))
            self.state.next_poll = max(0.0, end - self._clock())
            self._redraw()

    @property
    def active(self) -> bool:
        """The view is on screen: a line for the person must be printed above it, not into it."""
        return self._live is not None

    def log(self, text: str) -> None:
        """A line printed above the view (the view is redrawn below it), already made safe."""
        if self._live is not None:
            self._live.console.print(Text(text), soft_wrap=True)

    def _measure(self) -> None:
        size = self.console.size
        self.state.width, self.state.height = size.width, size.height

    def _redraw(self) -> None:
        self._measure()
        self.state.elapsed = max(self.state.elapsed, self._clock() - self._started)
        self.state.wall_now = self._now()
        if self._live is not None:
            self._live.update(render_state(self.state), refresh=True)
