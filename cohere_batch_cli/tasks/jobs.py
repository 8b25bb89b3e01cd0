"""A job: one input of any size, run as several batches, made and followed as one.

A job is made in steps, each written to the state store *before* it is taken
and looked for on the API before it is taken again, so a kill at any moment
loses nothing and doubles nothing:

1. **split** (job ``splitting``, then ``split`` with every part planned in one
   transaction): the input is checked and cut at record boundaries
   (:mod:`.jobs_split`); nothing is uploaded until the whole file passed;
2. **upload** each part (``uploading``, then ``uploaded`` with the dataset id),
   its dataset named ``LABEL-JOB-pN`` (:mod:`cohere_batch_cli.naming`);
3. **create** each part's batch (``creating``, then ``created`` with the batch
   id), named ``LABEL [job JOB part N]``.

Before it uploads or creates anything, a run reads the batch list and the
dataset list once and takes what it finds under those names: a part an
earlier run (or another machine) made is never made again. The names are
also how ``jobs attach`` rebuilds a job from the API alone. What two machines
resuming one job at the very same moment can still do is documented in
docs/jobs.md: both may look, find nothing, and both create.

Retries of a part are the retry feature's own (:mod:`.retrying`), named
``LABEL [job JOB part N retry K]``; results merge every part and attempt
(:mod:`.jobs_results`).
"""

from __future__ import annotations

import os
import re
import string
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import naming
from ..api.clock import not_before
from ..errors import InputRejected, NoMatch, NotReady, UsageError
from ..exit_codes import ExitCode
from ..units import time_span
from .estimating import GuardOptions

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch, Dataset
    from ..selection import Rule
    from ..state.store import JobRecord, PartRecord, StateStore
    from .jobs_split import SplitPlan
    from .reporting import Reporter
    from .retrying import Lane, RetryOptions, RetryOutcome
    from .sending import Part
    from .watching import WatchSpec

JOB_ID_LENGTH = 10
SCAN_LIMIT = 100_000
"""Batches or datasets one scan for a job's parts reads at most."""
STORAGE_POLL = 15.0
"""Longest pause between looks at the organisation's storage while a part waits for room
(the first is 1 s, doubling up to this)."""

_ALPHABET = string.ascii_lowercase + string.digits


def new_job_id() -> str:
    """A short id, unique enough for one organisation's jobs: ten letters and digits, a letter first."""
    import secrets

    return secrets.choice(string.ascii_lowercase) + "".join(
        secrets.choice(_ALPHABET) for _ in range(JOB_ID_LENGTH - 1)
    )


@dataclass(frozen=True)
class JobOptions:
    """How a job is cut and run."""

    label: str
    model: str
    """The model; empty only for an attach with none given (the job's batches on the API say it)."""
    max_bytes: int
    max_records: int | None = None
    dataset_type: str | None = None
    delete_inputs: bool = False
    """Delete a part's input dataset once its batch has ended, to make room for the next parts."""
    org_max_bytes: int | None = None
    """The organisation's storage limit: parts that do not fit wait (None: never wait)."""
    storage_poll: float = STORAGE_POLL
    wait_lock: float = 0.0
    """How long to wait for another cbatch sending for the job on this machine (``--wait-lock``; 0: stop at once)."""
    input_label: str | None = None
    """How the check's messages name an input cbatch wrote itself (a table's requests: ``reviews.csv (rendered)``)."""
    guard: GuardOptions = field(default_factory=GuardOptions)
    """The context check of the split, as ``create --file`` runs it (``--no-context-check`` turns it off)."""


def job_run(job_id: str) -> str:
    """The job's run, as its lock names it (:mod:`cohere_batch_cli.state.runlock`)."""
    return f"job {job_id}"


# -- views --------------------------------------------------------------------------------------


@dataclass
class PartView:
    """One part as the API shows it now: its record here, and every attempt's batch."""

    record: PartRecord
    attempts: dict[int, Batch] = field(default_factory=dict)

    @property
    def root(self) -> Batch | None:
        return self.attempts.get(1)

    @property
    def head(self) -> Batch | None:
        return self.attempts[max(self.attempts)] if self.attempts else None

    @property
    def status(self) -> str:
        head = self.head
        if head is None:
            return {
                "planned": "waiting",
                "uploading": "uploading",
                "uploaded": "uploaded",
                "creating": "creating",
            }.get(self.record.step, self.record.step)
        return head.status.label

    @property
    def succeeded(self) -> int:
        """Records with a success in some attempt, at most the part's records: a schema job's retry
        sends again answers the API counted as successes (the invalid ones)."""
        return min(
            self.record.records, sum(b.num_successful_records for b in self.attempts.values())
        )

    @property
    def failed(self) -> int:
        """Records whose latest attempt failed (the head's failures; earlier ones were retried)."""
        head = self.head
        return head.num_failed_records if head is not None else 0

    @property
    def ended(self) -> bool:
        head = self.head
        return head is not None and head.status.is_terminal

    @property
    def left(self) -> int:
        """Records not succeeded once the part ended: failed, or never came back."""
        return max(0, self.record.records - self.succeeded) if self.ended else 0

    def as_json(self) -> dict[str, Any]:
        head = self.head
        return {
            "part": self.record.part,
            "status": self.status,
            "records": self.record.records,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "bytes": self.record.stop - self.record.start,
            "dataset_name": self.record.dataset_name,
            "dataset_id": self.record.dataset_id or (self.root.input_dataset_id if self.root else None),
            "batch_name": self.record.batch_name,
            "batch_id": self.root.id if self.root else self.record.batch_id,
            "attempts": [
                {"attempt": n, "batch_id": b.id, "status": b.status.label, "records": b.num_records or 0,
                 "succeeded": b.num_successful_records, "failed": b.num_failed_records}
                for n, b in sorted(self.attempts.items())
            ],
            "head_batch_id": head.id if head else None,
        }  # fmt: skip


