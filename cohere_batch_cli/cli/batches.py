"""Batch commands: create, list, get, cancel."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import UsageError
from ..exit_codes import ExitCode
from ._context import CliState, get_state
from ._errors import command_errors
from ._options import (
    BatchIdArg,
    BatchIdsArg,
    EventsJsonOpt,
    FormatOpt,
    JsonlOpt,
    JsonOpt,
    MaxCostOpt,
    MaxInputTokensOpt,
    QueryOpt,
    QuietOpt,
    TokenizerFileOpt,
)

if TYPE_CHECKING:
    from ..api.models import Batch


class OrderBy(str, Enum):
    created_at = "created_at"
    updated_at = "updated_at"


def show_batch(state: CliState, batch: Batch) -> None:
    """Print one batch in the output's mode: its JSON, its id, or every field."""
    from ..output.batch_views import STATUS_STYLES, batch_fields

    style = {"Status": STATUS_STYLES.get(batch.status, "magenta")}
    state.out.item(batch.raw, batch.id, batch_fields(batch), style)


def register(app: typer.Typer) -> None:
    """Add the batch commands to the root app."""

    @app.command("create", rich_help_panel="Batches")
    @command_errors
    def create(
        ctx: typer.Context,
        name: Annotated[str | None, typer.Option("--name", "-n", help="Name of the batch (default: from the file name).")] = None,
        dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Id of a validated input dataset.")] = None,
        file: Annotated[Path | None, typer.Option("--file", "-f", help="A JSONL file of requests: checked, uploaded and validated first.", dir_okay=False)] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Model to run every request with (default: the profile's model).")] = None,
        dataset_type: Annotated[str | None, typer.Option("--type", help="With --file: batch-chat-v2-input or batch-embed-v2-input (inferred when absent).")] = None,
        watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow the batch until it ends (exit codes as 'cbatch watch').")] = False,
        max_cost: MaxCostOpt = None,
        max_input_tokens: MaxInputTokensOpt = None,
        context_check: Annotated[bool, typer.Option("--context-check/--no-context-check", help="With --file: refuse records that cannot fit the model's context, before the upload.")] = True,
        strict_context: Annotated[bool, typer.Option("--strict-context", help="Refuse the file when the context check cannot be done (no tokenizer, unlisted model).")] = False,
        tokenizer: TokenizerFileOpt = None,
        json_out: JsonOpt = False,
        jsonl: JsonlOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Create a batch from a dataset, or from a JSONL file in one step.

        With --dataset, the dataset must already be validated. With --file, the
        file is checked line by line first (nothing is sent if a line is
        wrong), uploaded, and validated; then the batch is created. If the
        answer to the create call is lost, cbatch looks for the batch before
        asking again, so a retry never makes two. With --watch, --json prints
        the batch and then the watch's events, one JSON object a line.

        With --file, records that cannot fit the model's context length are
        refused before the upload (exit 5, each as FILE:LINE); records whose
        size already proves they fit are not tokenized, so the check is cheap.
        --max-cost and --max-input-tokens count every record with the model's
        tokenizer (see 'cbatch estimate') and refuse a batch over budget.

        Examples:

          cbatch create --name nightly --dataset requests-3kd9xq --model command-r-08-2024

          cbatch create --file requests.jsonl --model command-r-08-2024 --watch

          cbatch create --file requests.jsonl --model command-r-08-2024 --max-cost 25
        """
        from ..tasks.batches import create_batch
        from ..tasks.datasets import upload_file

        state = get_state(ctx)
        lines = json_out and watch  # the batch, then events: one JSON object a line
        out = state.out.set_mode(json_out=json_out and not lines, jsonl=jsonl or lines, quiet=quiet)
        if (dataset is None) == (file is None):
            raise UsageError("give exactly one of --dataset DATASET_ID or --file FILE")
        model = model or state.settings().model.value
        if not model:
            raise UsageError("--model is required (or set 'model' in your profile)")
        guarded = max_cost is not None or max_input_tokens is not None or strict_context or tokenizer is not None
        if file is None and guarded:
            raise UsageError("--max-cost, --max-input-tokens, --strict-context and --tokenizer go with --file")
        client = state.client()
        if file is not None:
            from ..tasks.estimating import GuardOptions, guard_upload
            from ._estimating import budget, count_options

            options = GuardOptions(count_options(state, tokenizer), check_context=context_check, strict=strict_context)
            limit = budget(state, model, max_cost, max_input_tokens)
            guard = lambda report: guard_upload(  # noqa: E731 - the one step between check and upload
                client, report, model_name=model, options=options, budget=limit, reporter=out
            )
            dataset = upload_file(client, file, out, dataset_type=dataset_type, name=name, before_upload=guard)
            name = name or file.stem
        assert dataset is not None
        batch = create_batch(client, name=name or dataset, dataset_id=dataset, model=model, reporter=out)
        if not out.for_machines:
            out.info(f"created batch {batch.id}")
        show_batch(state, batch)
        if watch:
            from ._watching import run_watch

            # With -q, stdout holds the id alone; the watch goes to stderr.
            code = run_watch(state, [batch.id], json_lines=json_out or jsonl, to_stderr=quiet)
            raise typer.Exit(code)

    @app.command("list", rich_help_panel="Batches")
    @command_errors
    def list_batches(
        ctx: typer.Context,
        limit: Annotated[int, typer.Option("--limit", "-l", min=1, help="Show at most this many batches.")] = 20,
        all_: Annotated[bool, typer.Option("--all", "-a", help="Follow every page: all batches.")] = False,
        order_by: Annotated[OrderBy, typer.Option("--order-by", help="created_at or updated_at (newest first).")] = OrderBy.created_at,
        status: Annotated[list[str] | None, typer.Option("--status", "-s", help="Only batches in this status (repeatable): queued, in_progress, canceling, completed, failed, canceled.")] = None,
        name: Annotated[str | None, typer.Option("--name", help="Only batches whose name contains this text.")] = None,
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
        out = state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet, fmt=fmt, query=query)
        wanted = {BatchStatus.parse_user(s) for s in status or []}
        unknown = [s for s in wanted if not s.is_known]
        if unknown:
            raise UsageError(f"unknown status {unknown[0].label!r}; use queued, in_progress, canceling, completed, failed or canceled")
        filtered = bool(wanted or name)
        page_size = 1000 if (all_ or filtered) else min(limit, 1000)
        stream = state.client().iter_batches(page_size=page_size, order_by=order_by.value)
        seen: list[tuple[str, str, str]] = []

        def selected() -> Any:
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

        out.items(
            selected(),
            columns=BATCH_COLUMNS,
            csv_fields=BATCH_CSV_FIELDS,
            raw=lambda b: b.raw,
            item_id=lambda b: b.id,
            empty="no batches match" if filtered else "no batches yet",
        )
        remember(seen)

    @app.command("get", rich_help_panel="Batches")
    @command_errors
    def get(
        ctx: typer.Context,
        batch_id: BatchIdArg,
        json_out: JsonOpt = False,
        jsonl: JsonlOpt = False,
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
        state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet, query=query)
        show_batch(state, state.client().get_batch(batch_id))

    @app.command("cancel", rich_help_panel="Batches")
    @command_errors
    def cancel(
        ctx: typer.Context,
        batch_ids: BatchIdsArg,
        wait: Annotated[bool, typer.Option("--wait", help="Wait until each batch reaches a terminal state.")] = False,
        json_out: EventsJsonOpt = False,
        jsonl: JsonlOpt = False,
    ) -> None:
        """Cancel one or several batches and report each outcome.

        Cancelling asks; the batch reads 'canceling' and then ends canceled,
        or completed when its work finished first. The exit code is that of
        the first failure, 0 when every cancel was accepted. --json prints one
        JSON array of outcomes; with --wait, outcomes and then the watch's
        events stream one JSON object a line.

        Examples:

          cbatch cancel 9439e0e3-49a4-4336-93e3-485fc420bc18 --wait

          cbatch list -q --status queued | xargs cbatch cancel
        """
        from ..tasks.batches import cancel_batches
        from ._errors import exit_code_for, message_for

        state = get_state(ctx)
        lines = jsonl or (json_out and wait)
        out = state.out.set_mode(json_out=json_out and not lines, jsonl=lines)
        first_failure = ExitCode.OK
        outcomes: list[dict[str, Any]] = []
        for outcome in cancel_batches(state.client(), batch_ids):
            if outcome.error is not None:
                first_failure = first_failure or exit_code_for(outcome.error)
                message = message_for(outcome.error)
                record: dict[str, Any] = {"id": outcome.batch_id, "cancel_requested": False, "error": message}
                out.info(f"{outcome.batch_id}: not cancelled: {message}")
            else:
                record = {"id": outcome.batch_id, "cancel_requested": True}
                out.info(f"{outcome.batch_id}: cancel requested")
            if lines:
                out.json_line(record)
            outcomes.append(record)
        if json_out and not lines:
            out.document(outcomes)
        accepted = [o["id"] for o in outcomes if o["cancel_requested"]]
        if wait and accepted:
            from ._watching import run_watch

            code = run_watch(state, accepted, json_lines=lines, no_exit_status=True)
            first_failure = first_failure or code
        raise typer.Exit(first_failure)
