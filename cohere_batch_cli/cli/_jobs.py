"""Jobs from any command: ``jobs create``, ``create --file F --split``, ``jobs resume`` and ``jobs attach``.

The tasks (:mod:`cohere_batch_cli.tasks.jobs`) do the work; what lives here
is what only the command line knows: the split options, how a job is shown
(``-q`` its id, ``--json`` the job object, else its fields and a line a
part), and the one watch of every part (the batch watch, to stderr when
stdout holds the job).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import ExitCode, UsageError
from ._context import CliState

if TYPE_CHECKING:
    from ..engine import (
        JobOptions,
        JobRecord,
        JobView,
        KeyOptions,
        RetryOptions,
        StateStore,
        TableSpec,
        WatchSpec,
    )

SplitOpt = Annotated[bool, typer.Option("--split", help="With --file or --from: run an input of any size as a job of as many batches as the dataset limit needs ('cbatch jobs').")]  # fmt: skip
MaxRecordsOpt = Annotated[int | None, typer.Option("--max-records-per-batch", metavar="N", min=1, help="Run it as a job whose batches hold at most N records each.", show_default=False)]  # fmt: skip
MaxBytesOpt = Annotated[str | None, typer.Option("--max-bytes-per-batch", metavar="SIZE", help="Run it as a job whose batches' inputs hold at most SIZE each (800MB, 1.5GB; at most the dataset limit).", show_default=False)]  # fmt: skip
DeleteInputsOpt = Annotated[bool, typer.Option("--delete-inputs", help="Delete each part's input dataset once its batch ended, to make room in the organisation's storage for the next parts.")]  # fmt: skip


def wants_job(split: bool, max_records: int | None, max_bytes: str | None) -> bool:
    return split or max_records is not None or max_bytes is not None


def job_options(
    state: CliState,
    *,
    label: str,
    model: str | None,
    dataset_type: str | None,
    max_records: int | None,
    max_bytes: str | None,
    delete_inputs: bool = False,
    wait_lock: float | None = None,
    context_check: bool = True,
) -> JobOptions:
    """The job's options from the flags and the settings; a usage error for a size over the dataset limit.

    ``wait_lock`` lives here alone for a job command: the job's run lock is held
    by the command (:func:`hold_job`) and by the send (:func:`~cohere_batch_cli.tasks.jobs.send_parts`)
    with it; the retry rounds run under that same lock.
    """
    from ..engine import GuardOptions, JobOptions
    from ._estimating import count_options

    limits = state.settings().limits
    size = split_size(state, max_bytes)
    chosen = model or state.settings().model.value
    if not chosen:
        raise UsageError("--model is required (or set CBATCH_MODEL, or 'model' in your profile)")
    from ..engine import check_model

    check_model(state.client(), chosen, state.cache_scope(), state.out)  # before the split
    return JobOptions(
        label=label, model=chosen, max_bytes=size, max_records=max_records, dataset_type=dataset_type,
        delete_inputs=delete_inputs, org_max_bytes=limits.org_max_bytes, wait_lock=wait_lock or 0.0,
        guard=GuardOptions(count_options(state, None), check_context=context_check),
    )  # fmt: skip


def split_size(state: CliState, max_bytes: str | None) -> int:
    """The largest part, in bytes: ``--max-bytes-per-batch``, at most the dataset limit (its default)."""
    from ..engine import parse_size

    limit = state.settings().limits.dataset_max_bytes
    if max_bytes is None:
        return limit
    try:
        size = parse_size(max_bytes)
    except ValueError as exc:
        raise UsageError(f"--max-bytes-per-batch: {exc}") from None
    if size > limit:
        raise UsageError(
            f"--max-bytes-per-batch {max_bytes} is over the dataset limit of {limit:,} bytes",
            hint="leave it out to cut by the dataset limit",
        )
    return size


def dry_run_job(
    state: CliState,
    file: Path,
    options: JobOptions,
    *,
    table: TableSpec | None = None,
    ctx: typer.Context | None = None,
) -> None:
    """``jobs create --dry-run``, ``create --split --dry-run``: the check, the context, the split plan; nothing sent.

    With ``table`` (``--from``), ``file`` is the table: its rows are rendered
    into a temporary file (removed as the command ends, through ``ctx``) that
    is checked and planned as any job's input.
    """
    from ..engine import DryRun, dry_run_create

    if table is not None:
        from ._tables import render_table

        assert ctx is not None
        file = render_table(ctx, state, table, options.model).file
    run = DryRun(
        label=options.label, model=options.model, guard=options.guard,
        dataset_type=options.dataset_type, limits=state.settings().limits, split=(options.max_bytes, options.max_records),
        source_label=table.label if table is not None else None,
    )  # fmt: skip
    dry_run_create(state.client(), file, state.out, run)


def store_for_jobs() -> StateStore:
    """The state store: a job cannot be made or followed without it (its plan lives there)."""
    from ..engine import open_store

    return open_store()


def hold_job(store: StateStore, job_id: str, wait: float | None) -> AbstractContextManager[None]:
    """The job's run lock, held by a command for all it sends and watches (:mod:`..state.runlock`)."""
    from ..engine import job_run, run_lock

    return run_lock(store, job_run(job_id), wait=wait or 0.0)


