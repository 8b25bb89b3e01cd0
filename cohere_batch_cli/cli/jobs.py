"""``cbatch jobs``: one input of any size, run as several batches and followed as one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import ExitCode
from ._context import get_state
from ._errors import command_errors
from ._jobs import DeleteInputsOpt, MaxBytesOpt, MaxRecordsOpt
from ._lazy import function_group
from ._options import (
    DEFAULT_PAUSE,
    DryRunOpt,
    FailOnRecordsOpt,
    IdempotencyKeyOpt,
    InvalidOpt,
    JsonlOpt,
    JsonOpt,
    MatchOpt,
    MissingOpt,
    PauseOpt,
    QuietOpt,
    WaitLockOpt,
    hand_over,
    key_options,
    parse_duration,
    refuse_watch_options,
    results_options,
    retry_options,
    watch_options,
)
from ._tables import table_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..engine import (
        JobOptions,
        JobRecord,
        ResultsSpec,
        RetryOptions,
        StateStore,
        TableSpec,
        WatchSpec,
    )
    from ._context import CliState

_COMMANDS: dict[str, Callable[..., None]] = {}


def _command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def record(function: Callable[..., None]) -> Callable[..., None]:
        _COMMANDS[name] = function
        return function

    return record


jobs_app = typer.Typer(
    cls=function_group(_COMMANDS),
    help="""One input of any size, run as several batches and followed as one.

A job splits a JSONL file at record boundaries into parts that fit the
service's limits (--max-records-per-batch, --max-bytes-per-batch, else the
dataset limit), with custom_ids unique across the whole job, uploads each
part and creates its batch, named 'NAME [job JOB part N]', so any machine can
find them. Every step is written to the local state store before it is taken:
'jobs resume' carries on after any interruption without doubling a part.

Examples:

  cbatch jobs create requests.jsonl --model command-r-08-2024 --watch

  cbatch jobs watch k3v9x0q2ma

  cbatch jobs results k3v9x0q2ma -o results.jsonl
