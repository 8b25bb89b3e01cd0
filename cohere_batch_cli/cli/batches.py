"""Batch commands: create, list, get, cancel."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..exit_codes import ExitCode
from ._context import CliState, get_state
from ._errors import UsageError, command_errors
from ._options import FormatOpt, JsonlOpt, JsonOpt, QueryOpt, QuietOpt

if TYPE_CHECKING:
    from ..api.models import Batch
    from ..output.printer import Printer

ORDER_BY_CHOICES = ("created_at", "updated_at")


def _complete_batch_id(incomplete: str) -> list[tuple[str, str]]:
    from ..completion_cache import complete_batch_id

    return complete_batch_id(incomplete)


BatchIdArg = Annotated[
    str, typer.Argument(help="The batch id.", metavar="BATCH_ID", autocompletion=_complete_batch_id)
]
BatchIdsArg = Annotated[
    list[str],
    typer.Argument(help="One or more batch ids.", metavar="BATCH_ID...", autocompletion=_complete_batch_id),
]


def make_printer(
    state: CliState,
    *,
    json_out: bool = False,
    jsonl: bool = False,
    quiet: bool = False,
    fmt: str | None = None,
    query: str | None = None,
) -> Printer:
    """The printer for this command's output options (shared by every command that prints data)."""
    from ..output.printer import Printer, choose_mode

    mode = choose_mode(
        json_out=json_out, jsonl=jsonl, quiet=quiet, stdout_is_tty=state.stdout_is_tty, fmt=fmt
    )
    return Printer(mode, state.console, query=query)


def show_item(
    state: CliState,
    raw: dict[str, Any],
    item_id: str,
    fields: list[tuple[str, str]],
    styles: dict[str, str],
    **printer_options: Any,
) -> None:
    """Print one object: its JSON, its id, or a field view (colour on a terminal only)."""
    from ..output.batch_views import plain_fields, print_fields

    def detail() -> None:
        if state.stdout_is_tty:
            print_fields(state.console(), fields, styles)
        else:
            print(plain_fields(fields))

    make_printer(state, **printer_options).item(raw, item_id, detail)