def start_job(
    state: CliState,
    file: Path,
    options: JobOptions,
    *,
    watch: bool,
    retry: RetryOptions | None,
    json_out: bool,
    quiet: bool,
    spec: WatchSpec,
    table: TableSpec | None = None,
    ctx: typer.Context | None = None,
    key: KeyOptions | None = None,
) -> ExitCode:
    """Split ``file``, send every part and, with ``watch``, follow them as ``spec`` says (and retry as ``retry`` says).

    With ``table`` (``--from``), ``file`` is the table: its rows are rendered
    first into requests the job keeps in the state folder (each part, a
    resume and a retry read them again), and that file is what is split. The
    map of rows that reuse another's answer is kept under the job's id.
    """
    import dataclasses

    from ..engine import create_job, is_stdin

    if is_stdin(file):
        raise UsageError("a job reads its input more than once: give a file, not stdin")
    if retry is not None and retry.rounds and not watch:
        raise UsageError("--retry-failed needs --watch: a round waits for the parts before it")
    store = store_for_jobs()
    if table is not None:
        from ..engine import table_job
        from ._tables import render_table

        assert ctx is not None
        # record: the table's files fingerprinted, for results to write the table again.
        rendered = render_table(ctx, state, table, options.model, record=True, job=True)
        options = dataclasses.replace(options, input_label=table.label)
        job, file = table_job(state.client(), rendered, state.out, options, store, key)
    elif key is None:
        job = create_job(state.client(), file, state.out, options, store)
    else:  # the key's job, re-attached, or made with the key's run id (--idempotency-key)
        from ..engine import keyed_job

        job = keyed_job(state.client(), file, state.out, options, store, key)
    if key is not None:
        options = dataclasses.replace(options, label=job.label)
    if quiet:
        state.out.raw_line(job.id)  # at once: a script has the id even if a later step stops
    with hold_job(store, job.id, options.wait_lock):
        return carry_on(
            state, job, store, file, options, watch=watch, retry=retry, json_out=json_out, quiet=quiet, spec=spec
        )  # fmt: skip


def carry_on(
    state: CliState,
    job: JobRecord,
    store: StateStore,
    file: Path | None,
    options: JobOptions,
    *,
    watch: bool,
    retry: RetryOptions | None,
    json_out: bool,
    quiet: bool,
    spec: WatchSpec,
) -> ExitCode:
    """Upload what is missing, create what is missing, then watch (and retry, as ``retry`` says) when asked; show the job.

    ``spec``'s deadline bounds the whole run: once the parts are sent, a
    deadline already past stops before the watch with exit 10 and the command
    that carries on (each part sent is written down; nothing is lost).
    """
    from ..engine import input_of, job_view, send_parts

    client = state.client()
    path = input_of(job, file)
    from .. import WaitTimeout

    try:  # --timeout bounds the sending too
        send_parts(
            client, job, state.out, store, options, path=path, watching=spec if watch else None
        )
    except WaitTimeout as exc:  # the deadline fell between two parts: each step so far is recorded
        exc.hint = f"carry on with: {job_command(state, job.id, spec, retry)}"
        raise
    job = store.job(job.id) or job  # as the send left it: a split resumed there planned its parts
    code = ExitCode.OK
    if watch:
        code = follow_job(state, job, store, path, spec, retry=retry, to_stderr=json_out or quiet)
    view = job_view(client, job, store)
    if not quiet:
        show_job(state, view)
    return code


def job_command(
    state: CliState, job_id: str, spec: WatchSpec, retry: RetryOptions | None = None
) -> str:
    """The ``cbatch jobs resume JOB ...`` that carries on with this job's watch (and ``retry``'s rounds)."""
    import shlex

    from ._options import DEFAULT_PAUSE, format_duration
    from ._watching import global_args, watch_args

    args = [*global_args(state), "jobs", "resume", job_id]
    if retry is not None and retry.rounds:
        args += ["--retry-failed", str(retry.rounds)]
        if retry.pause != DEFAULT_PAUSE:
            args += ["--pause", format_duration(retry.pause)]
    return shlex.join(args + watch_args(spec, output=False) + (["--plain"] if spec.plain else []))


