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
    DEFAULT_PAUSE,
    BatchIdArg,
    BatchIdsArg,
    EventsJsonOpt,
    FormatOpt,
    JsonlOpt,
    JsonOpt,
    MatchOpt,
    MissingOpt,
    PauseOpt,
    QueryOpt,
    QuietOpt,
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
        file: Annotated[Path | None, typer.Option("--file", "-f", help="A JSONL file of requests (- reads stdin): checked, uploaded and validated first.", dir_okay=False)] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Model to run every request with (default: the profile's model).")] = None,
        dataset_type: Annotated[str | None, typer.Option("--type", help="With --file: batch-chat-v2-input or batch-embed-v2-input (inferred when absent).")] = None,
        watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow the batch until it ends (exit codes as 'cbatch watch').")] = False,
        retry_failed: Annotated[int, typer.Option("--retry-failed", metavar="N", min=0, max=100, help="With --watch: retry what failed, up to N rounds, then exit 12 if records still fail (0 if none).")] = 0,
        match: MatchOpt = None,
        missing: MissingOpt = True,
        pause: PauseOpt = DEFAULT_PAUSE,
        json_out: JsonOpt = False,
        jsonl: JsonlOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Create a batch from a dataset, or from a JSONL file in one step.

        With --dataset, the dataset must already be validated. With --file, the
        file is checked line by line first (nothing is sent if a line is
        wrong), uploaded (asking the API to keep the original file), and
        validated; then the batch is created, and the file's path, size and
        hash are recorded for a later 'cbatch retry'. If the answer to the
        create call is lost, cbatch looks for the batch before asking again,
        so a retry never makes two. With --watch, --json prints the batch and
        then the watch's events, one JSON object a line. With --retry-failed
        N, each attempt is watched and what failed is retried (as 'cbatch
        retry --watch --rounds N'), with a pause that doubles between rounds.

        Examples:

          cbatch create --name nightly --dataset requests-3kd9xq --model command-r-08-2024

          cbatch create --file requests.jsonl --model command-r-08-2024 --watch

          cbatch create --file requests.jsonl --model command-r-08-2024 --retry-failed 3 --watch
        """
        from ..tasks.batches import create_batch
        from ..tasks.datasets import default_name, upload_file
        from ..tasks.lineage import open_store_or_warn, remember_batch, remember_input_file

        state = get_state(ctx)
        lines = json_out and watch  # the batch, then events: one JSON object a line
        out = state.out.set_mode(json_out=json_out and not lines, jsonl=jsonl or lines, quiet=quiet)
        if (dataset is None) == (file is None):
            raise UsageError("give exactly one of --dataset DATASET_ID or --file FILE")
        if retry_failed and not watch:
            raise UsageError("--retry-failed needs --watch: a round waits for the batch before it")
        rule = None
        if retry_failed:
            from ..selection import Rule

            rule = Rule(pattern=match, missing=missing)  # a bad pattern is refused before anything is sent
        model = model or state.settings().model.value
        if not model:
            raise UsageError("--model is required (or set 'model' in your profile)")
        client = state.client()
        if file is not None:
            dataset = upload_file(client, file, out, dataset_type=dataset_type, name=name, keep_original_file=True)
            name = name or default_name(file)
            remember_input_file(dataset, file, out)
        assert dataset is not None
        batch = create_batch(client, name=name or dataset, dataset_id=dataset, model=model, reporter=out)
        store = open_store_or_warn(out, f"the lineage of batch {batch.id}")
        if store is not None:
            remember_batch(store, batch, root_id=batch.id, attempt=1, parent_id=None)
        if not out.for_machines:
            out.info(f"created batch {batch.id}")
        show_batch(state, batch)
        if watch and rule is not None:
            from ..tasks.retrying import RetryOptions
            from ._retrying import retry_command, run_rounds

            options = RetryOptions(rule=rule, model=model, read_timeout=state.timeout, ca_bundle=state.ca_bundle)
            resume = retry_command(state, batch.id, options, rounds=retry_failed, pause=pause)
            code = run_rounds(
                state, batch.id, options, rounds=retry_failed, pause=pause, json_lines=json_out or jsonl,
                quiet=quiet, resume=resume, first_shown=True,
            )  # fmt: skip
            raise typer.Exit(code)
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

        Fields the API adds later are shown too, and for a batch in a chain of
        retries its attempt, the batch it retries and the one that retried it
        (from its name and the local state store). With --json, the batch
        exactly as the API sent it (token counts stay strings).

        Examples:

          cbatch get 9439e0e3-49a4-4336-93e3-485fc420bc18

          cbatch get 9439e0e3-49a4-4336-93e3-485fc420bc18 --json | jq .status

          cbatch get 9439e0e3-49a4-4336-93e3-485fc420bc18 --query status
        """
        state = get_state(ctx)
        out = state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet, query=query)
        batch = state.client().get_batch(batch_id)
        if out.for_machines:
            show_batch(state, batch)
            return
        from ..output.batch_views import STATUS_STYLES, batch_fields, lineage_fields
        from ..state.store import existing_store
        from ..tasks.lineage import known_lineage

        fields = batch_fields(batch)
        known = known_lineage(batch, existing_store())
        if known is not None:
            fields += lineage_fields(known.attempt, known.root_id, known.parent_id, known.retried_by)
        out.item(batch.raw, batch.id, fields, {"Status": STATUS_STYLES.get(batch.status, "magenta")})

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
        the first refused cancel, 0 when every cancel was accepted; with
        --wait, 0 once each batch has ended, however it ended (10, 130, 143
        and 129 as for watch). --json prints one JSON array of outcomes; with
        --wait, outcomes and then the watch's events stream one JSON object a
        line.

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
