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
        own: Annotated[bool, typer.Option("--own", help="A batch with retries: only this batch's own records, not merged with its other attempts.")] = False,
    ) -> None:
        """Download a finished batch's results as JSONL or CSV.

        Parts are fetched (several at once) from their pre-signed links
        without the API key, decoded in order, and written under a temporary
        name that is renamed when complete: an interrupted run leaves no
        partial file, and a second run writes the same bytes.

        A batch that was retried ('cbatch retry') gets merged results: one
        record per custom_id across every attempt, its latest success, else
        its latest failure, each with the "attempt" it came from (a column in
        CSV). --own gives one attempt's records alone.

        Examples:

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 -o results.jsonl

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --format csv --failed-only -o failed.csv

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --join requests.jsonl -o - | jq .
        """
        from ..exit_codes import ExitCode
        from ..tasks.fetching import FetchOptions, fetch_results
        from ._watching import run_watch

        state = get_state(ctx)
        client = state.client()
        if wait and not client.get_batch(batch_id).status.is_terminal:
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
            merge=not own,
        )
        fetch_results(client, batch_id, state.out, options, stdout=state.out.binary)