def job_results_command(state: CliState, job_id: str) -> str:
    """The ``cbatch jobs results JOB`` that writes the job's one file, across parts and attempts."""
    import shlex

    from ._watching import global_args

    return shlex.join([*global_args(state), "jobs", "results", job_id, "-o", "results.jsonl"])


def follow_job(
    state: CliState,
    job: JobRecord,
    store: StateStore,
    path: Path | None,
    spec: WatchSpec,
    *,
    retry: RetryOptions | None = None,
    to_stderr: bool = False,
) -> ExitCode:
    """Watch every part still running in one watch (one list request a round), retrying as ``retry`` says.

    The watch is the one of every command (:func:`._watching.run_watch`),
    with ``spec`` whole. Exit codes as ``cbatch watch`` for the job as a
    whole, then --no-exit-status; with rounds, 12 when records still fail
    after the last one (0 when none do).
    """
    from ..engine import BatchDone, JobProgress, combine, job_view, retry_job
    from ._watching import run_watch

    rounds = retry.rounds if retry is not None else 0
    resume = job_command(state, job.id, spec, retry)
    results = job_results_command(state, job.id)  # every part's ends point at the job's one file
    client = state.client()
    known: list[JobView] = []
    each = spec.strict()  # each watch judged as it ended; --no-exit-status applies to the job

    def watch_many(ids: list[str]) -> ExitCode:
        """The batch watch over every part at once, and one line for the job each poll parts end in."""
        progress = JobProgress(known.pop() if known else job_view(client, job, store))

        def ended(events: list[BatchDone]) -> None:
            line = progress.batches_ended([event.batch for event in events])
            if spec.json_lines and not to_stderr:
                state.out.json_line({"kind": "job_progress", "job_id": job.id, "parts_ended": len(progress.ended),
                                     "parts": progress.parts, "succeeded": progress.succeeded, "records": progress.total})  # fmt: skip
            else:
                state.out.info(line)

        return run_watch(
            state, ids, each, to_stderr=to_stderr, resume=resume, on_ends=ended, results=results,
            final=not rounds,  # a round of several: the command ends with its own code
        )  # fmt: skip

    if retry is not None and rounds:
        result = retry_job(
            client, job, state.out, store, retry, watch=watch_many, spec=spec, path=path,
            on_attempt=lambda batch: state.out.info(f"created batch {batch.id}: {batch.name}"),
        )  # fmt: skip
        code = result.exit_code
        if code == ExitCode.TIMEOUT and result.stopped is not None:
            state.out.info(
                f"--timeout ran out {result.stopped}; nothing was cancelled; go on with: {resume}"
            )
        if code == ExitCode.RECORDS_FAILED:
            state.out.info(
                f"{result.left:,} record{'' if result.left == 1 else 's'} of job {job.id} still failing after the last round"
            )
    else:
        view = job_view(client, job, store)
        known.append(view)
        running = [
            p.head.id for p in view.parts if p.head is not None and not p.head.status.is_terminal
        ]
        code = watch_many(running) if running else ExitCode.OK
    view = job_view(client, job, store)
    if code in (ExitCode.OK, ExitCode.BATCH_FAILED, ExitCode.BATCH_CANCELED):
        code = combine([code, view.exit_code])
        if code == ExitCode.NEVER_RAN:
            state.out.info(never_ran_words(view, job_command(state, job.id, spec)))
    if all(p.ended for p in view.parts) and view.parts and job.step == "split":
        store.set_job_step(job.id, "done")
    state.out.info(summary_line(view))
    return spec.forgive(code)


def never_ran_words(view: JobView, carry_on: str) -> str:
    """Why a job exits 14: killed before it had parts, or parts that were never sent."""
    unsent = [p.record.part for p in view.parts if p.head is None]
    if not view.parts:
        return f"job {view.job.id} has no parts: it was stopped while splitting, and nothing ran; carry on with: {carry_on}"
    return (
        f"job {view.job.id}: {len(unsent)} of {len(view.parts)} parts were never sent "
        f"(part{'' if len(unsent) == 1 else 's'} {', '.join(map(str, unsent))}); carry on with: {carry_on}"
    )


def summary_line(view: JobView) -> str:
    parts = len(view.parts)
    text = (
        f"job {view.job.id} {view.status}: {view.processed:,}/{view.records:,} records "
        f"({view.succeeded:,} ok, {view.failed:,} failed) in {parts} part{'' if parts == 1 else 's'}"
    )
    if view.status in ("completed", "failed", "canceled"):
        text += f"; get results: cbatch jobs results {view.job.id} -o results.jsonl"
    return text