@dataclass
class JobView:
    """A job and its parts, as the API shows them now."""

    job: JobRecord
    parts: list[PartView]

    @property
    def records(self) -> int:
        return self.job.records or 0

    @property
    def succeeded(self) -> int:
        return sum(p.succeeded for p in self.parts)

    @property
    def failed(self) -> int:
        return sum(p.failed for p in self.parts)

    @property
    def processed(self) -> int:
        return sum(min(p.record.records, p.succeeded + p.failed) for p in self.parts)

    @property
    def status(self) -> str:
        """``splitting``, ``sending`` (parts not all created), ``running``, ``completed``, ``failed``, ``canceled``."""
        if self.job.step == "splitting":
            return "splitting"
        if not self.parts or any(p.root is None for p in self.parts):
            return "canceled" if self.job.step == "canceled" else "sending"
        if not all(p.ended for p in self.parts):
            return "running"
        heads = [p.head.status.label for p in self.parts if p.head is not None]
        if "canceled" in heads:
            return "canceled"
        if "failed" in heads:
            return "failed"
        return "completed"

    @property
    def exit_code(self) -> ExitCode:
        """As ``cbatch watch`` for the job as a whole: its parts' outcomes combined."""
        from ..exit_codes import combine
        from ..watcher import batch_exit_code

        heads = [p.head for p in self.parts]
        codes = {batch_exit_code(h) for h in heads if h is not None}
        if self.job.step == "canceled" and (not heads or None in heads):
            codes.add(ExitCode.BATCH_CANCELED)  # parts never sent because the job was canceled
        elif not heads or None in heads:
            codes.add(ExitCode.NEVER_RAN)  # stopped while splitting, or parts never sent
        return combine(codes)

    @property
    def left(self) -> int:
        return sum(p.left for p in self.parts)

    def as_json(self) -> dict[str, Any]:
        job = self.job
        return {
            "id": job.id,
            "name": job.label,
            "model": job.model,
            "status": self.status,
            "step": job.step,
            "input": job.path,
            "input_bytes": job.size,
            "input_fingerprint": job.fingerprint,
            "dataset_type": job.dataset_type,
            "max_bytes_per_batch": job.max_bytes,
            "max_records_per_batch": job.max_records,
            "records": self.records,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "part_count": job.parts or 0,
            "created_at": _stamp(job.created_at),
            "parts": [p.as_json() for p in self.parts],
        }


class JobProgress:
    """The job as a whole while its parts are watched: parts ended, records succeeded, rate, time left.

    Counts are exact, never clamped: each part's attempts are kept by attempt
    number, an ended batch replaces what was known of its attempt (a running
    batch's partial count is never added to its final one), and a part's
    successes are those of its attempts, each retry carrying only records
    that had not succeeded (:attr:`PartView.succeeded`), or that did with
    an answer that breaks a schema job's schema: a part counts at most its
    records.
    """

    def __init__(self, view: JobView, clock: Callable[[], float] = time.monotonic) -> None:
        self.job_id = view.job.id
        self.total = view.records
        self.parts = len(view.parts)
        self._attempts = {p.record.part: dict(p.attempts) for p in view.parts}
        self._records = {p.record.part: p.record.records for p in view.parts}
        self._start = self.succeeded
        self._clock = clock
        self._began = clock()

    @property
    def ended(self) -> set[int]:
        """The parts whose latest attempt has ended."""
        return {
            part
            for part, attempts in self._attempts.items()
            if attempts and attempts[max(attempts)].status.is_terminal
        }

    @property
    def succeeded(self) -> int:
        total = 0
        for part, attempts in self._attempts.items():
            succeeded = sum(b.num_successful_records for b in attempts.values())
            total += min(self._records.get(part, succeeded), succeeded)
        return total

    def batches_ended(self, batches: Sequence[Batch]) -> str:
        """The one line to show once ``batches`` (parts or retries of parts, ended in one poll) have ended."""
        for batch in batches:
            lineage = naming.parse_batch_name(batch.name)[1]
            if lineage is not None and lineage.job_id == self.job_id and lineage.part is not None:
                self._attempts.setdefault(lineage.part, {})[lineage.attempt] = batch
        succeeded, ended = self.succeeded, len(self.ended)
        elapsed = self._clock() - self._began
        rate = (succeeded - self._start) / elapsed if elapsed > 0 else 0.0
        text = f"job {self.job_id}: {ended} of {self.parts} parts ended, {succeeded:,}/{self.total:,} records succeeded"
        left = self.total - succeeded
        if rate > 0 and left > 0 and ended < self.parts:
            text += f", {rate:,.1f} records/s, about {time_span(left / rate)} left"
        return text

    def batch_ended(self, batch: Batch) -> str:
        """The line to show once ``batch`` alone has ended."""
        return self.batches_ended([batch])


def record_json(job: JobRecord) -> dict[str, Any]:
    """What the store knows of a job, without asking the API (``jobs list``)."""
    return {
        "id": job.id, "name": job.label, "model": job.model, "step": job.step, "parts": job.parts,
        "records": job.records, "input": job.path, "input_bytes": job.size, "input_fingerprint": job.fingerprint,
        "created_at": _stamp(job.created_at),
    }  # fmt: skip


def recorded_status(job: JobRecord, store: StateStore) -> str:
    """What this machine last knew of a job, in the words of ``jobs get``, without a request.

    ``splitting``, ``sending`` (parts not all created), ``running``, ``canceled``, and
    ``ended`` once a watch saw every part end: how they ended (``completed``,
    ``failed``) is the API's to say, and ``jobs get`` asks it.
    """
    if job.step in ("splitting", "canceled"):
        return job.step
    if job.step == "done":
        return "ended"
    parts = store.parts(job.id)
    return "sending" if not parts or any(p.step != "created" for p in parts) else "running"


