"""One retry of a finished batch, and rounds of them: send again only what failed.

An attempt is made in steps, each written to the state store *before* it is
taken (intent first, then the step, then the outcome), and each looked for
before it is taken again:

1. **resolve** the chain of attempts from the API (batch names carry the
   root and the attempt: :mod:`cohere_batch_cli.naming`), so an attempt
   made by a run that was killed, or on another machine, is found;
2. **select** the records to send (:mod:`cohere_batch_cli.selection`) from
   the input (:mod:`.sources`) and every attempt's output;
3. **upload** the retry input (``uploading``, then ``uploaded`` with the
   dataset id): a run killed mid-upload finds its dataset by name;
4. **create** the batch (``creating``, then ``created`` with the batch id),
   named for its root and attempt: a run killed before the answer came back
   finds it in the list instead of creating it again;
5. **done** once the run that made it has reported it (or watched it to the
   end): until then, the same command picks it up where it stopped.

Only one cbatch may send for one run at a time on a machine: the run lock
(:mod:`cohere_batch_cli.state.runlock`) of the root, or of the job when the
batch is a job's part, held for the whole command; the kernel drops it if
the process dies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import naming, pace
from ..errors import NotReady, RecordsStillFailing, ResultsExpired, UsageError
from ..exit_codes import ExitCode
from ..selection import Rule, Selection
from ..state.runlock import run_lock, work_folder
from ..units import time_span

if TYPE_CHECKING:
    from .._httpx import httpx
    from ..api.client import CohereClient
    from ..api.models import Batch
    from ..state.store import AttemptRecord, StateStore
    from .lineage import Chain
    from .reporting import Reporter
    from .sending import Part
    from .sources import InputSource
    from .watching import WatchSpec

MAX_PAUSE = 600.0


@dataclass(frozen=True)
class RetryOptions:
    """Every option of a retry in one value: what to send again, how many rounds, the input, download settings.

    Built once per command from its flags (``retry``, ``create --retry-failed``,
    ``jobs retry``, ``jobs create --retry-failed``) and passed whole: a job's
    part is retried with this value, its input and model replaced
    (:func:`.jobs.part_retry`).
    """

    rule: Rule = field(default_factory=Rule)
    rounds: int = 1
    """Retries in all, as the API holds them (``--rounds``, ``--retry-failed``; 0: none)."""
    pause: float = pace.PAUSE
    """The pause before the second round; it doubles before each round after (:func:`round_pause`)."""
    input: Path | None = None
    input_words: str | None = None
    """How the ``input:`` line names ``input`` when cbatch cut it itself (a job's part), not the user."""
    dry_run: bool = False
    model: str | None = None
    listing: Path | None = None
    """A dry run writes one JSON line per record it would send here (see ``selection.select``)."""
    concurrency: int = 4
    read_timeout: float | None = None
    ca_bundle: str | None = None
    processes: int | None = None
    wait_lock: float = 0.0
    """How long to wait for another cbatch sending for the same run on this machine (``--wait-lock``),
    where the retry is the command's own run (``retry``, ``create --retry-failed``, ``jobs retry``). A
    command that sends a job's parts holds ``--wait-lock`` in :attr:`.jobs.JobOptions.wait_lock` alone,
    and its rounds run under the lock it took (re-entrant): here it stays 0."""
    still_wanted: Callable[[], None] | None = None
    """Raises to stop before the upload and before the create (a job canceled meanwhile), read under the
    run's step lock, which a cancel takes too (:func:`cohere_batch_cli.state.runlock.step_lock`)."""


@dataclass
class RetryOutcome:
    """What one retry did, or would do (a dry run), or found already done."""

    chain: Chain
    attempt: int
    batch_name: str
    dataset_name: str
    model: str
    source: InputSource | None = None
    selection: Selection | None = None
    batch: Batch | None = None
    """The attempt's batch: created now, or found made by an earlier run."""
    resumed: str | None = None
    """Where this run picked up an earlier one, in words; None for a fresh attempt."""
    dataset_id: str | None = None
    schema: str | None = None
    """The run's answer schema (JSON text), when it has one: its invalid answers count as failed."""

    @property
    def records(self) -> int:
        return self.selection.records if self.selection is not None else 0


# -- one attempt --------------------------------------------------------------------------------


def retry_once(
    client: CohereClient,
    batch_id: str,
    reporter: Reporter,
    options: RetryOptions = RetryOptions(),
    *,
    store: StateStore | None,
) -> RetryOutcome:
    """Make the next attempt of ``batch_id``'s chain (or find the one an earlier run made).

    Raises :class:`NotReady` while the newest attempt still runs (unless an
    earlier run made it: then that attempt is the outcome, to watch).
    """
    from .lineage import resolve_chain

    batch = client.get_batch(batch_id)
    with run_lock(store, run_of(batch, store), wait=options.wait_lock):
        chain = resolve_chain(client, batch, store=store, reporter=reporter)
        return _attempt(client, chain, reporter, options, store)


def resumable(chain: Chain, store: StateStore | None) -> bool:
    """Whether the newest attempt was made by a run of this machine that stopped before it was done."""
    if store is None or chain.head_number < 2:
        return False
    record = store.attempt(chain.root.id, chain.head_number)
    return record is not None and record.step != "done" and record.batch_id in (None, chain.head.id)


def _attempt(
    client: CohereClient,
    chain: Chain,
    reporter: Reporter,
    options: RetryOptions,
    store: StateStore | None,
) -> RetryOutcome:
    head, number = chain.head, chain.head_number
    if resumable(chain, store):
        assert store is not None
        outcome = _outcome(chain, number, options, head)
        outcome.resumed = f"attempt {number} was created by an earlier run, as batch {head.id}"
        record = store.attempt(chain.root.id, number)
        if record is not None and record.step != "created":
            from .lineage import remember_batch

            remember_batch(
                store, head, root_id=chain.root.id, attempt=number, parent_id=chain.attempts[-2].id
            )
            store.advance_attempt(chain.root.id, number, "created", batch_id=head.id)
        return outcome
    if not head.status.is_terminal:
        raise NotReady(
            f"batch {head.id} (attempt {number} of {chain.root.id}) is still {head.status.label}",
            hint=reporter.spell(
                f"wait for it with: cbatch watch {head.id} (or add --watch)",
                "wait for it with Run.wait()",
            ),
        )
    outcome = _outcome(chain, number + 1, options, None)
    reporter.info(_chain_words(chain))
    with _workdir(store) as work, _storage(options) as http:
        from ..selection import select
        from .sources import find_input

        schema = outcome.schema = answer_schema(client, chain, reporter, options.rule)
        outcome.source = find_input(
            client, chain, given=options.input, store=store, workdir=work, http=http, reporter=reporter,
            concurrency=options.concurrency, stall_timeout=options.read_timeout or 60.0,
        )  # fmt: skip
        reporter.info(f"input: {options.input_words or outcome.source.description}")
        attempts = list(zip(chain.attempts, chain.numbers, strict=True))
        outputs = _download_outputs(client, attempts, work, http, reporter, options)
        retry_input = work / "retry-input.jsonl"
        outcome.selection = select(
            outcome.source.path,
            outputs,
            retry_input,
            work,
            options.rule,
            listing=options.listing,
            processes=options.processes,
            schema=schema,
        )
        reporter.info(selection_words(outcome.selection, options.rule, dry_run=options.dry_run))
        if outcome.selection.records == 0 or options.dry_run:
            return outcome
        outcome.dataset_id = _upload(client, store, chain, outcome, retry_input, reporter, options)
    outcome.batch = _create(client, store, chain, outcome, reporter, options)
    return outcome


def answer_schema(client: CohereClient, chain: Chain, reporter: Reporter, rule: Rule) -> str | None:
    """The answer schema the chain's run was made with (``create --from ... --schema``, or its table job's), as JSON text.

    Its invalid answers are then failures to send again. ``retry --invalid``
    of a run without one is refused (exit 2): there is nothing it could pick.
    """
    from .table_results import run_schema

    schema = run_schema(client, chain.root, reporter)
    if schema is None and not rule.failed:
        raise no_schema_to_pick(f"batch {chain.root.id}", reporter)
    return schema


def no_schema_to_pick(run: str, reporter: Reporter) -> UsageError:
    """The refusal of ``--invalid`` (a program's ``only_invalid=True``) for ``run``, made without an answer schema."""
    invalid = reporter.spell("--invalid", "only_invalid=True")
    return UsageError(
        f"{invalid} picks answers that break a run's answer schema, and {run} was not made with "
        f"{reporter.spell('--schema', 'a schema')} on this machine",
        hint=f"leave out {invalid} to send again what failed",
    )


def _outcome(chain: Chain, number: int, options: RetryOptions, batch: Batch | None) -> RetryOutcome:
    lineage = chain.lineage(number)
    model = options.model or chain.head.model or chain.root.model
    if not model:
        raise UsageError(f"batch {chain.head.id} names no model: give one with --model")
    return RetryOutcome(
        chain=chain,
        attempt=number,
        batch_name=naming.batch_name(chain.label, lineage),
        dataset_name=naming.dataset_name(chain.label, lineage),
        model=model,
        batch=batch,
    )


def mark_done(store: StateStore | None, outcome: RetryOutcome) -> None:
    """The run that made (or resumed) ``outcome``'s attempt is done with it: the next run starts the next one."""
    root = outcome.chain.root.id
    if (
        store is not None
        and outcome.batch is not None
        and store.attempt(root, outcome.attempt) is not None
    ):
        store.advance_attempt(root, outcome.attempt, "done")


def _chain_words(chain: Chain) -> str:
    head = chain.head
    left = (head.num_records or 0) - head.num_successful_records
    where = (
        f"batch {head.id}"
        if not chain.has_retries
        else f"batch {head.id}, attempt {chain.head_number} of {chain.root.id},"
    )
    counts = f"{head.num_successful_records:,} of {head.num_records or 0:,} records succeeded"
    return f"{where} ended {head.status.label}: {counts}" + (
        f", {left:,} did not" if left > 0 else ""
    )


def _quoted(text: str) -> str:
    """An error text in the quotes it does not hold: a schema's reason names its fields in "..."."""
    return f"'{text}'" if '"' in text and "'" not in text else f'"{text}"'


def selection_words(selection: Selection, rule: Rule, *, dry_run: bool = False) -> str:
    """The sentence that says what is sent again, and why."""
    if selection.records == 0:
        text = "nothing to send again"
        if selection.still_failing:
            text += f": {selection.still_failing:,} records still fail, none of them picked ({rule.describe()})"
        else:
            text += f": all {selection.input_records:,} records succeeded"
        return text
    verb = "would send again" if dry_run else "sending again"
    reasons = []
    if selection.failed or selection.invalid:
        kinds = ", ".join(f"{count:,} {_quoted(kind)}" for kind, count in selection.errors)
        more = selection.error_kinds - len(selection.errors)
        kinds += f" and {more:,} other kind{'s' if more != 1 else ''}" if more > 0 else ""
        which = [f"{selection.failed:,} failed"] if selection.failed else []
        which += [f"{selection.invalid:,} invalid"] if selection.invalid else []
        reasons.append(f"{' and '.join(which)} ({kinds})")
    if selection.missing:
        reasons.append(f"{selection.missing:,} with no result")
    text = f"{verb} {selection.records:,} of {selection.input_records:,} records: " + "; ".join(
        reasons
    )
    left = []
    if selection.left_failing:
        left.append(f"{selection.left_failing:,} failures that do not match {rule.pattern!r}")
    if selection.left_invalid:
        left.append(f"{selection.left_invalid:,} invalid answers")
    if selection.left_missing:
        left.append(f"{selection.left_missing:,} with no result")
    return text + (f" (left out: {', '.join(left)})" if left else "")


# -- outputs ------------------------------------------------------------------------------------


def left_in(
    client: CohereClient,
    attempts: Sequence[Batch],
    records: int,
    schema: str | None,
    reporter: Reporter,
    options: RetryOptions,
    store: StateStore | None,
) -> int:
    """Of ``records`` sent to ``attempts`` (one chain's, first first), those with no usable answer in any.

    Failed, invalid for ``schema`` (a schema run), or with no result: what
    the API's counts cannot tell for a schema run, whose invalid answers it
    counts as successes. Read from the outputs alone (no input needed):
    :func:`cohere_batch_cli.selection.usable_records`.
    """
    from ..selection import usable_records

    with _workdir(store) as work, _storage(options) as http:
        numbered = list(zip(attempts, range(1, len(attempts) + 1), strict=True))
        outputs = _download_outputs(client, numbered, work, http, reporter, options)
        usable = usable_records(outputs, work, schema=schema, processes=options.processes)
    return max(0, records - usable)


def invalid_left(
    client: CohereClient,
    batch: Batch,
    reporter: Reporter,
    options: RetryOptions,
    store: StateStore | None,
) -> int:
    """Records of an ended ``batch`` with no usable answer of its own, when its run has an answer schema; 0 without one.

    The API's counts say it all for a run without a schema; with one, its
    invalid answers are successes there, so the batch's output is read
    (:func:`left_in`). A batch with no success has nothing to read.
    """
    from .table_results import run_schema

    if not batch.num_successful_records:
        return 0
    schema = run_schema(client, batch, reporter)
    if schema is None:
        return 0
    return left_in(client, [batch], batch.num_records or 0, schema, reporter, options, store)


def _download_outputs(
    client: CohereClient,
    attempts: Sequence[tuple[Batch, int]],
    work: Path,
    http: httpx.Client,
    reporter: Reporter,
    options: RetryOptions,
) -> list[list[Path]]:
    """Every attempt's output parts (each with its number), downloaded into ``work``; an attempt that never ran has none."""
    from ..api.errors import NotFoundError
    from ..output.progress import NullProgress
    from ..results.parts import Fetcher, ordered_parts
    from .datasets import wait_for_dataset

    outputs: list[list[Path]] = []
    for batch, number in attempts:
        ran = batch.num_processed > 0
        if not batch.output_dataset_id:
            if ran:
                raise _output_gone(batch, number)
            outputs.append([])
            continue
        try:
            dataset = wait_for_dataset(client, batch.output_dataset_id, timeout=600)
        except NotFoundError:
            if not ran:
                outputs.append([])
                continue
            raise _output_gone(batch, number) from None
        if dataset.validation_status != "validated":
            raise NotReady(
                f"the output of batch {batch.id} is {dataset.validation_status}: {dataset.validation_error or 'no reason given'}"
            )
        parts = ordered_parts(dataset.parts)
        folder = work / f"output-{number}"
        folder.mkdir()
        fetcher = Fetcher(
            parts, folder, http, options.concurrency, options.read_timeout or 60.0, NullProgress()
        )
        fetcher.start()
        try:
            outputs.append([fetcher.wait(i) for i in range(len(parts))])
        finally:
            fetcher.stop()
        reporter.debug(
            f"attempt {number}: {len(parts)} output parts of batch {batch.id} downloaded"
        )
    return outputs


def _output_gone(batch: Batch, number: int) -> ResultsExpired:
    return ResultsExpired(
        f"the output of batch {batch.id} (attempt {number}) is gone: cbatch cannot tell which of its records succeeded, "
        "so it sends nothing again"
    )


# -- upload and create --------------------------------------------------------------------------


def _steps(
    store: StateStore | None, chain: Chain, outcome: RetryOutcome, options: RetryOptions
) -> tuple[Part, AttemptSteps]:
    """The attempt as a part of its run (:mod:`.sending`), and where its steps are written: the attempts table."""
    from .sending import Part

    part = Part(
        run=run_of(chain.root, store), batch_name=outcome.batch_name, dataset_name=outcome.dataset_name,
        model=outcome.model, words=f"attempt {outcome.attempt}",
    )  # fmt: skip
    return part, AttemptSteps(store, chain, outcome, options.rule.describe(), options.still_wanted)


@dataclass
class AttemptSteps:
    """A retry attempt's steps, written to the state store's attempts (:class:`.sending.Steps`)."""

    store: StateStore | None
    chain: Chain
    outcome: RetryOutcome
    source: str
    """What the attempt sends again, in words (the rule): a resumed run takes an upload only for the same."""
    wanted: Callable[[], None] | None = None

    def still_wanted(self) -> None:
        if self.wanted is not None:
            self.wanted()

    def uploading(self) -> None:
        if self.store is not None:
            outcome = self.outcome
            assert outcome.selection is not None
            self.store.begin_attempt(
                root_id=self.chain.root.id, attempt=outcome.attempt, parent_id=self.chain.head.id,
                batch_name=outcome.batch_name, dataset_name=outcome.dataset_name, model=outcome.model,
                records=outcome.selection.records, source=self.source,
            )  # fmt: skip

    def uploaded(self, dataset_id: str) -> None:
        if self.store is not None:
            self.store.advance_attempt(
                self.chain.root.id, self.outcome.attempt, "uploaded", dataset_id=dataset_id
            )

    def creating(self) -> None:
        if self.store is not None:
            self.store.advance_attempt(self.chain.root.id, self.outcome.attempt, "creating")

    def created(self, batch: Batch) -> None:
        from .lineage import remember_batch

        if self.store is not None:
            root, number = self.chain.root.id, self.outcome.attempt
            remember_batch(
                self.store, batch, root_id=root, attempt=number, parent_id=self.chain.head.id
            )
            self.store.advance_attempt(root, number, "created", batch_id=batch.id)


def _upload(
    client: CohereClient,
    store: StateStore | None,
    chain: Chain,
    outcome: RetryOutcome,
    retry_input: Path,
    reporter: Reporter,
    options: RetryOptions,
) -> str:
    """The attempt's input dataset: one an earlier run uploaded for the same selection, else a new one."""
    from . import sending
    from .datasets import upload_file, validated

    assert outcome.selection is not None
    part, steps = _steps(store, chain, outcome, options)
    record = store.attempt(chain.root.id, outcome.attempt) if store is not None else None
    if (
        record is not None
        and record.records == outcome.selection.records
        and record.source == steps.source
    ):
        found = _earlier_upload(client, record, reporter)
        if found is not None:
            outcome.resumed = f"the retry input was uploaded by an earlier run, as dataset {found}"
            reporter.info(f"resumed: {outcome.resumed}")
            return found
    dataset_id = sending.upload(
        store, part, steps,
        lambda: upload_file(
            client, retry_input, reporter, name=outcome.dataset_name, keep_original_file=True,
            label="retry input", wait=False,
        ),
    )  # fmt: skip
    validated(client, dataset_id, reporter)  # recorded first: a run killed meanwhile takes it again
    return dataset_id


def _earlier_upload(client: CohereClient, record: AttemptRecord, reporter: Reporter) -> str | None:
    """The dataset an earlier run uploaded for this attempt, if it is still there and usable."""
    from .sending import dataset_named, usable

    dataset_id = record.dataset_id
    if dataset_id is None:  # killed while uploading: the answer never came; look for the name
        dataset_id = dataset_named(client, record.dataset_name, record.started_at)
        if dataset_id is None:
            return None
    return usable(client, [dataset_id], reporter)


def _create(
    client: CohereClient,
    store: StateStore | None,
    chain: Chain,
    outcome: RetryOutcome,
    reporter: Reporter,
    options: RetryOptions,
) -> Batch:
    from . import sending

    assert outcome.dataset_id is not None
    part, steps = _steps(store, chain, outcome, options)
    return sending.create(client, store, part, steps, outcome.dataset_id, reporter)


# -- rounds -------------------------------------------------------------------------------------


@dataclass
class RoundsOutcome:
    """How rounds of retries ended: the attempts made, what still fails, the exit code."""

    outcomes: list[RetryOutcome] = field(default_factory=list)
    still_failing: int | None = None
    """Records not succeeded after the last attempt ended (None: unknown, the rounds stopped early)."""
    exit_code: ExitCode = ExitCode.OK
    last: Batch | None = None
    stopped: str | None = None
    """Where the deadline stopped the rounds outside a watch (a pause), in words."""

    def succeeded_words(self) -> str | None:
        """``every record succeeded after 2 retries``, the line rounds that left nothing failing end on; None otherwise.

        Said by ``cbatch retry --watch`` and by ``Run.retry`` alike.
        """
        if self.last is None or self.exit_code != ExitCode.OK:
            return None
        made = len([o for o in self.outcomes if o.batch is not None])
        return f"every record succeeded{f' after {made} retr' + ('y' if made == 1 else 'ies') if made else ''}"


Watch = Callable[["Batch"], ExitCode]
"""Follows one batch to its end; returns the watch's exit code."""


def round_pause(round_number: int, pause: float) -> float:
    """The one pause rule: before round ``k`` (from the second), ``pause * 2**(k-2)``, at most :data:`MAX_PAUSE`.

    The same for a batch's rounds and a job's, said as it is done: the
    announced pause is the pause slept.
    """
    return min(MAX_PAUSE, pause * 2.0 ** max(0, round_number - 2))


def pause_before(
    round_number: int, rounds: int, pause: float, reporter: Reporter, deadline: float | None
) -> bool:
    """Announce and sleep the pause before ``round_number``; False when ``deadline`` falls first.

    A pause the deadline cuts short is slept to the deadline and not
    announced as a round: the caller stops with exit 10.
    """
    wait = round_pause(round_number, pause)
    if deadline is not None and deadline - time.monotonic() < wait:
        time.sleep(max(0.0, deadline - time.monotonic()))
        return False
    reporter.info(f"round {round_number} of {rounds} in {time_span(wait)}")
    time.sleep(wait)
    return True


@dataclass
class Lane:
    """One chain the rounds retry, as read at the start of a pass: a batch's own, or one part's of a job."""

    head: Batch
    """The chain's newest attempt."""
    made: int
    """Retries the chain holds on the API (attempts less the first)."""
    left: bool
    """Whether records may still be sent again once the head ended (a batch's is known only after a retry selects)."""
    resumable: bool = False
    """The head is an attempt this machine made and never saw end: retried (picked up) and watched as the round it was."""
    key: Any = None
    """What the caller needs to retry the lane (a job's part)."""


class Lanes(Protocol):
    """What differs between a batch's rounds and a job's, as data and hooks for :func:`run_rounds`."""

    done_on_stop: bool
    """Mark a round's attempts done when its watch stops early (a job's), or leave them to be picked up (a batch's)."""

    def read(self) -> list[Lane]:
        """The lanes as the API holds them now."""
        ...

    def folder(self) -> AbstractContextManager[Path | None]:
        """A round's work folder (a job's part inputs), removed after the round's retries."""
        ...

    def retry(self, lane: Lane, work: Path | None) -> RetryOutcome:
        """One lane's retry (or the attempt an earlier run made), with the caller's notices and hooks."""
        ...

    def ended(self, made: list[RetryOutcome]) -> None:
        """A round's retries were watched to their end: count what still fails."""
        ...


@dataclass
class RoundsStop:
    """Why rounds stopped before their end: a watch's or the deadline's exit code."""

    exit_code: ExitCode
    stopped: str | None = None
    """Where the deadline stopped the rounds outside a watch (a pause), in words."""


WatchBatches = Callable[[list["Batch"]], ExitCode]
"""Follows batches to their end in one watch; returns the watch's exit code."""


def run_rounds(
    lanes: Lanes,
    options: RetryOptions,
    reporter: Reporter,
    *,
    watch: WatchBatches,
    deadline: float | None,
    store: StateStore | None,
) -> RoundsStop | None:
    """The one round loop, for a batch's chain and a job's parts alike; None when the rounds ran to their end.

    Each pass reads the lanes afresh (so ``options.rounds`` counts the retries
    on the API, however often the command was interrupted and run again),
    watches every running head in one watch, then retries every lane due (one
    with records left and fewer than ``rounds`` retries, or one to pick up),
    after the pause before the round, :func:`round_pause`, numbered by the
    fewest retries of a lane due; and watches the new attempts together. A watch
    that ends otherwise than OK or FAILED (a timeout, a cancel, a signal) or the
    deadline falling in a pause stops the rounds with its code.
    """
    rounds = options.rounds
    while True:
        current = lanes.read()
        while running := [
            lane.head for lane in current if not lane.head.status.is_terminal and not lane.resumable
        ]:
            code = watch(running)
            if code not in (ExitCode.OK, ExitCode.BATCH_FAILED):
                return RoundsStop(code)
            current = lanes.read()
        due = [
            lane
            for lane in current
            if lane.resumable or (lane.left and lane.head.status.is_terminal and lane.made < rounds)
        ]
        if not due:
            return None
        number = 1 + min(lane.made for lane in due)
        resuming = any(lane.resumable for lane in due)
        if (
            number > 1
            and not resuming
            and not pause_before(number, rounds, options.pause, reporter, deadline)
        ):
            return RoundsStop(ExitCode.TIMEOUT, f"before round {number} of {rounds}")
        with lanes.folder() as work:
            made = [o for o in (lanes.retry(lane, work) for lane in due) if o.batch is not None]
        if not made:
            return None
        code = watch([o.batch for o in made if o.batch is not None])
        good = code in (ExitCode.OK, ExitCode.BATCH_FAILED)
        if good or lanes.done_on_stop:
            for outcome in made:
                mark_done(store, outcome)
        if not good:
            return RoundsStop(code)
        lanes.ended(made)


@dataclass
class _BatchLanes:
    """A batch's rounds: one lane, its chain, retried from the root."""

    client: CohereClient
    batch_id: str
    reporter: Reporter
    options: RetryOptions
    store: StateStore | None
    on_attempt: Callable[[RetryOutcome], None] | None
    result: RoundsOutcome = field(default_factory=RoundsOutcome)
    chain: Chain | None = None
    done_on_stop: bool = False
    _stopped: bool = False
    """The last round ended, or its retry found nothing to send: the lane is not due however many rounds are left."""

    def read(self) -> list[Lane]:
        from .lineage import resolve_chain

        if self._stopped:  # counted already: nothing more to read
            return []
        self.chain = chain = resolve_chain(
            self.client,
            self.client.get_batch(self.batch_id),
            store=self.store,
            reporter=self.reporter,
        )
        still = self.result.still_failing
        left = still is None or still > 0  # unknown until a retry selects
        return [Lane(chain.head, chain.head_number - 1, left, resumable(chain, self.store))]

    def folder(self) -> AbstractContextManager[Path | None]:
        from contextlib import nullcontext

        return nullcontext()

    def retry(self, lane: Lane, work: Path | None) -> RetryOutcome:
        assert self.chain is not None
        outcome = _attempt(self.client, self.chain, self.reporter, self.options, self.store)
        self.result.outcomes.append(outcome)
        if self.on_attempt is not None:
            self.on_attempt(outcome)
        if outcome.batch is None:  # nothing to send again
            self.result.still_failing = (
                outcome.selection.still_failing if outcome.selection is not None else 0
            )
            self.result.last = lane.head
            self._stopped = True
        return outcome

    def ended(self, made: list[RetryOutcome]) -> None:
        (outcome,) = made
        assert outcome.batch is not None
        result = self.result
        ended = self.client.get_batch(outcome.batch.id)
        before = (
            outcome.selection.still_failing
            if outcome.selection is not None
            else ended.num_records or 0
        )
        result.still_failing = max(0, before - ended.num_successful_records)
        result.last = ended
        last_round = outcome.attempt - 1 >= self.options.rounds
        if (result.still_failing == 0 or last_round) and outcome.schema is not None:
            # the API counts an invalid answer as a success: the outputs say what is left
            result.still_failing = _left_after(
                self.client, ended.id, self.reporter, self.options, self.store
            )
        if result.still_failing == 0 or last_round:
            self._stopped = True

    def finish(self) -> None:
        """The rounds ran to their end: say why nothing was sent, and what the chain still fails."""
        assert self.chain is not None
        result, chain = self.result, self.chain
        if result.last is not None and self._stopped:
            return
        made, rounds = chain.head_number - 1, self.options.rounds
        if not result.outcomes and made:
            self.reporter.info(
                f"batch {chain.root.id} has {made} retr{'y' if made == 1 else 'ies'} already: "
                f"--rounds {rounds} allows {rounds} in all, so nothing is sent again"
            )
        result.last = chain.head
        if result.still_failing is None:
            result.still_failing = _not_succeeded(chain)


def retry_rounds(
    client: CohereClient,
    batch_id: str,
    reporter: Reporter,
    options: RetryOptions,
    *,
    watch: Watch,
    spec: WatchSpec,
    store: StateStore | None,
    on_attempt: Callable[[RetryOutcome], None] | None = None,
) -> RoundsOutcome:
    """Retry what failed and watch it, again and again, until the chain holds ``options.rounds`` retries.

    The batch's side of :func:`run_rounds`: one lane, its chain.
    ``options.rounds`` counts the retries that exist (on the API, by their names), not
    those this run made: a run interrupted after its first round and run again
    makes the rest, never ``rounds`` more. A chain whose newest attempt still
    runs is watched first; one an earlier run of this command made and never
    saw end is watched as the round it was. The pause before round ``k`` (from
    the second) is :func:`round_pause`. Exit code: 12 when records still fail
    after the last round, 0 when none do; a canceled attempt (9), a timeout
    (10: the watch's, or ``spec``'s deadline, the command's one clock, falling
    in a pause) or a signal stop the
    rounds with their own code. An attempt that ends FAILED (every record it
    sent failed again) is a round like any other.
    """
    lanes = _BatchLanes(client, batch_id, reporter, options, store, on_attempt)
    result = lanes.result
    first = client.get_batch(batch_id)
    with run_lock(store, run_of(first, store), wait=options.wait_lock):
        stop = run_rounds(
            lanes, options, reporter, watch=lambda batches: watch(batches[0]),
            deadline=spec.deadline, store=store,
        )  # fmt: skip
    if stop is not None:
        result.exit_code, result.stopped = stop.exit_code, stop.stopped
        return result
    lanes.finish()
    result.exit_code = ExitCode.RECORDS_FAILED if result.still_failing else ExitCode.OK
    return result


def _left_after(
    client: CohereClient,
    batch_id: str,
    reporter: Reporter,
    options: RetryOptions,
    store: StateStore | None,
) -> int:
    """Records of a schema run still failing or invalid once ``batch_id`` ended: a selection, sending nothing."""
    from .lineage import resolve_chain

    chain = resolve_chain(client, client.get_batch(batch_id), store=store, reporter=reporter)
    quiet = replace(options, dry_run=True, listing=None, rule=Rule())
    outcome = _attempt(client, chain, _Quiet(reporter), quiet, store)
    return outcome.selection.still_failing if outcome.selection is not None else 0


class _Quiet:
    """A reporter that keeps warnings and drops the lines a count of what is left would print."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def info(self, message: str) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reporter, name)


def _not_succeeded(chain: Chain) -> int:
    """Records of the chain's root not succeeded in any attempt, from the batches' own counts."""
    root = chain.root
    succeeded = sum(b.num_successful_records for b in chain.attempts)
    return max(0, (root.num_records or 0) - succeeded)


def still_failing_error(count: int, batch_id: str) -> RecordsStillFailing:
    """The error (exit 12) of ``count`` records still failing after the last round, naming how to see them."""
    return RecordsStillFailing(
        f"{count:,} record{'' if count == 1 else 's'} still failing after the last round",
        hint=f"see them with: cbatch results {batch_id} --failed-only",
    )


# -- plumbing -----------------------------------------------------------------------------------


def run_of(batch: Batch, store: StateStore | None) -> str:
    """The run a batch belongs to, as its lock names it: its job (a job's part or a retry of one), else its root."""
    from .lineage import root_of

    lineage = naming.parse_batch_name(batch.name)[1]
    if lineage is not None and lineage.job_id is not None:
        return f"job {lineage.job_id}"
    return f"batch {root_of(batch, store)}"


def _workdir(store: StateStore | None) -> AbstractContextManager[Path]:
    """A private folder for the downloads and the scratch database, removed whatever happens (:mod:`..state.runlock`)."""
    return work_folder(store, "retry-")


@contextmanager
def _storage(options: RetryOptions) -> Iterator[httpx.Client]:
    from ..api.client import Timeouts, storage_client

    timeouts = Timeouts(read=options.read_timeout) if options.read_timeout else Timeouts()
    with storage_client(timeouts=timeouts, ca_bundle=options.ca_bundle) as http:
        yield http