def show_job(state: CliState, view: JobView) -> None:
    """The job: its object (``--json``), its id (``-q``), or its fields and a line a part."""
    out = state.out
    job = view.job
    from ..engine import human_bytes

    fields = [
        ("ID", job.id),
        ("Name", job.label),
        ("Status", view.status),
        ("Model", job.model),
        (
            "Input",
            f"{job.path or '-'} ({human_bytes(job.size)})"
            if job.size is not None
            else job.path or "-",
        ),
        ("Records", f"{view.records:,}"),
        ("Succeeded", f"{view.succeeded:,}"),
        ("Failed", f"{view.failed:,}"),
        ("Parts", str(len(view.parts))),
    ]
    out.item(view.as_json(), job.id, fields)
    if out.for_machines:
        return
    from ..output.batch_views import JOB_PART_COLUMNS, job_part_line

    out.rows(view.parts, columns=JOB_PART_COLUMNS, plain=job_part_line)


# -- what `cbatch jobs X JOB` and `cbatch X JOB` (a run id) share --------------------------------


def watch_run(state: CliState, job: JobRecord, store: StateStore, spec: WatchSpec) -> ExitCode:
    """``jobs watch JOB`` and ``watch JOB``: follow every part; with JSON lines, the job object last.

    ``spec.fail_on_records`` (``watch --fail-on-records``) makes a job whose
    parts ended with records that failed or never came back exit 12, and a
    table job made with ``--schema`` whose answers are left invalid after
    every attempt (read from the parts' outputs: :func:`~cohere_batch_cli.tasks.jobs.job_left`).
    """
    from ..engine import job_left, job_view

    code = follow_job(state, job, store, None, spec)
    view = job_view(state.client(), job, store) if spec.json_lines or spec.fail_on_records else None
    if view is not None and spec.fail_on_records and code == ExitCode.OK:
        from ..engine import RetryOptions, job_schema

        schema = job_schema(job.id, state.out)
        options = RetryOptions(read_timeout=state.timeout, ca_bundle=state.ca_bundle)
        left = job_left(state.client(), view, schema, state.out, store, options)
        if left:
            what = (
                "failed, have no result or break the job's schema"
                if schema
                else "failed or have no result"
            )
            state.out.info(f"job {job.id}: {left:,} of {view.records:,} records {what}")
        code = spec.forgive(ExitCode.RECORDS_FAILED if left else code)
    if view is not None and spec.json_lines:
        state.out.json_line({"kind": "job", **view.as_json()})
    return code


def cancel_run(state: CliState, job: JobRecord, store: StateStore) -> list[tuple[str, str | None]]:
    """``jobs cancel JOB`` and ``cancel JOB``: no part sent after this, every running part canceled.

    Says each batch's outcome and the job's; returns (batch id, refusal or None) a batch asked.
    """
    from ..engine import cancel_job

    view, outcomes = cancel_job(state.client(), job, store)
    refused = 0
    for batch_id, error in outcomes:
        if error is None:
            state.out.info(f"batch {batch_id}: cancel requested")
        else:
            refused += 1
            state.out.warn(f"batch {batch_id}: {error}")
    state.out.info(
        f"job {job.id} canceled: {len(outcomes) - refused} of {len(view.parts)} parts were still running"
    )
    return outcomes


def retry_run(
    state: CliState,
    job: JobRecord,
    store: StateStore,
    spec: WatchSpec,
    *,
    file: Path | None,
    retry: RetryOptions,
    quiet: bool,
) -> ExitCode:
    """``jobs retry JOB`` and ``retry JOB``: send again what failed in every part, watched, for ``retry.rounds``."""
    from ..engine import input_of, job_view

    with hold_job(store, job.id, retry.wait_lock):
        code = follow_job(
            state, job, store, input_of(job, file), spec, retry=retry, to_stderr=quiet
        )
    if spec.json_lines:
        state.out.json_line({"kind": "job", **job_view(state.client(), job, store).as_json()})
    return code


def dry_run_job_retry(
    state: CliState,
    job: JobRecord,
    store: StateStore,
    *,
    file: Path | None,
    retry: RetryOptions,
) -> None:
    """``jobs retry JOB --dry-run`` and ``retry JOB --dry-run``: part by part, what would be sent again and why."""
    from ..engine import dry_run_retry
    from ._retrying import show_dry_run

    dry_run_retry(
        state.client(), job, store, file, retry, state.out,
        lambda batch_id, options: show_dry_run(state, batch_id, options, store),
    )  # fmt: skip