def _stamp(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


# -- finding a job's parts on the API -----------------------------------------------------------


def scan_batches(
    client: CohereClient, job_id: str, since: float | None
) -> dict[int, dict[int, Batch]]:
    """Every batch of the job, by part and attempt, from one scan of the batch list (newest first).

    The scan stops past the job's creation ``since`` (a machine's clock: the one
    rule of :mod:`..api.clock` allows for it).

    Two batches named for one part and attempt (two machines raced): the first
    created is the part's, as :func:`.lineage.resolve_chain` follows it too.
    """
    found: dict[int, dict[int, Batch]] = {}
    ordered, previous = True, None
    for seen, batch in enumerate(
        client.iter_batches(page_size=1000, order_by="created_at"), start=1
    ):
        created = batch.created_at.timestamp() if batch.created_at is not None else None
        if created is not None and previous is not None and created > previous:
            ordered = False
        previous = created if created is not None else previous
        lineage = naming.parse_batch_name(batch.name)[1]
        if lineage is not None and lineage.job_id == job_id and lineage.part is not None:
            attempts = found.setdefault(lineage.part, {})
            current = attempts.get(lineage.attempt)
            if current is None or _created(batch) < _created(current):
                attempts[lineage.attempt] = batch
        if ordered and since is not None and created is not None and created < not_before(since):
            break
        if seen >= SCAN_LIMIT:
            break
    return found


def _created(batch: Batch) -> float:
    return batch.created_at.timestamp() if batch.created_at is not None else float("inf")


def part_dataset_suffix(job_id: str, part: int) -> str:
    """The end of every name a part's input dataset can have, whatever its label."""
    return naming.dataset_name("", naming.Lineage(job_id=job_id, part=part))


def scan_datasets(client: CohereClient, job_id: str) -> dict[int, list[Dataset]]:
    """The input datasets named for the job's parts (first parts, not retries), by part, oldest first."""
    short = re.escape(part_dataset_suffix(job_id, 1)[: -len("1")])
    pattern = re.compile(rf"(?:^|-){short}(?P<part>[1-9]\d*)$")
    found: dict[int, list[Dataset]] = {}
    for seen, dataset in enumerate(client.iter_datasets(limit=SCAN_LIMIT), start=1):
        match = pattern.search(dataset.name or "")
        if match is not None and not (dataset.dataset_type or "").endswith("-output"):
            found.setdefault(int(match.group("part")), []).append(dataset)
        if seen >= SCAN_LIMIT:
            break
    for datasets in found.values():
        datasets.sort(
            key=lambda d: d.created_at.timestamp() if d.created_at is not None else float("inf")
        )
    return found


def job_view(client: CohereClient, job: JobRecord, store: StateStore) -> JobView:
    """The job and every part, from one scan of the batch list."""
    found = scan_batches(client, job.id, job.created_at)
    return JobView(job, [PartView(p, found.get(p.part, {})) for p in store.parts(job.id)])


# -- resolving a job id -------------------------------------------------------------------------


def find_job(store: StateStore, job_id: str, reporter: Reporter | None = None) -> JobRecord:
    """The job recorded here by id (or a unique start of one); NoMatch with what to do otherwise.

    ``reporter``: whose words the hint is in (None: the command line's, as ``jobs`` commands say it).
    """
    job = store.job(job_id)
    if job is not None:
        return job
    matches = store.job_ids_like(job_id) if len(job_id) >= 3 else []
    if len(matches) == 1:
        found = store.job(matches[0])
        assert found is not None
        return found
    if len(matches) > 1:
        from ..errors import AmbiguousMatch

        raise AmbiguousMatch(f"{job_id!r} starts {len(matches)} jobs: {', '.join(matches[:5])}")
    command = f"list jobs with: cbatch jobs list; a job made elsewhere: cbatch jobs attach {job_id} --file FILE"
    program = (
        f"list jobs with Client.jobs(); a job made elsewhere: Client.attach_job({job_id!r}, FILE)"
    )
    raise NoMatch(
        f"no job {job_id} is recorded on this machine",
        hint=command if reporter is None else reporter.spell(command, program),
    )


# -- split --------------------------------------------------------------------------------------


def _split(
    client: CohereClient,
    path: Path,
    job: JobRecord,
    reporter: Reporter,
    guard: GuardOptions,
    label: str | None = None,
) -> SplitPlan:
    """Check, guard and plan ``path``; its problems as ``path:LINE: message``, the path named ``label`` when given.

    The context check is ``create --file``'s (:func:`.estimating.guard_upload`),
    done in the split's own pass: each record is bounded by its bytes as it is
    read, and only those the bound cannot clear are counted with the tokenizer
    (:func:`.estimating.judge_context`); a record over the context refuses the
    job (exit 5) before a part is planned.
    """
    from .estimating import context_room
    from .jobs_split import plan_split, relabel

    room = context_room(client, job.model, guard, reporter) if job.model else None

    progress = reporter.progress(f"checking and splitting {path.name}")
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    progress.start(total_bytes=size or None)
    try:
        plan = plan_split(
            path, job.dataset_type, max_bytes=job.max_bytes or 1, max_records=job.max_records,
            on_bytes=(lambda n: progress.advance(bytes=n)), problems_out=relabel(path, label, reporter.info),
            room=(room.context, room.assumed_output) if room is not None else None,
        )  # fmt: skip
    finally:
        progress.finish()
    if room is not None:
        from .estimating import judge_context

        kind = plan.dataset_type or "batch-chat-v2-input"
        judge_context(
            room, path, Path(label) if label else path, kind, plan.undecided, guard, reporter
        )
    return plan


def _plan_rows(job: JobRecord, plan: SplitPlan) -> list[tuple[int, int, int, str, str]]:
    rows = []
    for number, part in enumerate(plan.parts, start=1):
        lineage = naming.Lineage(job_id=job.id, part=number)
        rows.append(
            (
                part.start,
                part.stop,
                part.records,
                naming.dataset_name(job.label, lineage),
                naming.batch_name(job.label, lineage),
            )
        )
    return rows


def _split_words(path: Path | str, job: JobRecord, plan: SplitPlan) -> str:
    from ..units import human_bytes

    limits = [f"{human_bytes(job.max_bytes)}" if job.max_bytes else ""]
    if job.max_records:
        limits.append(f"{job.max_records:,} records")
    n = len(plan.parts)
    return (
        f"{path}: {plan.records:,} records of {plan.dataset_type}, checked; job {job.id}: "
        f"{n} part{'' if n == 1 else 's'} of at most {' and '.join(x for x in limits if x)}"
    )


def create_job(
    client: CohereClient,
    path: Path,
    reporter: Reporter,
    options: JobOptions,
    store: StateStore,
    job_id: str | None = None,
) -> JobRecord:
    """Write a new job, check and split its input, and plan its parts (nothing is sent yet).

    ``job_id``: the id it takes (an idempotency key's run id, :mod:`.keyed`); None: a new one.
    """
    from ..state.store import JobRecord

    if options.max_bytes < 1 or (options.max_records is not None and options.max_records < 1):
        raise UsageError("a part holds at least one record: the split options must be positive")
    info = _stat(path)
    now = time.time()
    job = JobRecord(
        job_id or new_job_id(), options.label, options.model, options.dataset_type, str(path.resolve()), info.st_size,
        options.max_bytes, options.max_records, None, None, "splitting", now, now,
    )  # fmt: skip
    new = store.job(job.id) is None
    store.begin_job(job)
    try:
        return _plan_job(client, job, path, reporter, store, options.guard, options.input_label)
    except (InputRejected, UsageError):
        # The check refused the input: nothing will ever run, so no job is left "splitting" in
        # `jobs list`. A stop (Ctrl-C, a kill) is not this: that job resumes from its record.
        if new:
            store.delete_job(job.id)
        raise


def _plan_job(
    client: CohereClient,
    job: JobRecord,
    path: Path,
    reporter: Reporter,
    store: StateStore,
    guard: GuardOptions,
    label: str | None = None,
) -> JobRecord:
    plan = _split(client, path, job, reporter, guard, label)
    store.plan_job(
        job.id, _plan_rows(job, plan), records=plan.records, dataset_type=plan.dataset_type,
        blocks=plan.blocks,
    )  # fmt: skip
    planned = store.job(job.id)
    assert planned is not None
    reporter.info(_split_words(label or path, planned, plan))
    return planned


def _stat(path: Path) -> os.stat_result:
    from ..errors import InputFileError

    try:
        info = path.stat()
    except OSError as exc:
        raise InputFileError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not path.is_file():
        raise InputFileError(f"{path} is not a regular file: a job reads its input more than once")
    return info


def input_of(job: JobRecord, given: Path | None) -> Path | None:
    """The job's input file: ``given`` (an error when it cannot be read or its size is not the
    checked input's), else the recorded one while it has the checked input's size (None if not).

    Its bytes are compared with the check's fingerprint block by block as each
    part is read (:func:`.jobs_split.write_part`): a file of the same size with
    other bytes is refused then, without reading the whole file again here.
    """
    from ..errors import InputChanged, InputFileError

    if given is not None:
        try:
            info = given.stat()
        except FileNotFoundError:
            raise InputFileError(f"{given} does not exist") from None
        except OSError as exc:
            raise InputFileError(f"{given} cannot be read: {exc.strerror or exc}") from None
        if job.size is not None and info.st_size != job.size:
            raise InputChanged(
                f"{given} is not the file job {job.id} was split from: it is {info.st_size:,} bytes, "
                f"the input that was checked {job.size:,}",
                hint="give the file the job was made from",
            )
        return given
    if not job.path:
        return None
    candidate = Path(job.path)
    try:
        info = candidate.stat()
    except OSError:
        return None
    if job.size is not None and info.st_size != job.size:
        return None
    return candidate


# -- upload and create --------------------------------------------------------------------------


def resume_words(reporter: Reporter, job_id: str, *, file: bool = False) -> str:
    """What carries on with the job, in the words of whoever hears ``reporter``: the command, or the call."""
    return reporter.spell(
        f"cbatch jobs resume {job_id}{' --file FILE' if file else ''}",
        f"client.job({job_id!r}).resume({'file=FILE' if file else ''})",  # a program may hold no Job yet
    )


Hook = Callable[[str, int], None]
"""Told each step a part reaches (``uploaded``, ``created``) and the part's number."""


def send_parts(
    client: CohereClient,
    job: JobRecord,
    reporter: Reporter,
    store: StateStore,
    options: JobOptions,
    *,
    path: Path | None,
    watching: WatchSpec | None = None,
) -> list[PartRecord]:
    """Upload what is missing and create what is missing; what an earlier run made is found and kept.

    Part ``n`` is created once part ``n + 1`` is uploaded (its validation runs
    meanwhile), the last at the end. The job's run lock is held throughout:
    another cbatch sending for the job on this machine stops this one at once
    (or after ``options.wait_lock``). ``watching``: the watch that follows the
    send, whose deadline (``--timeout``, the command's one clock) no part is
    uploaded or created past.
    """
    from ..state.runlock import run_lock

    with run_lock(store, job_run(job.id), wait=options.wait_lock):
        try:
            return _send_parts(client, job, reporter, store, options, path=path, watching=watching)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: each step so far is recorded
            reporter.info(
                f"stopped while job {job.id} was sent: each part uploaded or created so far is "
                f"recorded, and none is sent twice; carry on with: {resume_words(reporter, job.id)}"
            )
            raise


def _send_parts(
    client: CohereClient,
    job: JobRecord,
    reporter: Reporter,
    store: StateStore,
    options: JobOptions,
    *,
    path: Path | None,
    watching: WatchSpec | None,
) -> list[PartRecord]:
    job = store.job(job.id) or job  # what the store says now: another run may have moved it on
    still_wanted(store, job)
    if job.step == "splitting":
        if path is None:
            raise InputRejected(
                f"job {job.id} was interrupted while its input was split, and the input is not here",
                hint=f"give it: {resume_words(reporter, job.id, file=True)}",
            )
        job = _plan_job(client, job, path, reporter, store, options.guard)
    parts = store.parts(job.id)
    pending = [p for p in parts if p.step != "created"]
    if not pending:
        return parts
    batches = scan_batches(client, job.id, job.created_at)
    datasets = scan_datasets(client, job.id)
    roots = {number: attempts[1] for number, attempts in batches.items() if 1 in attempts}
    wrong = plan_mismatch(client, [p.records for p in parts], roots, datasets)
    if wrong is not None:
        raise InputRejected(
            f"job {job.id} as planned here does not match what the API holds: {wrong}; nothing was sent",
            hint="its parts on the API were cut another way (on another machine?): resume it where it was planned, "
            "or run the file as a new job",
        )
    from .sending import usable

    total = len(parts)
    queue: list[PartRecord] = []
    """Uploaded, not created yet: each is created once its dataset is validated, uploads going on meanwhile."""
    with _workdir(store) as work:
        for part in pending:
            made = batches.get(part.part, {}).get(1)
            if made is not None:
                store.advance_part(
                    job.id, part.part, "created", dataset_id=made.input_dataset_id, batch_id=made.id
                )
                reporter.info(
                    f"part {part.part} of {total}: resumed: created by an earlier run, as batch {made.id}"
                )
                continue
            dataset_id = part.dataset_id or usable(
                client, [d.id for d in datasets.get(part.part, [])]
            )
            if (
                dataset_id is not None
            ):  # said as a retry and a plain batch say it, recorded or found by name
                if part.dataset_id is None:
                    store.advance_part(job.id, part.part, "uploaded", dataset_id=dataset_id)
                reporter.info(
                    f"part {part.part} of {total}: resumed: uploaded by an earlier run, as dataset {dataset_id}"
                )
            if dataset_id is None:
                if path is None:
                    raise InputRejected(
                        f"part {part.part} of job {job.id} is not uploaded yet, and the job's input is not here (or it changed)",
                        hint=f"give the file it was made from: {resume_words(reporter, job.id, file=True)}",
                    )
                in_time(job, watching, "uploaded")
                if queue and not _fits(client, part, options):
                    _create_ready(
                        client, job, queue, reporter, store, total, wait=True
                    )  # they may be what frees room
                _make_room(client, job, part, reporter, store, options)
                _upload_part(client, job, part, path, work, reporter, store, total)
            queue.append(store.parts(job.id)[part.part - 1])
            _create_ready(client, job, queue, reporter, store, total, wait=False)
        if queue:
            in_time(job, watching, "created")
        _create_ready(client, job, queue, reporter, store, total, wait=True)
    return store.parts(job.id)


def in_time(job: JobRecord, watching: WatchSpec | None, step: str) -> None:
    """Stop before a part's next step once the command's deadline has passed: each step done so far is recorded."""
    if watching is not None and watching.expired():
        from ..errors import WaitTimeout

        raise WaitTimeout(
            f"--timeout ran out while job {job.id} was sent: parts not {step} yet are left for later",
            hint=f"carry on with: cbatch jobs resume {job.id}",
        )


def still_wanted(store: StateStore, job: JobRecord) -> None:
    """Stop unless the job is still to be sent: read from the store again before every upload and create.

    ``jobs cancel`` marks the job canceled in the store, so a sender on this
    machine stops at its next step; from another machine, the cancel is seen
    as the API's CANCELED parts.
    """
    now = store.job(job.id)
    if now is not None and now.step == "canceled":
        raise NotReady(f"job {job.id} was canceled: nothing more is sent")


def _create_ready(
    client: CohereClient,
    job: JobRecord,
    queue: list[PartRecord],
    reporter: Reporter,
    store: StateStore,
    total: int,
    *,
    wait: bool,
) -> None:
    """Create the queued parts' batches, in part order, while their datasets are validated (``wait``: every one).

    In order, so the parts' batches are made (and listed) in the order of the input.
    """
    for part in list(queue):
        assert part.dataset_id is not None
        if not wait and not client.get_dataset(part.dataset_id).is_final:
            break
        _create_part(client, job, part, reporter, store, total)
        queue.remove(part)


@dataclass
class PartSteps:
    """A job part's steps, written to the state store's parts (:class:`.sending.Steps`)."""

    store: StateStore
    job: JobRecord
    number: int

    def still_wanted(self) -> None:
        still_wanted(self.store, self.job)

    def uploading(self) -> None:
        self.store.advance_part(self.job.id, self.number, "uploading")

    def uploaded(self, dataset_id: str) -> None:
        self.store.advance_part(self.job.id, self.number, "uploaded", dataset_id=dataset_id)

    def creating(self) -> None:
        self.store.advance_part(self.job.id, self.number, "creating")

    def created(self, batch: Batch) -> None:
        from .lineage import remember_batch

        self.store.advance_part(self.job.id, self.number, "created", batch_id=batch.id)
        remember_batch(self.store, batch, root_id=batch.id, attempt=1, parent_id=None)


def _sent_as(
    job: JobRecord, part: PartRecord, store: StateStore, reporter: Reporter
) -> tuple[Part, PartSteps]:
    """A job's part as a part of its run (:mod:`.sending`), and where its steps are written: the parts table."""
    from .sending import Part

    sent = Part(
        run=job_run(job.id), batch_name=part.batch_name, dataset_name=part.dataset_name, model=job.model,
        words=f"part {part.part} of job {job.id}",
        again=f"carry on with: {resume_words(reporter, job.id)} (it finds the batch if it was made)",
    )  # fmt: skip
    return sent, PartSteps(store, job, part.part)


def _upload_part(
    client: CohereClient,
    job: JobRecord,
    part: PartRecord,
    path: Path,
    work: Path,
    reporter: Reporter,
    store: StateStore,
    total: int,
) -> str:
    from . import sending

    sent, steps = _sent_as(job, part, store, reporter)
    dataset_id = sending.upload(
        store,
        sent,
        steps,
        lambda: _send_part(client, job, part, path, work, reporter, store, total),
    )
    reporter.info(
        f"part {part.part} of {total}: {part.records:,} records uploaded as dataset {dataset_id}"
    )
    return dataset_id


def _send_part(
    client: CohereClient,
    job: JobRecord,
    part: PartRecord,
    path: Path,
    work: Path,
    reporter: Reporter,
    store: StateStore,
    total: int,
) -> str:
    """The part's bytes read back from the input (refused if they are not the checked ones) and uploaded."""
    from ..errors import InputChanged, InputFileError
    from ..input_rules import CHAT_V2_INPUT
    from .jobs_split import PartPlan, write_part

    try:
        file = write_part(
            path, PartPlan(part.start, part.stop, part.records), work / f"part-{part.part}.jsonl",
            store.input_blocks(job.id),
        )  # fmt: skip
    except InputChanged as exc:
        exc.hint = exc.hint or (
            f"put back the file job {job.id} was split from, then: {resume_words(reporter, job.id)}; "
            f"or run what it holds now as a new job: {reporter.spell('cbatch jobs create FILE', 'Client.create_job(FILE)')}"
        )
        raise
    except InputFileError as exc:
        exc.hint = exc.hint or f"put it back, then: {resume_words(reporter, job.id, file=True)}"
        raise
    kind = job.dataset_type or CHAT_V2_INPUT
    progress = reporter.progress(f"uploading part {part.part} of {total}")
    progress.start(total_bytes=part.stop - part.start)
    try:
        return client.upload_dataset(
            file, name=part.dataset_name, dataset_type=kind, keep_original_file=True,
            keep_fields=["custom_id"] if kind == CHAT_V2_INPUT else None,
            on_bytes=lambda n: progress.advance(bytes=n),
        )  # fmt: skip
    finally:
        progress.finish()
        file.unlink(missing_ok=True)


def _create_part(
    client: CohereClient,
    job: JobRecord,
    part: PartRecord,
    reporter: Reporter,
    store: StateStore,
    total: int,
) -> Batch:
    from . import sending
    from .datasets import wait_for_dataset

    assert part.dataset_id is not None
    dataset = wait_for_dataset(client, part.dataset_id)
    if dataset.validation_status != "validated":
        raise InputRejected(
            f"dataset {part.dataset_id} (part {part.part} of job {job.id}) is {dataset.validation_status}: "
            f"{dataset.validation_error or 'no reason given'}"
        )
    sent, steps = _sent_as(job, part, store, reporter)
    batch = sending.create(client, store, sent, steps, part.dataset_id, reporter)
    reporter.info(f"part {part.part} of {total}: created batch {batch.id}")
    return batch


# -- storage ------------------------------------------------------------------------------------


def _fits(client: CohereClient, part: PartRecord, options: JobOptions) -> bool:
    return (
        options.org_max_bytes is None
        or client.dataset_usage() + (part.stop - part.start) <= options.org_max_bytes
    )


def _make_room(
    client: CohereClient,
    job: JobRecord,
    part: PartRecord,
    reporter: Reporter,
    store: StateStore,
    options: JobOptions,
) -> None:
    """Wait until the organisation's storage has room for ``part``, or say it never will, and stop.

    Room comes only from this job's earlier parts: each running part may end,
    and then (``delete_inputs``) its input dataset is deleted. When no part of
    the job is still running and the part does not fit even with every
    finished part's input deleted, waiting would be forever: InputRejected.
    """
    if options.org_max_bytes is None:
        return
    from ..api.errors import NotFoundError
    from ..units import human_bytes

    need = part.stop - part.start
    pause = 1.0
    told = False
    deleted: set[str] = set()
    while True:
        still_wanted(store, job)  # a cancel ends the wait for room too
        used = client.dataset_usage()
        if used + need <= options.org_max_bytes:
            return
        view = job_view(client, job, store)
        freed = 0
        running = 0
        for other in view.parts:
            root = other.root
            if root is None:
                continue
            if not other.ended:
                running += 1
            elif (
                options.delete_inputs
                and root.input_dataset_id
                and root.input_dataset_id not in deleted
            ):
                deleted.add(root.input_dataset_id)
                try:
                    client.delete_dataset(root.input_dataset_id)
                except NotFoundError:
                    continue
                reporter.info(
                    f"part {other.record.part}: ended; deleted its input dataset {root.input_dataset_id} to make room"
                )
                freed += 1
        if freed:
            continue
        if not running:
            advice = (  # a program has no delete_inputs: only the command line says it
                ""
                if options.delete_inputs
                else reporter.spell(
                    " (--delete-inputs deletes each part's input once it ended)", ""
                )
            )
            raise InputRejected(
                f"part {part.part} of job {job.id} needs {human_bytes(need)}, and the organisation stores "
                f"{human_bytes(used)} of its {human_bytes(options.org_max_bytes)}; no part of the job is still running "
                f"to free any: the job stops here{advice}",
                hint=reporter.spell(
                    f"free storage (cbatch datasets usage; 'cbatch jobs results {job.id} --delete-outputs' frees what "
                    "was downloaded), then: ",
                    "free storage (delete datasets the organisation no longer needs), then: ",
                )
                + resume_words(reporter, job.id),
            )
        if not told:
            reporter.info(
                f"part {part.part} of {job.parts}: waiting for room: the organisation stores {human_bytes(used)} of its "
                f"{human_bytes(options.org_max_bytes)}, and {running} part{'' if running == 1 else 's'} still run"
            )
            told = True
        time.sleep(pause)
        pause = min(options.storage_poll, pause * 2)


# -- cancel -------------------------------------------------------------------------------------


def cancel_job(
    client: CohereClient, job: JobRecord, store: StateStore
) -> tuple[JobView, list[tuple[str, str | None]]]:
    """Mark the job canceled (no part is sent after this) and cancel every part still running.

    Returns the view and, for each batch asked, its id and the refusal (None: accepted).
    """
    from ..state.runlock import step_lock
    from .batches import cancel_batches

    store.set_job_step(job.id, "canceled")
    with step_lock(store, job_run(job.id)):
        pass  # a sender's create in flight is recorded now, and every later step reads "canceled"
    view = job_view(client, job, store)
    running = [
        p.head.id for p in view.parts if p.head is not None and not p.head.status.is_terminal
    ]
    running += [  # created a moment ago: recorded here, perhaps not listed yet
        p.record.batch_id for p in view.parts if p.head is None and p.record.batch_id is not None
    ]
    outcomes = [
        (o.batch_id, None if o.accepted else str(o.error)) for o in cancel_batches(client, running)
    ]
    return view, outcomes


# -- attach -------------------------------------------------------------------------------------


def attach_job(
    client: CohereClient,
    job_id: str,
    path: Path,
    reporter: Reporter,
    store: StateStore,
    options: JobOptions,
) -> JobRecord:
    """Rebuild a job another machine started, from the API's names and the same input file and split options.

    The file is split again with ``options``' split (``max_bytes``,
    ``max_records``, ``dataset_type``: they must be the ones the job was made
    with, ``--split`` by the dataset limit unless it said otherwise); a part
    the API shows with another record count, or a part number past the plan,
    says they are not, and nothing is recorded. ``options.model`` and
    ``options.label`` (empty: not given) stand where the API's batches do not
    say them.
    """
    from ..state.store import JobRecord

    if not re.fullmatch(r"[a-z0-9]{3,32}", job_id):
        raise UsageError(
            f"{job_id!r} is not a job id (letters and digits, as 'cbatch jobs list' shows them)"
        )
    batches = scan_batches(client, job_id, None)
    datasets = scan_datasets(client, job_id)
    if not batches and not datasets:
        raise NoMatch(
            f"no batch or dataset of job {job_id} was found on the API",
            hint="is it the id 'cbatch jobs create' printed?",
        )
    roots = {part: attempts[1] for part, attempts in batches.items() if 1 in attempts}
    first = next((roots[p] for p in sorted(roots)), None)
    found_label = naming.label_of(first.name) if first is not None else None
    chosen_model = options.model or (first.model if first is not None else None)
    if not chosen_model:
        raise UsageError(
            f"no batch of job {job_id} is created yet, so its model is not known: give it with --model"
        )
    info = _stat(path)
    now = time.time()
    created = min((_created(b) for b in roots.values()), default=now)
    job = JobRecord(
        job_id, found_label or options.label or path.stem, chosen_model, options.dataset_type, str(path.resolve()),
        info.st_size, options.max_bytes, options.max_records, None, None, "splitting", min(created, now), now,
    )  # fmt: skip
    # The job was checked (its context too) where it was made: the split here only rebuilds its plan.
    plan = _split(client, path, job, reporter, GuardOptions(check_context=False))
    wrong = plan_mismatch(client, [p.records for p in plan.parts], roots, datasets)
    if wrong is not None:
        raise InputRejected(
            f"{path} split with these options does not give job {job_id}'s parts: {wrong}",
            hint="give the file and the split options (--max-records-per-batch, --max-bytes-per-batch) the job was made with",
        )
    store.begin_job(job)
    store.plan_job(
        job.id, _plan_rows(job, plan), records=plan.records, dataset_type=plan.dataset_type,
        blocks=plan.blocks,
    )  # fmt: skip
    for number, batch in roots.items():
        store.advance_part(
            job.id, number, "created", dataset_id=batch.input_dataset_id, batch_id=batch.id
        )
    attached = store.job(job.id)
    assert attached is not None
    reporter.info(
        f"attached job {job_id}: {len(plan.parts)} parts, {len(roots)} created, "
        f"{len(set(datasets) - set(roots))} uploaded and not created yet"
    )
    return attached


def plan_mismatch(
    client: CohereClient,
    records: Sequence[int],
    roots: dict[int, Batch],
    datasets: dict[int, list[Dataset]],
) -> str | None:
    """How the plan (each part's record count) differs from what the API holds for the job; None: it does not.

    A part created is compared by its batch's record count; a part only
    uploaded, by its dataset's validated row count (waiting for the
    validation), so a plan cut another way is refused before anything of it
    is sent: parts of two plans overlap, and their records would run twice.
    """
    beyond = [n for n in (*roots, *datasets) if n > len(records)]
    if beyond:
        return f"the API has part {max(beyond)}, the plan {len(records)}"
    for number, batch in sorted(roots.items()):
        if batch.num_records is not None and batch.num_records != records[number - 1]:
            return f"part {number} holds {batch.num_records:,} records on the API (batch {batch.id}) and {records[number - 1]:,} in the plan"
    for number, found in sorted(datasets.items()):
        for dataset in found:
            rows = _validated_rows(client, dataset)
            if rows is not None and rows != records[number - 1]:
                return (
                    f"part {number} holds {rows:,} records on the API (dataset {dataset.id}, uploaded) "
                    f"and {records[number - 1]:,} in the plan"
                )
    return None


def _validated_rows(client: CohereClient, dataset: Dataset) -> int | None:
    """The rows the service counted in ``dataset`` once validated (None: gone, not validated, or not said)."""
    from ..api.errors import NotFoundError
    from .datasets import wait_for_dataset

    if dataset.validation_status != "validated":
        try:
            dataset = wait_for_dataset(client, dataset.id)
        except NotFoundError:
            return None
    if dataset.validation_status != "validated" or not dataset.parts:
        return None
    counts = [part.num_rows for part in dataset.parts]
    return sum(c for c in counts if c is not None) if None not in counts else None


# -- retry rounds across parts ------------------------------------------------------------------


WatchMany = Callable[[list[str]], ExitCode]
"""Follows batches to their end (one view, one list request a round); returns the watch's exit code."""


@dataclass
class JobRounds:
    """How a job's retry rounds ended."""

    made: list[str] = field(default_factory=list)
    """The retry batches made (or resumed), in order."""
    exit_code: ExitCode = ExitCode.OK
    left: int = 0
    stopped: str | None = None
    """Where the deadline stopped the rounds outside a watch (a pause), in words."""


def retry_job(
    client: CohereClient,
    job: JobRecord,
    reporter: Reporter,
    store: StateStore,
    options: RetryOptions,
    *,
    watch: WatchMany,
    spec: WatchSpec,
    path: Path | None,
    on_attempt: Callable[[Batch], None] | None = None,
) -> JobRounds:
    """Retry what failed in every part, watch the retries together, and again, until each part holds ``options.rounds`` retries.

    The job's side of the one round loop (:func:`.retrying.run_rounds`): a
    lane per part, its chain, its input cut from the job's file. As for one
    batch, ``options.rounds`` counts the retries each part has on the API,
    however often the command was interrupted and run again; a round is
    numbered by the fewest retries of a part still to retry, and the pause
    before it is the one rule, :func:`.retrying.round_pause`, announced as
    slept. Each part's retry is the retry feature's attempt (intent written
    first, looked for by name before it is made); one watch follows a round's
    retries together. Exit 12 when records still fail after the last round, 0
    when none do; a watch that ends otherwise (a timeout, a signal) or
    ``spec``'s deadline (the command's one clock, which ``watch`` follows too)
    falling in a pause stops the rounds with its own code.
    """
    from .retrying import run_rounds

    schema = job_answer_schema(job, options.rule, reporter)
    lanes = _PartLanes(client, job, reporter, store, options, path, on_attempt, schema)
    stop = run_rounds(
        lanes, options, reporter, watch=lambda batches: watch([b.id for b in batches]),
        deadline=spec.deadline, store=store,
    )  # fmt: skip
    result = lanes.result
    if stop is not None:
        result.exit_code, result.stopped = stop.exit_code, stop.stopped
        return result
    if schema is not None:
        # the API counts an invalid answer as a success: the outputs say what is left
        view = lanes.view or job_view(client, job, store)
        result.left = job_left(client, view, schema, reporter, store, options, lanes.settled)
    result.exit_code = ExitCode.RECORDS_FAILED if result.left else ExitCode.OK
    return result


def job_answer_schema(job: JobRecord, rule: Rule, reporter: Reporter) -> str | None:
    """The answer schema of a table job made with ``--schema`` (JSON text): its invalid answers count as failed.

    ``--invalid`` (``rule.failed`` off) of a job without one is refused (exit
    2), before any part is read: there is nothing it could pick.
    """
    from .table_results import job_schema

    schema = job_schema(job.id, reporter)
    if schema is None and not rule.failed:
        from .retrying import no_schema_to_pick

        raise no_schema_to_pick(f"job {job.id}", reporter)
    return schema


def job_left(
    client: CohereClient,
    view: JobView,
    schema: str | None,
    reporter: Reporter,
    store: StateStore,
    options: RetryOptions,
    counted: Mapping[str, int] | None = None,
) -> int:
    """Records of the job with no usable answer once its parts ended: failed, never came back, or (a schema job) invalid.

    Without a schema the API's counts say it; with one, each part's outputs
    are read (:func:`.retrying.left_in`), every attempt together, unless
    ``counted`` holds what a selection counted after the part's newest
    attempt (by its batch id).
    """
    from .retrying import left_in

    if schema is None:
        return view.left
    known = counted or {}
    total = 0
    for part in view.parts:
        if part.head is None or not part.ended:
            continue
        if part.head.id in known:
            total += known[part.head.id]
            continue
        attempts = [part.attempts[n] for n in sorted(part.attempts)]
        total += left_in(client, attempts, part.record.records, schema, reporter, options, store)
    return total


@dataclass
class _PartLanes:
    """A job's rounds: a lane per sent part, its chain, retried with its input cut from the job's file."""

    client: CohereClient
    job: JobRecord
    reporter: Reporter
    store: StateStore
    options: RetryOptions
    path: Path | None
    on_attempt: Callable[[Batch], None] | None
    schema: str | None = None
    """The job's answer schema: its parts' invalid answers are sent again, so the API's counts do not say what is left."""
    result: JobRounds = field(default_factory=JobRounds)
    parts: int = 0
    done_on_stop: bool = True
    settled: dict[str, int] = field(default_factory=dict)
    """Records still not usable after a part's newest attempt, by its batch id, where a retry's selection counted
    them and sent nothing: that part is not due again until it has a newer attempt."""
    view: JobView | None = None
    """The job as the last pass read it."""

    def read(self) -> list[Lane]:
        from .retrying import Lane

        self.view = view = job_view(self.client, self.job, self.store)
        self.result.left, self.parts = view.left, len(view.parts)
        return [
            Lane(p.head, len(p.attempts) - 1, self._left(p) and p.root is not None, key=p)
            for p in view.parts
            if p.head is not None
        ]

    def _left(self, part: PartView) -> bool:
        """Whether the part may have records to send again: its API counts say so, or, with a schema,
        no selection has counted its newest attempt yet (its invalid answers are known only from its outputs)."""
        assert part.head is not None
        if part.head.id in self.settled:  # its selection sent nothing: only a newer attempt is due
            return False
        return part.left > 0 or self.schema is not None

    def folder(self) -> AbstractContextManager[Path | None]:
        return _workdir(self.store)

    def retry(self, lane: Lane, work: Path | None) -> RetryOutcome:
        from .retrying import retry_once

        part: PartView = lane.key
        assert part.root is not None and work is not None
        store, job = self.store, self.job
        each = part_retry(
            job, part.record, self.path, work, store, self.options,
            still_wanted=lambda: still_wanted(store, job),
        )  # fmt: skip
        self.reporter.info(due_words(part, self.parts, self.schema))
        outcome = retry_once(self.client, part.root.id, self.reporter, each, store=store)
        if outcome.batch is None and outcome.selection is not None:
            self.settled[lane.head.id] = outcome.selection.still_failing
        if outcome.batch is not None:
            self.result.made.append(outcome.batch.id)
            if self.on_attempt is not None:
                self.on_attempt(outcome.batch)
        return outcome

    def ended(self, made: list[RetryOutcome]) -> None:
        """Nothing to count here: the next pass reads every part's counts afresh."""


def part_retry(
    job: JobRecord,
    part: PartRecord,
    path: Path | None,
    work: Path,
    store: StateStore,
    options: RetryOptions,
    *,
    still_wanted: Callable[[], None] | None = None,
    dry_run: bool = False,
) -> RetryOptions:
    """How one part is retried: ``options`` with its own requests, cut from the job's input and named as such, on the job's model."""
    from dataclasses import replace

    from ..units import counted

    source = _part_input(job, part, path, work, store)
    words = None
    if source is not None:  # a work file of cbatch's: the user knows the job's input, not it
        whole = input_of(job, path)
        words = f"part {part.part} of {whole} ({counted(part.records, 'record')}, the bytes the job checked)"
    return replace(
        options, input=source, input_words=words, model=job.model, still_wanted=still_wanted,
        dry_run=dry_run,
    )  # fmt: skip


def dry_run_retry(
    client: CohereClient,
    job: JobRecord,
    store: StateStore,
    path: Path | None,
    options: RetryOptions,
    reporter: Reporter,
    show: Callable[[str, RetryOptions], None],
) -> None:
    """``jobs retry --dry-run``: each part's retry as ``retry --dry-run`` shows it (``show``); nothing sent."""
    schema = job_answer_schema(job, options.rule, reporter)
    view = job_view(client, job, store)
    due = [
        p
        for p in view.parts
        if p.root is not None and (p.left or not p.ended or schema is not None)
    ]
    if not due:
        reporter.info(f"job {job.id}: nothing to send again")
        return
    total = len(view.parts)
    with _workdir(store) as work:
        for part in due:
            assert part.root is not None
            if not part.ended:
                reporter.info(
                    f"part {part.record.part} of {total}: still {part.status}; nothing would be sent until it ends"
                )
                continue
            reporter.info(due_words(part, total, schema))
            show(
                part.root.id, part_retry(job, part.record, path, work, store, options, dry_run=True)
            )


def due_words(part: PartView, parts: int, schema: str | None) -> str:
    """The line before a part's retry: what its counts say is left, or, with a schema, that its answers are checked."""
    head = f"part {part.record.part} of {parts}"
    if schema is not None:  # the API counts invalid answers as successes: the selection tells
        return f"{head}: its answers are checked against the job's schema for records to send again"
    return f"{head}: {part.left:,} record{'' if part.left == 1 else 's'} to send again"


def _part_input(
    job: JobRecord, part: PartRecord, path: Path | None, work: Path, store: StateStore
) -> Path | None:
    """The part's requests as a file of their own, cut from the job's input (None: read from the dataset)."""
    from .jobs_split import PartPlan, write_part

    source = input_of(job, path)
    if source is None:
        return None
    return write_part(
        source,
        PartPlan(part.start, part.stop, part.records),
        work / f"retry-input-{part.part}.jsonl",
        store.input_blocks(job.id),
    )


# -- plumbing -----------------------------------------------------------------------------------


def _workdir(store: StateStore) -> AbstractContextManager[Path]:
    """A private folder for the part files, beside the store, removed whatever happens (:mod:`..state.runlock`)."""
    from ..state.runlock import work_folder

    return work_folder(store, "job-")


def prune_jobs(store: StateStore, *, older_than: float, everything: bool = False) -> list[str]:
    """Forget jobs that ended (or were canceled) more than ``older_than`` seconds ago; the ids forgotten."""
    cutoff = time.time() - older_than
    gone = []
    for job in store.jobs():
        if (everything or job.step in ("done", "canceled")) and job.updated_at <= cutoff:
            store.delete_job(job.id)
            _forget_table_input(store, job)
            gone.append(job.id)
    return gone


TABLE_JOB_INPUTS = "table-jobs"
"""The state folder's sub-folder where a table job's rendered requests are kept (``jobs create --from``)."""


def _forget_table_input(store: StateStore, job: JobRecord) -> None:
    """A table job's requests, kept in the state folder for its parts and retries, go with the job, and so does its map."""
    from ..state.store import state_dir
    from .request_reuse import remove_map

    kept_map = store.table_requests(job.id)
    if kept_map is not None and kept_map.map_file:
        remove_map(store, kept_map)
    if not job.path:
        return
    path = Path(job.path)
    if path.parent == (state_dir()[0] / TABLE_JOB_INPUTS).resolve():
        path.unlink(missing_ok=True)