""",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JobIdArg = Annotated[
    str,
    typer.Argument(
        help="The job id (or a unique start of it), as 'cbatch jobs list' shows it.",
        metavar="JOB_ID",
    ),
]
FileArg = Annotated[
    Path | None,
    typer.Argument(
        help="A JSONL file of requests, of any size (or --from TABLE).",
        metavar="[FILE]",
        dir_okay=False,
        show_default=False,
    ),
]
FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="The job's input file (default: the file it was made from, while unchanged).", dir_okay=False, show_default=False)]  # fmt: skip
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Model to run every request with (default: CBATCH_MODEL, else the profile's model).", show_default=False)]  # fmt: skip
RetryFailedOpt = Annotated[int, typer.Option("--retry-failed", metavar="N", min=0, max=100, help="With --watch: retry what failed in every part, up to N rounds; exit 12 if records still fail.")]  # fmt: skip
WatchFlag = Annotated[bool, typer.Option("--watch/--no-watch", "-w", help="Follow every part to its end (exit codes as 'cbatch watch', for the job as a whole).")]  # fmt: skip


def _job(store: StateStore, job_id: str) -> JobRecord:
    from ..engine import find_job

    return find_job(store, job_id)


def _options(
    state: CliState, job: JobRecord, delete_inputs: bool = False, wait_lock: float | None = None
) -> JobOptions:
    from ..engine import GuardOptions, JobOptions
    from ._estimating import count_options

    return JobOptions(
        label=job.label, model=job.model, max_bytes=job.max_bytes or state.settings().limits.dataset_max_bytes,
        max_records=job.max_records, dataset_type=job.dataset_type, delete_inputs=delete_inputs,
        org_max_bytes=state.settings().limits.org_max_bytes, wait_lock=wait_lock or 0.0,
        guard=GuardOptions(count_options(state, None)),  # a split resumed is checked as a new one
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs", rich_help_panel="Batches")


@_command("create")
@command_errors
@watch_options
@table_options
def create(
    ctx: typer.Context,
    spec: WatchSpec,
    table: TableSpec | None,
    file: FileArg = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", "-n", help="Name of the job's batches (default: from the file name)."
        ),
    ] = None,
    model: ModelOpt = None,
    dataset_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="batch-chat-v2-input or batch-embed-v2-input (inferred when absent)."
        ),
    ] = None,
    max_records: MaxRecordsOpt = None,
    max_bytes: MaxBytesOpt = None,
    delete_inputs: DeleteInputsOpt = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Follow every part to its end (exit codes as 'cbatch watch', for the job as a whole).",
        ),
    ] = False,
    retry_failed: RetryFailedOpt = 0,
    match: MatchOpt = None,
    missing: MissingOpt = True,
    pause: PauseOpt = DEFAULT_PAUSE,
    wait_lock: WaitLockOpt = None,
    idempotency_key: IdempotencyKeyOpt = None,
    context_check: Annotated[
        bool,
        typer.Option(
            "--context-check/--no-context-check",
            help="Refuse records that cannot fit the model's context, in the split's own pass (as 'cbatch create --file').",
        ),
    ] = True,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Split a file (or a table) of any size into batches, upload and create each: one job.

    The file is checked whole first (nothing is sent if a line is wrong or
    a record cannot fit the model's context, as with 'cbatch create --file';
    custom_ids must be unique across the job), then cut at record
    boundaries into parts of at most --max-records-per-batch records and
    --max-bytes-per-batch bytes (default: the dataset limit). Parts that do
    not fit in the organisation's storage yet wait for earlier parts to end
    (--delete-inputs deletes their inputs then); when one cannot fit even so,
    the job stops and says so. -q prints the job id, --json the job object.
    --dry-run checks the file and its records' context and prints the split
    plan, part by part, and sends nothing (no job is made).

    With --from TABLE (and --prompt or --embed, as 'cbatch create --from'),
    the table's rows are rendered into requests first; the job keeps them in
    the state folder (each part, 'jobs resume' and 'jobs retry' read them
    again) until 'jobs prune' forgets the job, and splits them as a file.

    With --idempotency-key KEY, the job's id is derived from KEY: the same
    command run again (a CI step retried, on this machine or another) gives
    back that job and sends what it has not sent; another input or split
    under the same KEY is refused (exit 17), naming what differs.

    Examples:

      cbatch jobs create requests.jsonl --model command-r-08-2024 --watch

      cbatch jobs create big.jsonl --max-records-per-batch 50000 --retry-failed 3 --watch -q

      cbatch jobs create --from reviews.parquet --prompt 'Classify: {{ text }}' --model command-r-08-2024 --watch
    """
    from .. import UsageError
    from ..engine import default_name
    from ._jobs import dry_run_job, job_options, start_job

    state = get_state(ctx)
    state.out.set_mode(json_out=json_out, quiet=quiet)
    if (file is None) == (table is None):
        raise UsageError("give exactly one of FILE or --from TABLE")
    if dry_run and watch:
        raise UsageError("--dry-run sends nothing: there is nothing to --watch")
    if (
        retry_failed and not watch
    ):  # said before a dry run too, which would otherwise take it and do nothing
        raise UsageError("--retry-failed needs --watch: a round waits for the parts before it")
    if not watch:
        refuse_watch_options(spec, "add --watch")
    if table is not None:
        hand_over("table", "jobs create", table)
        dataset_type = table.dataset_type
    source = file if table is None else table.table
    assert source is not None
    options = job_options(
        state, label=name or default_name(source), model=model, dataset_type=dataset_type, max_records=max_records,
        max_bytes=max_bytes, delete_inputs=delete_inputs, wait_lock=wait_lock,
        context_check=context_check,
    )  # fmt: skip
    if dry_run:
        dry_run_job(state, source, options, table=table, ctx=ctx)
        return
    if watch:
        hand_over("watch", "jobs create --watch", spec)
    retry = retry_options(
        state, rounds=retry_failed, pause=pause, match=match, missing=missing, wait_lock=None,  # JobOptions holds --wait-lock
        rounds_flag="--retry-failed",
    )  # fmt: skip
    hand_over("values", "jobs create", (options, retry))
    code = start_job(
        state, source, options, watch=watch, retry=retry, json_out=json_out, quiet=quiet, spec=spec,
        table=table, ctx=ctx, key=key_options(idempotency_key, table),
    )  # fmt: skip
    raise typer.Exit(code)


