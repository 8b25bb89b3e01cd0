"""``cbatch results``: a finished batch's output, decoded from Avro into JSONL or CSV."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ._context import get_state
from ._errors import command_errors
from ._options import BatchIdArg


class ResultsFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


def register(app: typer.Typer) -> None:
    @app.command("results", rich_help_panel="Results")
    @command_errors
    def results(
        ctx: typer.Context,
        batch_id: BatchIdArg,
        output: Annotated[str | None, typer.Option("--output", "-o", help="File to write, or - for stdout [default: BATCH_ID.FORMAT].", show_default=False)] = None,
        fmt: Annotated[ResultsFormat, typer.Option("--format", "-F", help="jsonl (one record a line, custom_id first) or csv.")] = ResultsFormat.jsonl,
        failed_only: Annotated[bool, typer.Option("--failed-only", help="Only the records that failed.")] = False,
        join: Annotated[Path | None, typer.Option("--join", help="The input JSONL: put each request beside its result.", dir_okay=False, exists=True)] = None,
        wait: Annotated[bool, typer.Option("--wait", help="If the batch is still running, wait for it to end first.")] = False,
        concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=16, help="Parts fetched at once.")] = 4,
    ) -> None:
        """Download a finished batch's results as JSONL or CSV.

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

        Examples:

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 -o results.jsonl

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --format csv --failed-only -o failed.csv

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --join requests.jsonl -o - | jq .
        """
        from ..exit_codes import ExitCode
        from ..tasks.fetching import FetchOptions, fetch_results
        from ..tasks.resolving import BATCH, act_on
        from ._watching import run_watch

        state = get_state(ctx)
        client = state.client()
        batch = act_on(client, batch_id, BATCH, state.out, client.get_batch)
        batch_id = batch.id
        if wait and not batch.status.is_terminal:
            code = run_watch(state, [batch_id], plain=True, to_stderr=True, no_exit_status=True)
            if code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED, ExitCode.HANGUP, ExitCode.TIMEOUT):
                raise typer.Exit(code)
        options = FetchOptions(
            output=output,
            fmt=fmt.value,
            failed_only=failed_only,
            join=join,
            concurrency=concurrency,
            read_timeout=state.timeout,
            ca_bundle=state.ca_bundle,
            dataset_ttl=state.settings().limits.dataset_ttl,
        )
        fetch_results(client, batch_id, state.out, options, stdout=state.out.binary)