def show_batch(
    state: CliState,
    batch: Batch,
    *,
    json_out: bool,
    quiet: bool,
    query: str | None = None,
    jsonl: bool = False,
) -> None:
    """Print one batch: the API object with --json, its id with -q, else every field.

    ``jsonl`` prints it on one line, for output that JSON lines follow
    (``create --watch --json``), so stdout stays one JSON object a line.
    """
    from ..output.batch_views import STATUS_STYLES, batch_fields

    style = {"Status": STATUS_STYLES.get(batch.status, "magenta")}
    show_item(
        state, batch.raw, batch.id, batch_fields(batch), style,
        json_out=json_out, jsonl=jsonl, quiet=quiet, query=query,
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the batch commands to the root app."""

    @app.command("create", rich_help_panel="Batches")
    @command_errors
    def create(
        ctx: typer.Context,
        name: Annotated[Optional[str], typer.Option("--name", "-n", help="Name of the batch (default: from the file name).")] = None,
        dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Id of a validated input dataset.")] = None,
        file: Annotated[Optional[Path], typer.Option("--file", "-f", help="A JSONL file of requests: checked, uploaded and validated first.", dir_okay=False)] = None,
        model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model to run every request with (default: the profile's model).")] = None,
        dataset_type: Annotated[Optional[str], typer.Option("--type", help="With --file: batch-chat-v2-input or batch-embed-v2-input (inferred when absent).")] = None,
        watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow the batch until it ends (exit codes as 'cbatch watch').")] = False,
        json_out: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Create a batch from a dataset, or from a JSONL file in one step.

        With --dataset, the dataset must already be validated. With --file, the
        file is checked line by line first (nothing is sent if a line is
        wrong), uploaded, and validated; then the batch is created. If the
        answer to the create call is lost, cbatch looks for the batch before
        asking again, so a retry never makes two.

        Examples:

          cbatch create --name nightly --dataset requests-3kd9xq --model command-r-08-2024

          cbatch create --file requests.jsonl --model command-r-08-2024 --watch
        """
        state = get_state(ctx)
        if (dataset is None) == (file is None):
            raise UsageError("give exactly one of --dataset DATASET_ID or --file FILE")
        model = model or state.settings().model.value
        if not model:
            raise UsageError("--model is required (or set 'model' in your profile)")
        client = state.client()
        if file is not None:
            from .datasets import upload_checked

            dataset = upload_checked(state, file, dataset_type=dataset_type, name=name, wait=True)
            name = name or file.stem
        assert dataset is not None
        batch_name = name or dataset
        try:
            batch = client.create_batch(name=batch_name, input_dataset_id=dataset, model=model)
        except KeyboardInterrupt:
            state.info(
                "interrupted while creating the batch: it may exist; "
                f"look before creating it again: cbatch list --name {shlex.quote(batch_name)}"
            )
            raise
        if not (json_out or quiet):
            state.info(f"created batch {batch.id}")
        show_batch(state, batch, json_out=json_out, quiet=quiet, jsonl=json_out and watch)
        if watch:
            from .watch import watch_batches

            # With -q, stdout holds the id alone; the watch goes to stderr.
            stream = sys.stderr if quiet else None
            code = watch_batches(state, [batch.id], plain=None, json_lines=json_out, stream=stream)
            raise typer.Exit(code)

    @app.command("list", rich_help_panel="Batches")
    @command_errors
    def list_batches(
        ctx: typer.Context,
        limit: Annotated[int, typer.Option("--limit", "-l", min=1, help="Show at most this many batches.")] = 20,
        all_: Annotated[bool, typer.Option("--all", "-a", help="Follow every page: all batches.")] = False,
        order_by: Annotated[str, typer.Option("--order-by", help="created_at or updated_at (newest first).")] = "created_at",
        status: Annotated[Optional[list[str]], typer.Option("--status", "-s", help="Only batches in this status (repeatable): queued, in_progress, canceling, completed, failed, canceled.")] = None,
        name: Annotated[Optional[str], typer.Option("--name", help="Only batches whose name contains this text.")] = None,
        json_out: JsonOpt = False,
        jsonl: JsonlOpt = False,
        quiet: QuietOpt = False,
        fmt: FormatOpt = None,
        query: QueryOpt = None,
    ) -> None:
        """List batches, newest first.

        Filters run on this side (the API has none), over as many pages as it
        takes to find --limit matches, or every page with --all.

        Examples:

          cbatch list --status in_progress

          cbatch list -q --status queued | xargs cbatch cancel

          cbatch list --all --jsonl > batches.jsonl

          cbatch list --all --format csv > batches.csv

          cbatch list --query "[?status=='BATCH_STATUS_FAILED'].id"
        """
        from ..api.models import BatchStatus
        from ..completion_cache import MAX_IDS, remember
        from ..output.batch_views import BATCH_COLUMNS, BATCH_CSV_FIELDS

        state = get_state(ctx)
        if order_by not in ORDER_BY_CHOICES:
            raise UsageError(f"--order-by must be one of {', '.join(ORDER_BY_CHOICES)}")
        wanted = {BatchStatus.parse_user(s) for s in status or []}
        unknown = [s for s in wanted if not s.is_known]
        if unknown:
            raise UsageError(f"unknown status {unknown[0].label!r}; use queued, in_progress, canceling, completed, failed or canceled")
        filtered = bool(wanted or name)
        page_size = 1000 if (all_ or filtered) else min(limit, 1000)
        stream = state.client().iter_batches(page_size=page_size, order_by=order_by)

        seen: list[tuple[str, str, str]] = []

        def selected():  # type: ignore[no-untyped-def]
            shown = 0
            for batch in stream:
                if wanted and batch.status not in wanted:
                    continue
                if name and name.lower() not in batch.name.lower():
                    continue
                if len(seen) < MAX_IDS:
                    seen.append((batch.id, batch.name, batch.status.label))
                yield batch
                shown += 1
                if not all_ and shown >= limit:
                    return

        printer = make_printer(state, json_out=json_out, jsonl=jsonl, quiet=quiet, fmt=fmt, query=query)
        printer.items(
            selected(),
            columns=BATCH_COLUMNS,
            csv_fields=BATCH_CSV_FIELDS,
            raw=lambda b: b.raw,
            item_id=lambda b: b.id,
            empty="no batches match" if filtered else "no batches yet",
            on_empty=state.info,
        )
        remember(seen)

    @app.command("get", rich_help_panel="Batches")
    @command_errors
    def get(
        ctx: typer.Context,
        batch_id: BatchIdArg,
        json_out: JsonOpt = False,
        quiet: QuietOpt = False,
        query: QueryOpt = None,
    ) -> None:
        """Show every field of a batch: status, progress, token counts, datasets.

        Fields the API adds later are shown too. With --json, the batch exactly
        as the API sent it (token counts stay strings).

        Examples:

          cbatch get 9439e0e3-49a4-4336-93e3-485fc420bc18

          cbatch get 9439e0e3-49a4-4336-93e3-485fc420bc18 --json | jq .status

          cbatch get 9439e0e3-49a4-4336-93e3-485fc420bc18 --query status
        """
        state = get_state(ctx)
        batch = state.client().get_batch(batch_id)
        show_batch(state, batch, json_out=json_out, quiet=quiet, query=query)

    @app.command("cancel", rich_help_panel="Batches")
    @command_errors
    def cancel(
        ctx: typer.Context,
        batch_ids: BatchIdsArg,
        wait: Annotated[bool, typer.Option("--wait", help="Wait until each batch reaches a terminal state.")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Cancel one or several batches and report each outcome.

        Cancelling asks; the batch reads 'canceling' and then ends canceled,
        or completed when its work finished first. The exit code is that of
        the first failure, 0 when every cancel was accepted.

        Examples:

          cbatch cancel 9439e0e3-49a4-4336-93e3-485fc420bc18 --wait

          cbatch list -q --status queued | xargs cbatch cancel
        """
        import json

        from ..api.errors import CohereAPIError
        from ._errors import exit_code_for, message_for

        state = get_state(ctx)
        client = state.client()
        first_failure = ExitCode.OK
        accepted = []
        for batch_id in batch_ids:
            try:
                client.cancel_batch(batch_id)
            except CohereAPIError as exc:
                code = exit_code_for(exc)
                first_failure = first_failure or code
                outcome = {"id": batch_id, "cancel_requested": False, "error": message_for(exc)}
                state.info(f"{batch_id}: not cancelled: {message_for(exc)}")
            else:
                accepted.append(batch_id)
                outcome = {"id": batch_id, "cancel_requested": True}
                state.info(f"{batch_id}: cancel requested")
            if json_out:
                print(json.dumps(outcome), flush=True)
        if wait and accepted:
            from .watch import watch_batches

            code = watch_batches(state, accepted, plain=None, json_lines=json_out, no_exit_status=True)
            first_failure = first_failure or code
        raise typer.Exit(first_failure)