@_command("list")
@command_errors
def list_jobs(
    ctx: typer.Context, json_out: JsonOpt = False, jsonl: JsonlOpt = False, quiet: QuietOpt = False
) -> None:
    """List the jobs recorded on this machine, newest first (from the state store alone: no request).

    STATUS uses the words of 'cbatch jobs get', as far as this machine knows
    them: splitting, sending, running, canceled, and ended once a watch saw
    every part end ('jobs get' asks the API how: completed or failed).
    """
    from ..engine import record_json, recorded_status, store_path
    from ..output.printer import Column
    from ._jobs import store_for_jobs

    state = get_state(ctx)
    out = state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet)
    # No file: no jobs (and none made by a listing); a file that cannot be read is its error.
    store = store_for_jobs() if store_path().exists() else None
    jobs = store.jobs() if store is not None else []
    # the words of 'jobs get', as far as the store knows them (no request)
    status = {j.id: recorded_status(j, store) for j in jobs} if store is not None else {}
    out.items(
        jobs,
        columns=(
            Column("ID", lambda j: j.id, whole=True, priority=0),
            Column("NAME", lambda j: j.label),
            Column("STATUS", lambda j: status[j.id], whole=True),
            Column("MODEL", lambda j: j.model, priority=2),
            Column("PARTS", lambda j: str(j.parts or 0), justify="right"),
            Column("RECORDS", lambda j: f"{j.records or 0:,}", justify="right"),
            Column("CREATED", lambda j: record_json(j)["created_at"], priority=3),
        ),
        raw=lambda j: {**record_json(j), "status": status[j.id]},
        item_id=lambda j: j.id,
        csv_fields=("id", "name", "status", "step", "model", "parts", "records", "created_at"),
        empty="no jobs recorded on this machine",
    )


@_command("get")
@command_errors
def get(ctx: typer.Context, job_id: JobIdArg, json_out: JsonOpt = False) -> None:
    """Show a job and every part: dataset, batch, status, counts, attempts (--json: everything, for scripts)."""
    from ..engine import job_view
    from ._jobs import show_job, store_for_jobs

    state = get_state(ctx)
    state.out.set_mode(json_out=json_out)
    store = store_for_jobs()
    show_job(state, job_view(state.client(), _job(store, job_id), store))


@_command("watch")
@command_errors
@watch_options
def watch(
    ctx: typer.Context,
    spec: WatchSpec,
    job_id: JobIdArg,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="The watch's events, one JSON object a line, then the job object on one line.",
        ),
    ] = False,
    fail_on_records: FailOnRecordsOpt = False,
) -> None:
    """Follow every part of a job until each has ended, in one watch (one list request a round).

    Exit codes as 'cbatch watch', for the job as a whole: 0 when every part
    completed, 8 when one failed, 9 when one was canceled, 10 on --timeout,
    14 when the job never ran (stopped while splitting) or has parts never
    sent ('cbatch jobs resume' sends them), 12 with --fail-on-records when
    records are left failed or with no result after every attempt (for a
    table job made with --schema, an answer that breaks the schema too).
    """
    import dataclasses

    from ._jobs import store_for_jobs, watch_run

    state = get_state(ctx)
    state.out.set_mode(jsonl=json_out)
    spec = dataclasses.replace(spec, json_lines=json_out, fail_on_records=fail_on_records)
    hand_over("watch", "jobs watch", spec)
    store = store_for_jobs()
    raise typer.Exit(watch_run(state, _job(store, job_id), store, spec))


@_command("results")
@command_errors
@results_options
def results(ctx: typer.Context, spec: ResultsSpec, job_id: JobIdArg) -> None:
    """Write one file of a job's results: one record per custom_id, across every part and retry attempt.

    Records come part after part, each in the order the service wrote them
    (--input-order: the input file's); each has the 'attempt' it came from (a
    column in CSV and Parquet). The options are those of 'cbatch results',
    which writes the same file for a job id.

    Examples:

      cbatch jobs results k3v9x0q2ma -o results.jsonl

      cbatch jobs results k3v9x0q2ma -o results.parquet --delete-outputs
    """
    from ._jobs import store_for_jobs
    from ._results import write_run

    hand_over("results", "jobs results", spec)
    store = store_for_jobs()
    write_run(get_state(ctx), (_job(store, job_id), store), spec)


@_command("cancel")
@command_errors
def cancel(ctx: typer.Context, job_id: JobIdArg) -> None:
    """Cancel a job: every part still running is canceled, and no part is sent after this."""
    from ._jobs import cancel_run, store_for_jobs

    state = get_state(ctx)
    store = store_for_jobs()
    outcomes = cancel_run(state, _job(store, job_id), store)
    if any(error is not None for _, error in outcomes):
        raise typer.Exit(ExitCode.REFUSED)


