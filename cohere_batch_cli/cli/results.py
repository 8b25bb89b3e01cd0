"""``cbatch results``: a finished batch's output, decoded from Avro into JSONL, CSV or Parquet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .. import ExitCode
from ._context import get_state
from ._errors import command_errors
from ._options import RunIdArg, hand_over, ids_from_stdin, results_options

if TYPE_CHECKING:
    from ..engine import JobRecord, ResultsSpec, StateStore
    from ._context import CliState

_STOPPED = (ExitCode.INTERRUPTED, ExitCode.TERMINATED, ExitCode.HANGUP, ExitCode.TIMEOUT)
"""How a --wait that did not see the end stops: the results are not fetched."""


def register(app: typer.Typer) -> None:
    @app.command("results", rich_help_panel="Results")
    @command_errors
    @results_options
    def results(
        ctx: typer.Context,
        spec: ResultsSpec,
        batch_id: RunIdArg,
        wait: Annotated[
            bool,
            typer.Option("--wait", help="If the batch is still running, wait for it to end first."),
        ] = False,
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

        A batch made from a table (create --from TABLE) writes that table
        again, in its row order, with the answers as new columns: answer
        (with --schema, one typed column per property and invalid_output),
        status, error, finish_reason, input_tokens, output_tokens, cached
        (true for a row answered without a request of its own, from the
        answer cache or an earlier row asking the same; its tokens are 0; see
        docs/tables.md). The answers that succeeded are kept in the answer
        cache (not with create --no-cache). The table must be as create read it (a table that
        changed is refused, exit 5), or be given with --join TABLE (on a
        machine with no record of the run, its rows are matched to the run's
        requests, read from the API; --id-column COL names the column that
        named them; docs/tables.md says what needs the record);
        --answer-prefix renames the added columns when the table has columns
        of those names; --records writes the records instead.

        A job id (as 'cbatch jobs create' printed it) writes the job's
        results, one record per custom_id across every part and attempt, as
        'cbatch jobs results JOB_ID' does (default file: JOB_ID.FORMAT), with
        the same options. Options with no meaning for the run are refused
        (exit 2): --own for a job; --partial, --delete-outputs, --input-order
        and --file for a batch.

        '-' reads the batch id from standard input (one; for several, one
        file each: ... | xargs -n1 cbatch results).

        Examples:

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 -o results.jsonl

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --failed-only -o failed.csv

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 -o embeddings.parquet --column texts=body.texts

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --join requests.jsonl -o - | jq .
        """
        import dataclasses

        from ..engine import BATCH, act_on, check_run, find_run
        from ._results import write_run

        state = get_state(ctx)
        spec = dataclasses.replace(spec, merge=not own)
        hand_over("results", "results", spec)
        if batch_id == "-":
            batch_id = _one_id_from_stdin()
        client = state.client()
        if (run := find_run(client, batch_id)) is not None:
            job, store = run
            check_run(spec, job.id)  # before the wait: no one waits to be told
            if wait:
                _wait_for_job(state, job, store)
            write_run(state, run, spec)
            return
        check_run(spec, None)
        batch = act_on(client, batch_id, BATCH, state.out, client.get_batch)
        if wait and not batch.status.is_terminal:
            # only when waiting: the watch engine is heavy to import
            from ..engine import WatchSpec
            from ._watching import run_watch

            code = run_watch(
                state, [batch.id], WatchSpec(plain=True, no_exit_status=True), to_stderr=True
            )
            if code in _STOPPED:
                raise typer.Exit(code)
        write_run(state, batch.id, spec)


def _one_id_from_stdin() -> str:
    """``results -``: the one id on standard input (one file is one batch's results)."""
    from .. import UsageError

    ids = ids_from_stdin(["-"])
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise UsageError("no batch id on standard input")
    raise UsageError(
        f"results writes one batch's results, and standard input holds {len(ids)} ids",
        hint="one file each: ... | xargs -n1 cbatch results",
    )


def _wait_for_job(state: CliState, job: JobRecord, store: StateStore) -> None:
    """``results JOB --wait``: the job's watch to stderr first; a watch stopped short ends the command."""
    from ..engine import WatchSpec
    from ._jobs import follow_job

    code = follow_job(
        state, job, store, None, WatchSpec(plain=True, no_exit_status=True), to_stderr=True
    )
    if code in _STOPPED:
        raise typer.Exit(code)
