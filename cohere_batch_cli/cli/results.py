"""``cbatch results``: a finished batch's output, decoded from Avro into JSONL or CSV."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._context import CliState, get_state
from ._errors import UsageError, command_errors
from .batches import BatchIdArg

FORMATS = ("jsonl", "csv")


def register(app: typer.Typer) -> None:
    @app.command("results", rich_help_panel="Results")
    @command_errors
    def results(
        ctx: typer.Context,
        batch_id: BatchIdArg,
        output: Annotated[Optional[str], typer.Option("--output", "-o", help="File to write, or - for stdout [default: BATCH_ID.FORMAT].", show_default=False)] = None,
        fmt: Annotated[str, typer.Option("--format", "-F", help="jsonl (one record a line, custom_id first) or csv.")] = "jsonl",
        failed_only: Annotated[bool, typer.Option("--failed-only", help="Only the records that failed.")] = False,
        join: Annotated[Optional[Path], typer.Option("--join", help="The input JSONL: put each request beside its result.", dir_okay=False, exists=True)] = None,
        wait: Annotated[bool, typer.Option("--wait", help="If the batch is still running, wait for it to end first.")] = False,
        concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=16, help="Parts fetched at once.")] = 4,
    ) -> None:
        """Download a finished batch's results as JSONL or CSV.

        Parts are fetched (several at once) from their pre-signed links
        without the API key, decoded in order, and written under a temporary
        name that is renamed when complete: an interrupted run leaves no
        partial file, and a second run writes the same bytes.

        Examples:

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 -o results.jsonl

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --format csv --failed-only -o failed.csv

          cbatch results 9439e0e3-49a4-4336-93e3-485fc420bc18 --join requests.jsonl -o - | jq .
        """
        fetch_results(
            get_state(ctx),
            batch_id,
            output=output,
            fmt=fmt,
            failed_only=failed_only,
            join=join,
            wait=wait,
            concurrency=concurrency,
        )


def fetch_results(
    state: CliState,
    batch_id: str,
    *,
    output: str | None = None,
    fmt: str = "jsonl",
    failed_only: bool = False,
    join: Path | None = None,
    wait: bool = False,
    concurrency: int = 4,
) -> None:
    """Wait for the output dataset of a finished batch, then download and decode it."""
    from ..api.client import Timeouts, storage_client
    from ..api.errors import BadRequestError
    from ..output.progress import make_progress
    from ..results import DEFAULT_STALL_TIMEOUT, download_results
    from .datasets import wait_validated

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}")
    client = state.client()
    batch = client.get_batch(batch_id)
    if not batch.status.is_terminal and wait:
        from ..exit_codes import ExitCode
        from .watch import watch_batches

        code = watch_batches(state, [batch.id], plain=True, no_exit_status=True, stream=sys.stderr)
        if code in (ExitCode.INTERRUPTED, ExitCode.TIMEOUT):
            raise typer.Exit(code)
        batch = client.get_batch(batch_id)
    if not batch.status.is_terminal:
        raise BadRequestError(
            f"batch {batch.id} is {batch.status.label}, with no results yet; "
            f"wait with: cbatch watch {batch.id} (or add --wait)"
        )
    if not batch.output_dataset_id:
        raise BadRequestError(f"batch {batch.id} ended {batch.status.label} with no output dataset")
    dataset = wait_validated(state, batch.output_dataset_id)
    if dataset.validation_status == "failed":
        raise BadRequestError(
            f"output dataset {dataset.id} failed: {dataset.validation_error or 'no reason given'}"
        )
    destination = None if output == "-" else Path(output or f"{batch.id}.{fmt}")
    show_progress = state.stderr_is_tty and destination is not None
    progress = make_progress(show_progress, "downloading results", state.err_console)
    timeouts = Timeouts(read=state.timeout) if state.timeout else Timeouts()
    with storage_client(timeouts=timeouts, ca_bundle=state.ca_bundle_path()) as http:
        summary = download_results(
            dataset.parts,
            destination,
            fmt=fmt,  # type: ignore[arg-type]
            failed_only=failed_only,
            join=join,
            expected_records=batch.num_records,
            http=http,
            concurrency=concurrency,
            progress=progress,
            stall_timeout=state.timeout or DEFAULT_STALL_TIMEOUT,
        )
    where = "stdout" if destination is None else str(destination)
    noun = "record" if summary.records_written == 1 else "records"
    state.info(
        f"wrote {summary.records_written:,} {noun} to {where} "
        f"({summary.succeeded:,} succeeded, {summary.failed:,} failed)"
    )
    if summary.count_mismatch:
        state.warn(summary.count_mismatch)