def _resume_like(
    ctx: typer.Context,
    job: JobRecord,
    store: StateStore,
    file: Path | None,
    options: JobOptions,
    *,
    watch: bool,
    retry: RetryOptions,
    spec: WatchSpec,
    json_out: bool,
    quiet: bool,
) -> None:
    from ._jobs import carry_on, hold_job

    state = get_state(ctx)
    if quiet:
        state.out.raw_line(job.id)
    with hold_job(store, job.id, options.wait_lock):
        code = carry_on(
            state, store.job(job.id) or job, store, file, options,
            watch=watch or bool(retry.rounds), retry=retry, json_out=json_out, quiet=quiet, spec=spec,
        )  # fmt: skip
    raise typer.Exit(code)


@_command("resume")
@command_errors
@watch_options
def resume(
    ctx: typer.Context,
    spec: WatchSpec,
    job_id: JobIdArg,
    file: FileOpt = None,
    watch: WatchFlag = True,
    retry_failed: RetryFailedOpt = 0,
    match: MatchOpt = None,
    missing: MissingOpt = True,
    pause: PauseOpt = DEFAULT_PAUSE,
    delete_inputs: DeleteInputsOpt = False,
    wait_lock: WaitLockOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Carry on with a job after any interruption: upload what is missing, create what is missing, watch the rest.

    Before it uploads or creates a part, it looks for it on the API by its
    name, so a part an earlier run (or another machine) made is never made
    twice, and it says where it resumed.
    """
    from ._jobs import store_for_jobs

    state = get_state(ctx)
    state.out.set_mode(json_out=json_out, quiet=quiet)
    if not (watch or retry_failed):
        refuse_watch_options(spec, "leave out --no-watch")
    else:
        hand_over("watch", "jobs resume", spec)
    store = store_for_jobs()
    retry = retry_options(
        state, rounds=retry_failed, pause=pause, match=match, missing=missing, wait_lock=None,  # JobOptions holds --wait-lock
        rounds_flag="--retry-failed",
    )  # fmt: skip
    job = _job(store, job_id)
    options = _options(state, job, delete_inputs, wait_lock)
    hand_over("values", "jobs resume", (options, retry))
    _resume_like(
        ctx, job, store, file, options, watch=watch, retry=retry, spec=spec, json_out=json_out, quiet=quiet
    )  # fmt: skip


@_command("attach")
@command_errors
@watch_options
def attach(
    ctx: typer.Context,
    spec: WatchSpec,
    job_id: Annotated[
        str, typer.Argument(help="The id of a job another machine started.", metavar="JOB_ID")
    ],
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            "-f",
            help="The job's input file (the same bytes it was made from).",
            dir_okay=False,
        ),
    ],
    model: ModelOpt = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            "-n",
            help="The job's name, when none of its batches exists yet (default: from the file name).",
        ),
    ] = None,
    max_records: MaxRecordsOpt = None,
    max_bytes: MaxBytesOpt = None,
    dataset_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="batch-chat-v2-input or batch-embed-v2-input (inferred when absent)."
        ),
    ] = None,
    watch: WatchFlag = True,
    retry_failed: RetryFailedOpt = 0,
    pause: PauseOpt = DEFAULT_PAUSE,
    wait_lock: WaitLockOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Pick up a job another machine started: rebuild it from the API's names and the input file, then resume.

    Give the file and the split options the job was made with: the file is
    split again and each part the API shows is checked against the plan.

    Examples:

      cbatch jobs attach k3v9x0q2ma --file requests.jsonl

      cbatch jobs attach k3v9x0q2ma --file requests.jsonl --max-records-per-batch 50000
    """
    from ..engine import JobOptions, attach_job
    from ._jobs import hold_job, split_size, store_for_jobs

    state = get_state(ctx)
    state.out.set_mode(json_out=json_out, quiet=quiet)
    if not (watch or retry_failed):
        refuse_watch_options(spec, "leave out --no-watch")
    else:
        hand_over("watch", "jobs attach", spec)
    options = JobOptions(
        label=name or "", model=model or state.settings().model.value or "", max_bytes=split_size(state, max_bytes),
        max_records=max_records, dataset_type=dataset_type, wait_lock=wait_lock or 0.0,
    )  # fmt: skip
    retry = retry_options(
        state, rounds=retry_failed, pause=pause, match=None, missing=True, wait_lock=None,  # JobOptions holds --wait-lock
        rounds_flag="--retry-failed",
    )  # fmt: skip
    hand_over("values", "jobs attach", (options, retry))
    store = store_for_jobs()
    with hold_job(store, job_id, options.wait_lock):
        job = attach_job(state.client(), job_id, file, state.out, store, options)
        _resume_like(
            ctx, job, store, file, _options(state, job, wait_lock=options.wait_lock), watch=watch, retry=retry,
            spec=spec, json_out=json_out, quiet=quiet,
        )  # fmt: skip


@_command("retry")
@command_errors
@watch_options
def retry(
    ctx: typer.Context,
    spec: WatchSpec,
    job_id: JobIdArg,
    rounds: Annotated[
        int,
        typer.Option(
            "--rounds", min=1, max=100, help="Retry what still fails, up to this many rounds."
        ),
    ] = 1,
    match: MatchOpt = None,
    missing: MissingOpt = True,
    invalid: InvalidOpt = False,
    pause: PauseOpt = DEFAULT_PAUSE,
    file: FileOpt = None,
    wait_lock: WaitLockOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Say, part by part, what would be sent again and why (as 'cbatch retry --dry-run'); send nothing.",
        ),
    ] = False,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="The watch's events, one JSON object a line, then the job object on one line.",
        ),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Send again what failed in every part of a job, watch the retries together, for --rounds.

    Each part's retry is a batch named 'NAME [job JOB part N retry K]' (as
    'cbatch retry' makes them); exit 12 when records still fail after the
    last round, 0 when none do. A table job made with --schema counts an
    answer that breaks the schema as failed: it is sent again with the
    failures, and --invalid sends only those answers again. --dry-run
    lists, part by part, each record that would be sent again and why, and
    sends nothing.

    Examples:

      cbatch jobs retry k3v9x0q2ma --rounds 3

      cbatch jobs retry k3v9x0q2ma --invalid --dry-run
    """
    import dataclasses

    from ._jobs import dry_run_job_retry, retry_run, store_for_jobs

    state = get_state(ctx)
    state.out.set_mode(jsonl=json_out, quiet=quiet)  # --dry-run --json: each record on a line
    retry = retry_options(
        state, rounds=rounds, pause=pause, match=match, missing=missing, wait_lock=wait_lock,
        invalid=invalid,
    )  # fmt: skip
    if dry_run:
        refuse_watch_options(spec, "leave out --dry-run")
        store = store_for_jobs()
        dry_run_job_retry(state, _job(store, job_id), store, file=file, retry=retry)
        return
    spec = dataclasses.replace(spec, json_lines=json_out)
    hand_over("watch", "jobs retry", spec)
    hand_over("values", "jobs retry", (retry,))
    store = store_for_jobs()
    code = retry_run(state, _job(store, job_id), store, spec, file=file, retry=retry, quiet=quiet)
    raise typer.Exit(code)


@_command("prune")
@command_errors
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            parser=parse_duration,
            metavar="DURATION",
            help="Forget jobs that ended, and remove table runs' maps whose table was written, at least this long ago [default: 30d, the datasets' lifetime].",
            show_default=False,
        ),
    ] = 30 * 86_400.0,
    all_: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Forget jobs in any step, not only those that ended or were canceled; remove table runs' maps whose table was never written too.",
        ),
    ] = False,
) -> None:
    """Forget old jobs on this machine, and remove table runs' maps that are done with (the state store only: batches and datasets on the API are left alone).

    A table run (create --from) keeps a map of the rows it did not send, for
    results to give each its answer; it is removed once results wrote the
    run's table at least --older-than ago.
    """
    from ..engine import counted, prune_jobs, prune_maps
    from ._jobs import store_for_jobs

    state = get_state(ctx)
    store = store_for_jobs()
    gone = prune_jobs(store, older_than=older_than, everything=all_)
    for job_id in gone:
        state.out.raw_line(job_id)
    state.out.info(f"forgot {len(gone)} job{'' if len(gone) == 1 else 's'}")
    maps = prune_maps(store, older_than=older_than, everything=all_)
    if maps:
        state.out.info(f"removed the row maps of {counted(len(maps), 'table run')}")
