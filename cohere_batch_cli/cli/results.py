"""``cbatch results``: a finished batch's output, decoded from Avro into JSONL, CSV or Parquet."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..exit_codes import ExitCode
from ._context import get_state
from ._errors import command_errors
from ._options import RunIdArg, ids_from_stdin

if TYPE_CHECKING:
    from ..state.store import JobRecord, StateStore
    from ..tasks.fetching import FetchOptions
    from ._context import CliState

_STOPPED = (ExitCode.INTERRUPTED, ExitCode.TERMINATED, ExitCode.HANGUP, ExitCode.TIMEOUT)
"""How a --wait that did not see the end stops: the results are not fetched."""


class ResultsFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


def register(app: typer.Typer) -> None:
    @app.command("results", rich_help_panel="Results")
    @command_errors
    def results(
        ctx: typer.Context,
        batch_id: RunIdArg,
        output: Annotated[
            str | None,
            typer.Option(
                "--output",
                "-o",
                help="File to write, or - for stdout [default: BATCH_ID.FORMAT]. A name ending .jsonl, .csv or .parquet picks the format.",
                show_default=False,
            ),
        ] = None,
        fmt: Annotated[
            ResultsFormat | None,
            typer.Option(
                "--format",
                "-F",
                help="jsonl (one record a line, custom_id first), csv or parquet (one row a record, typed columns; needs the [parquet] extra) [default: from -o's name, else jsonl].",
                show_default=False,
            ),
        ] = None,
        columns: Annotated[
            list[str] | None,
            typer.Option(
                "--column",
                metavar="NAME=EXPR",
                help="csv, parquet: add a column, a JMESPath expression over the record (custom_id, status, error, body, request), e.g. model=body.id. Repeatable.",
                show_default=False,
            ),
        ] = None,
        body: Annotated[
            bool,
            typer.Option(
                "--body", help="csv, parquet: add the whole response as a body column (JSON text)."
            ),
        ] = False,
        failed_only: Annotated[
            bool, typer.Option("--failed-only", help="Only the records that failed.")
        ] = False,
        join: Annotated[
            Path | None,
            typer.Option(
                "--join",
                help="The input JSONL: put each request beside its result.",
                dir_okay=False,
                exists=True,
            ),
        ] = None,
        wait: Annotated[
            bool,
            typer.Option("--wait", help="If the batch is still running, wait for it to end first."),
        ] = False,
        concurrency: Annotated[
            int, typer.Option("--concurrency", min=1, max=16, help="Parts fetched at once.")
        ] = 4,
        own: Annotated[
            bool,
            typer.Option(
                "--own",
                help="A batch with retries: only this batch's own records, not merged with its other attempts.",
            ),
        ] = False,
    ) -> None:
        """Download a finished batch's results as JSONL, CSV or Parquet.

        Parts are fetched (several at once) from their pre-signed links
        without the API key, decoded in order, and written under a temporary
        name that is renamed when complete: an interrupted run leaves no
        partial file, and a second run writes the same bytes. Links that
        expire mid-download are renewed (the dataset is read again) and the
        part resumes where it stopped.

        Records come in the order of the output's parts, which is not the
        input's (the service shuffles them); --join puts each beside its
        request. When the batch's counts and its output disagree (a
        COMPLETED batch can lose records), one warning says how; with --join
        it names the requests that have no result. Results of a batch whose
        output dataset outlived its 30 days (the dataset_ttl setting) are
        gone: exit 13.

        CSV and Parquet have one row per record: custom_id, status, error,
        then for chat text, finish_reason, input_tokens, output_tokens and
        tool_calls, for embeddings input_tokens and one embeddings_TYPE
        column per embedding type (Parquet: lists of float32 or integer
        vectors). docs/results-columns.md has the schema.

        A batch that was retried ('cbatch retry') gets merged results: one
        record per custom_id across every attempt, its latest success, else
        its latest failure, each with the "attempt" it came from (a column in
        CSV). --own gives one attempt's records alone.

        A job id (as 'cbatch jobs create' printed it) writes the job's
        results, one record per custom_id across every part and attempt, as
        'cbatch jobs results JOB_ID' does (default file: JOB_ID.FORMAT);
        --own has no meaning for a job and is refused.

        '-' reads the batch id from standard input (one; for several, one
        file each: ... | xargs -n1 cbatch results).

        Examples:

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 -o results.jsonl

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --failed-only -o failed.csv

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 -o embeddings.parquet --column texts=body.texts

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --join requests.jsonl -o - | jq .
        """
        from ..errors import OutputOptionError
        from ..tasks.fetching import FetchOptions, check_options, fetch_results
        from ..tasks.resolving import BATCH, act_on
        from ..tasks.runs import find_run

        state = get_state(ctx)
        options = FetchOptions(
            output=output,
            fmt=fmt.value if fmt is not None else None,
            failed_only=failed_only,
            columns=tuple(columns or ()),
            body=body,
            join=join,
            concurrency=concurrency,
            read_timeout=state.timeout,
            ca_bundle=state.ca_bundle,
            dataset_ttl=state.settings().limits.dataset_ttl,
            merge=not own,
        )
        chosen, _ = check_options(options)  # a usage error stops the command before any call
        if chosen == "parquet" and output == "-" and state.out.stdout_is_tty:
            raise OutputOptionError(
                "Parquet is binary and stdout is a terminal",
                hint="write it to a file: -o FILE.parquet",
            )
        if batch_id == "-":
            batch_id = _one_id_from_stdin()
        client = state.client()
        if (run := find_run(client, batch_id)) is not None:
            _job_results(state, *run, options, own=own, wait=wait)
            return
        batch = act_on(client, batch_id, BATCH, state.out, client.get_batch)
        batch_id = batch.id
        if wait and not batch.status.is_terminal:
            # only when waiting: the watch engine is heavy to import
            from ..tasks.watching import WatchSpec
            from ._watching import run_watch

            code = run_watch(
                state, [batch_id], WatchSpec(plain=True, no_exit_status=True), to_stderr=True
            )
            if code in _STOPPED:
                raise typer.Exit(code)
        fetch_results(client, batch_id, state.out, options, stdout=state.out.binary)


def _one_id_from_stdin() -> str:
    """``results -``: the one id on standard input (one file is one batch's results)."""
    from ..errors import UsageError

    ids = ids_from_stdin(["-"])
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise UsageError("no batch id on standard input")
    raise UsageError(
        f"results writes one batch's results, and standard input holds {len(ids)} ids",
        hint="one file each: ... | xargs -n1 cbatch results",
    )


def _job_results(
    state: CliState,
    job: JobRecord,
    store: StateStore,
    options: FetchOptions,
    *,
    own: bool,
    wait: bool,
) -> None:
    """``results JOB``: the job's results as ``jobs results JOB`` writes them (after its watch, with --wait)."""
    from ..errors import UsageError
    from ._jobs import follow_job, write_run_results

    if own:
        raise UsageError(
            f"--own gives one batch's own records; {job.id} is a job, whose results merge every part and attempt",
            hint=f"leave out --own, or give one part's batch id (cbatch jobs get {job.id})",
        )
    if wait:
        from ..tasks.watching import WatchSpec

        spec = WatchSpec(plain=True, no_exit_status=True)
        code = follow_job(state, job, store, None, spec, to_stderr=True)
        if code in _STOPPED:
            raise typer.Exit(code)
    write_run_results(state, job, store, options)
