"""Batch commands: create, list, get, cancel."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import ExitCode, UsageError
from ._context import get_state
from ._errors import command_errors
from ._jobs import MaxBytesOpt, MaxRecordsOpt, SplitOpt, wants_job
from ._options import (
    DEFAULT_INTERVAL,
    DEFAULT_PAUSE,
    BatchIdsArg,
    DryRunOpt,
    EventsJsonOpt,
    FormatOpt,
    IdempotencyKeyOpt,
    IntervalOpt,
    JsonlOpt,
    JsonOpt,
    MatchOpt,
    MaxCostOpt,
    MaxInputTokensOpt,
    MissingOpt,
    PauseOpt,
    QueryOpt,
    QuietOpt,
    RawOpt,
    RunIdsArg,
    SinceOpt,
    StatusOpt,
    TokenizerFileOpt,
    UntilOpt,
    WaitLockOpt,
    complete_dataset_id,
    hand_over,
    ids_from_stdin,
    key_options,
    parse_duration,
    refuse_watch_options,
    retry_options,
    watch_options,
)
from ._show import show_batch
from ._tables import table_options

if TYPE_CHECKING:
    from .. import Batch
    from ..engine import JobRecord, RetryOptions, StateStore, TableSpec, WatchSpec
    from ._context import CliState


def _create_again(
    state: Any,
    dataset: str,
    model: str,
    name: str,
    spec: WatchSpec,
    retry: RetryOptions | None,
    *,
    watch: bool = True,
) -> str:
    """The ``cbatch create --dataset ...`` that carries on after the upload, with the same watch (if any)."""
    import shlex

    from ._options import format_duration
    from ._watching import global_args, watch_args

    args = [
        *global_args(state),
        "create",
        "--dataset",
        dataset,
        "--model",
        model,
        "--name",
        name,
    ]
    if watch:
        args += ["--watch", *watch_args(spec)]
    if retry is not None and retry.rounds:
        args += ["--retry-failed", str(retry.rounds)]
        if retry.rule.pattern is not None:
            args += ["--match", retry.rule.pattern]
        if not retry.rule.missing:
            args.append("--no-missing")
        if retry.pause != DEFAULT_PAUSE:
            args += ["--pause", format_duration(retry.pause)]
    return shlex.join(args)


class OrderBy(str, Enum):
    created_at = "created_at"
    updated_at = "updated_at"


def register(app: typer.Typer) -> None:
    """Add the batch commands to the root app."""

    @app.command("create", rich_help_panel="Batches")
    @command_errors
    @watch_options
    @table_options
    def create(
        ctx: typer.Context,
        spec: WatchSpec,
        table: TableSpec | None,
        name: Annotated[
            str | None,
            typer.Option("--name", "-n", help="Name of the batch (default: from the file name)."),
        ] = None,
        dataset: Annotated[
            str | None,
            typer.Option(
                "--dataset",
                "-d",
                help="A validated input dataset: its id, a unique prefix of it, or its exact name.",
                autocompletion=complete_dataset_id,
            ),
        ] = None,
        file: Annotated[
            Path | None,
            typer.Option(
                "--file",
                "-f",
                help="A JSONL file of requests (- reads stdin): checked, uploaded and validated first.",
                dir_okay=False,
            ),
        ] = None,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help="Model to run every request with (default: CBATCH_MODEL, else the profile's model).",
            ),
        ] = None,
        dataset_type: Annotated[
            str | None,
            typer.Option(
                "--type",
                help="With --file: batch-chat-v2-input or batch-embed-v2-input (inferred when absent).",
            ),
        ] = None,
        watch: Annotated[
            bool,
            typer.Option(
                "--watch",
                "-w",
                help="Follow the batch until it ends (exit codes as 'cbatch watch'); the watch options below apply.",
            ),
        ] = False,
        retry_failed: Annotated[
            int,
            typer.Option(
                "--retry-failed",
                metavar="N",
                min=0,
                max=100,
                help="With --watch: retry what failed, up to N rounds, then exit 12 if records still fail (0 if none).",
            ),
        ] = 0,
        match: MatchOpt = None,
        missing: MissingOpt = True,
        pause: PauseOpt = DEFAULT_PAUSE,
        max_cost: MaxCostOpt = None,
        max_input_tokens: MaxInputTokensOpt = None,
        context_check: Annotated[
            bool,
            typer.Option(
                "--context-check/--no-context-check",
                help="With --file: refuse records that cannot fit the model's context, before the upload.",
            ),
        ] = True,
        strict_context: Annotated[
            bool,
            typer.Option(
                "--strict-context",
                help="Refuse the file when the context check cannot be done (no tokenizer, unlisted model).",
            ),
        ] = False,
        tokenizer: TokenizerFileOpt = None,
        split: SplitOpt = False,
        max_records_per_batch: MaxRecordsOpt = None,
        max_bytes_per_batch: MaxBytesOpt = None,
        wait_lock: WaitLockOpt = None,
        idempotency_key: IdempotencyKeyOpt = None,
        dry_run: DryRunOpt = False,
        json_out: JsonOpt = False,
        jsonl: JsonlOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Create a batch from a dataset, a JSONL file, or a table, in one step.

        With --dataset, the dataset must already be validated. With --file, the
        file is checked line by line first (nothing is sent if a line is
        wrong), uploaded (asking the API to keep the original file), and
        validated; then the batch is created, and the file's path, size and
        hash are recorded for a later 'cbatch retry'. A file over the dataset
        limit is refused unless --split (or --max-records-per-batch,
        --max-bytes-per-batch) runs it as a job of several batches ('cbatch
        jobs'): then -q prints the job id and --json the job object. If the answer to the
        create call is lost, cbatch looks for the batch before asking again,
        so a retry never makes two. With --watch, --json prints the batch and
        then the watch's events, one JSON object a line, and --timeout,
        --plain, --interval and the other options of 'cbatch watch' bound and
        shape the watch (a CI step: --watch --plain --timeout 2h). With
        --retry-failed N, each attempt is watched and what failed is retried
        (as 'cbatch retry --watch --rounds N'), with a pause that doubles
        between rounds.

        With --idempotency-key KEY (a CI step that may be retried), running
        the same command again with the same KEY, input and options prints
        the batch the first run made (one stopped after its upload is carried
        on, uploading nothing), on this machine or any other; the same KEY
        with another input or option is refused (exit 17), naming what differs.

        With --file, records that cannot fit the model's context length are
        refused before the upload (exit 5, each as FILE:LINE); records whose
        size already proves they fit are not tokenized, so the check is cheap.
        --max-cost and --max-input-tokens count every record with the model's
        tokenizer (see 'cbatch estimate') and refuse a batch over budget.
        --dry-run runs every check of --file (with --split, the split plan
        too) and sends nothing: exit 0 when the create would go ahead, the
        check's own code otherwise.

        With --from, each row of a table (CSV, Parquet, JSONL of objects, or
        a folder of them) becomes one chat request whose user message is
        --prompt (or --prompt-file) rendered with the row's columns; the
        requests then go exactly as a --file would. A column the template
        names that the table lacks is refused (exit 2), and so is a null the
        template uses without a default (exit 5): nothing is sent. The
        generation options (--max-tokens, --temperature, --p, --k, --seed,
        --stop-sequence, --thinking-budget...) set their field of every
        request, a value outside the API's range refused (exit 2). --schema
        FILE asks for answers that follow a JSON Schema; a schema that breaks
        one of Cohere's rules is refused (exit 2), naming the part at fault.
        --embed COLUMN makes each row's text in COLUMN one embed request
        instead (--embed-input-type, --embed-types, --embed-truncate,
        --embed-max-tokens). With --split (or --max-*-per-batch) a table runs
        as a job, its rendered requests split as a file's.

        Examples:

          cbatch create --name nightly --dataset requests-3kd9xq --model command-r-08-2024

          cbatch create --file requests.jsonl --model command-r-08-2024 --watch

          cbatch create --file requests.jsonl --watch --plain --timeout 2h

          cbatch create --file requests.jsonl --model command-r-08-2024 --retry-failed 3 --watch

          cbatch create --file requests.jsonl --model command-r-08-2024 --max-cost 25

          cbatch create --from reviews.csv --prompt 'Classify: {{ text }}' --model command-r-08-2024

          cbatch create --from docs.parquet --embed text --embed-types float,int8 --model embed-english-v3.0
        """
        import dataclasses

        from ..engine import default_name, plain_dataset_name

        state = get_state(ctx)
        lines = json_out and watch  # the batch, then events: one JSON object a line
        out = state.out.set_mode(json_out=json_out and not lines, jsonl=jsonl or lines, quiet=quiet)
        spec = dataclasses.replace(spec, json_lines=json_out or jsonl)
        if (dataset is not None) + (file is not None) + (table is not None) != 1:
            raise UsageError(
                "give exactly one of --dataset DATASET_ID, --file FILE or --from TABLE"
            )
        if dry_run and ((file is None and table is None) or watch):
            raise UsageError(
                "--dry-run checks a --file or a --from table and sends nothing: "
                "it takes neither --dataset nor --watch"
            )
        if not watch:
            refuse_watch_options(spec, "add --watch")
        if retry_failed and not watch:
            raise UsageError("--retry-failed needs --watch: a round waits for the batch before it")
        as_job = wants_job(split, max_records_per_batch, max_bytes_per_batch)
        if idempotency_key is not None and dataset is not None:
            raise UsageError("--idempotency-key goes with --file or --from, not --dataset")
        if table is not None:
            hand_over("table", "create --split" if as_job else "create", table)
            dataset_type = table.dataset_type
        source = (
            file if table is None else table.table
        )  # what messages and the default name come from
        if as_job:  # a job: 'cbatch jobs create' by another name
            from ._jobs import dry_run_job, job_options, start_job

            if source is None:
                raise UsageError(
                    "--split and --max-*-per-batch cut a --file or a --from table into a job of batches, not a dataset"
                )
            if (
                max_cost is not None
                or max_input_tokens is not None
                or strict_context
                or tokenizer is not None
            ):
                raise UsageError(
                    "--max-cost, --max-input-tokens, --strict-context and --tokenizer do not cover a job's parts yet",
                    hint=f"check the whole input first: cbatch estimate {file} --model MODEL --max-cost AMOUNT"
                    if table is None
                    else "check the whole table first: cbatch estimate --from TABLE, with the same --prompt or --embed, and --max-cost AMOUNT",
                )
            job = job_options(
                state, label=name or default_name(source), model=model, dataset_type=dataset_type,
                max_records=max_records_per_batch, max_bytes=max_bytes_per_batch, wait_lock=wait_lock,
                context_check=context_check,
            )  # fmt: skip
            if dry_run:
                dry_run_job(state, source, job, table=table, ctx=ctx)
                return
            if watch:
                hand_over("watch", "create --split --watch", spec)
            rounds = retry_options(
                state, rounds=retry_failed, pause=pause, match=match, missing=missing, wait_lock=None,  # JobOptions holds --wait-lock
                rounds_flag="--retry-failed",
            )  # fmt: skip
            hand_over("values", "create --split", (job, rounds))
            raise typer.Exit(start_job(
                state, source, job, watch=watch, retry=rounds, json_out=json_out, quiet=quiet, spec=spec,
                table=table, ctx=ctx, key=key_options(idempotency_key, table),
            ))  # fmt: skip
        if name is not None and not name.strip():
            raise UsageError(
                "--name is empty; give a name, or leave --name out to use the file's name"
            )
        model = model or state.settings().model.value
        if not model:
            raise UsageError(
                "--model is required (or set CBATCH_MODEL, or 'model' in your profile)"
            )
        asked = retry_options(
            state, rounds=retry_failed, pause=pause, match=match, missing=missing, wait_lock=wait_lock,
            model=model, rounds_flag="--retry-failed",
        )  # a bad pattern (or a round's option without rounds) is refused before anything is sent  # fmt: skip
        retry = asked if retry_failed else None
        guarded = (
            max_cost is not None
            or max_input_tokens is not None
            or strict_context
            or tokenizer is not None
        )
        if file is None and table is None and guarded:
            raise UsageError(
                "--max-cost, --max-input-tokens, --strict-context and --tokenizer go with --file"
            )
        if dataset is not None and (dataset_type is not None or not context_check):
            raise UsageError(  # a dataset was typed and validated when it was uploaded
                f"{'--type' if dataset_type is not None else '--no-context-check'} goes with --file or --from, not --dataset"
            )
        if dataset is not None and wait_lock is not None and not retry_failed:
            raise UsageError(
                "--wait-lock waits for another cbatch sending the same run: a batch from --dataset sends nothing "
                "that takes the lock (its --retry-failed rounds do)"
            )
        rendered = None  # a table run's requests, and what is recorded once they are sent
        if table is not None:
            from ._tables import render_table

            # Rendered whole before anything is sent: a missing column or a null stops it here.
            rendered = render_table(ctx, state, table, model, record=not dry_run, check=True)
            file = rendered.file
        if watch:
            hand_over(
                "watch", "create --watch --retry-failed" if retry_failed else "create --watch", spec
            )
        client = state.client()
        from ..engine import check_model

        check_model(client, model, state.cache_scope(), out)  # a typo is refused before any upload
        if file is not None:
            from ..engine import create_from_file, send_lock
            from ._options import send_spec

            label = name or default_name(source or file)
            send = send_spec(
                state, file=file, model=model, name=label,
                dataset_name=plain_dataset_name(label) if name or table is not None else None,
                dataset_type=dataset_type, source=None if table is None else source,
                label=table.label if table is not None else None, max_cost=max_cost,
                max_input_tokens=max_input_tokens, context_check=context_check, strict_context=strict_context,
                tokenizer=tokenizer, wait_lock=wait_lock,
                carry_on=None
                if table is not None  # the same create carries on, not create --dataset (send_file.py)
                else lambda dataset_id: _create_again(
                    state, dataset_id, model, label, spec, retry, watch=watch
                ),
                key=key_options(idempotency_key, table),
                checked=rendered.checked if rendered is not None else None,
                table_fields=rendered.fields() if rendered is not None and not dry_run else (),
            )  # fmt: skip
            hand_over("values", "create --file", (send, retry))
            if dry_run:  # every check of the send, from the same value; nothing sent
                from ..engine import DryRun, dry_run_create

                run = DryRun(
                    label=send.name, model=send.model, guard=send.guard, dataset_type=send.dataset_type,
                    budget=send.budget, limits=send.limits, source_label=send.label,
                    checked=send.checked,
                )  # fmt: skip
                dry_run_create(client, file, out, run)
                return
            # One cbatch at a time sends a batch of one name from this machine, for the rest of the command.
            ctx.with_resource(send_lock(send))
            sent = create_from_file(client, send, out, watching=spec if watch else None)
            batch = sent.batch
            if rendered is not None:  # what results needs to write the table again
                rendered.sent(sent.dataset_id, out)
            if not sent.found and not out.for_machines:
                out.info(f"created batch {batch.id}")
        else:
            from ..engine import DATASET, act_on, create_batch, remember_new_batch

            assert dataset is not None
            label = name or dataset
            # Tried as an id by the create call itself (no call more on the usual path); a
            # dataset it does not know is then looked up by prefix and name, and created from.
            batch = act_on(
                client, dataset, DATASET, out,
                lambda dataset_id: create_batch(client, name=label, dataset_id=dataset_id, model=model, reporter=out),
            )  # fmt: skip
            remember_new_batch(batch, out)  # a store that fails is a warning: the id is still shown
            if not out.for_machines:
                out.info(f"created batch {batch.id}")
        show_batch(state, batch)
        if watch and retry is not None:
            from ._retrying import retry_command, run_rounds

            resume = retry_command(state, batch.id, retry, spec=spec)
            code = run_rounds(
                state, batch.id, retry, spec=spec, quiet=quiet, resume=resume, first_shown=True
            )
            raise typer.Exit(code)
        if watch:
            from ._watching import run_watch

            # With -q, stdout holds the id alone; the watch goes to stderr.
            raise typer.Exit(run_watch(state, [batch.id], spec, to_stderr=quiet))

    @app.command("list", rich_help_panel="Batches")
    @command_errors
    def list_batches(
        ctx: typer.Context,
        limit: Annotated[
            int, typer.Option("--limit", "-l", min=1, help="Show at most this many batches.")
        ] = 20,
        all_: Annotated[
            bool, typer.Option("--all", "-a", help="Follow every page: all batches.")
        ] = False,
        order_by: Annotated[
            OrderBy, typer.Option("--order-by", help="created_at or updated_at (newest first).")
        ] = OrderBy.created_at,
        status: StatusOpt = None,
        name: Annotated[
            str | None, typer.Option("--name", help="Only batches whose name contains this text.")
        ] = None,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                help="Only batches run with this model (its exact name, any case).",
                show_default=False,
            ),
        ] = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        expiring: Annotated[
            float | None,
            typer.Option(
                "--expiring",
                parser=parse_duration,
                metavar="DURATION",
                help="Only batches whose results expire within DURATION (3d, 12h), with a RESULTS EXPIRE column.",
                show_default=False,
            ),
        ] = None,
        watch: Annotated[
            bool,
            typer.Option(
                "--watch",
                "-w",
                help="After the listing, add a row each time a batch changes (as kubectl get -w), until Ctrl-C.",
            ),
        ] = False,
        interval: IntervalOpt = DEFAULT_INTERVAL,
        json_out: JsonOpt = False,
        jsonl: JsonlOpt = False,
        quiet: QuietOpt = False,
        fmt: FormatOpt = None,
        query: QueryOpt = None,
        raw: RawOpt = False,
    ) -> None:
        """List batches, newest first.

        Filters run on this side (the API has none), over as many pages as it
        takes to find --limit matches, or every page with --all. Results
        expire with their output dataset, 30 days (the dataset_ttl setting)
        after the batch ended: --expiring tells from each batch's own times,
        with no request per batch.

        Examples:

          cbatch list --status in_progress

          cbatch list --all -q --status queued | cbatch cancel -

          cbatch list --watch --status in_progress

          cbatch list --all --jsonl > batches.jsonl

          cbatch list --all --format csv > batches.csv

          cbatch list --query "[?status=='BATCH_STATUS_FAILED'].id"

          cbatch list --expiring 3d
        """
        from .. import BatchStatus
        from ..engine import PageCursor, expired, now_utc, results_expire_at
        from ..output.batch_views import (
            BATCH_COLUMNS,
            BATCH_CSV_FIELDS,
            BATCH_PLAIN_COLUMNS,
            results_expiry_column,
        )
        from ._completion import MAX_IDS, remember

        state = get_state(ctx)
        out = state.out.set_mode(
            json_out=json_out, jsonl=jsonl, quiet=quiet, fmt=fmt, query=query, raw=raw
        )
        wanted = {BatchStatus.parse_user(s) for s in status or []}
        unknown = [s for s in wanted if not s.is_known]
        if unknown:
            raise UsageError(
                f"unknown status {unknown[0].label!r}; use queued, in_progress, canceling, completed, failed or canceled"
            )
        if since is not None and until is not None and since >= until:
            raise UsageError("--since must be before --until: nothing was created in between")
        ttl = state.settings().limits.dataset_ttl
        filtered = bool(wanted or name or model or since or until or expiring)
        page_size = 1000 if (all_ or filtered) else min(limit, 1000)
        cursor = PageCursor()
        stream = state.client().iter_batches(
            page_size=page_size, order_by=order_by.value, on_page=cursor.page
        )
        seen: list[tuple[str, str, str]] = []
        cut: list[str] = []

        def matches(batch: Batch) -> bool:
            """The filters a batch's changes cannot make stale (all but --expiring)."""
            if wanted and batch.status not in wanted:
                return False
            if name and name.lower() not in batch.name.lower():
                return False
            if model and model.lower() != (batch.model or "").lower():
                return False
            created = batch.created_at
            if since is not None and (created is None or created < since):
                return False
            return not (until is not None and (created is None or created >= until))

        def kept(batch: Batch) -> bool:
            if not matches(batch):
                return False
            if expiring is not None:
                ends = results_expire_at(batch, ttl)
                if ends is None or expired(ends) or (ends - now_utc()).total_seconds() > expiring:
                    return False
            return True

        def selected() -> Any:
            shown = 0
            newest_first = order_by is OrderBy.created_at
            for batch in stream:
                cursor.took()
                created = batch.created_at
                if since is not None and newest_first and created is not None and created < since:
                    return  # newest first: every batch after this one is older still
                if not kept(batch):
                    continue
                if len(seen) < MAX_IDS:
                    seen.append((batch.id, batch.name, batch.status.label))
                yield batch
                shown += 1
                if not all_ and shown >= limit:
                    notice = cursor.cut_notice(shown, kept if filtered else None)
                    cut.extend([notice] if notice else [])
                    return

        if watch and out.mode in ("json", "csv"):
            raise UsageError(
                "--watch adds rows as batches change: use the table, plain lines, --jsonl or -q"
            )

        def then_changes() -> Any:
            from ..engine import watch_changes
            from ..output.printer import FLUSH

            listed = []
            for batch in selected():
                listed.append(batch)
                yield batch
            remember(seen, "batch", state.cache_scope())
            yield FLUSH  # the listing is all there: lay the table out now, rows follow as they come
            for notice in cut:
                out.info(notice)
            cut.clear()

            yield from watch_changes(state.client(), listed, keep=matches, interval=interval)

        out.items(
            then_changes() if watch else selected(),
            columns=BATCH_COLUMNS + ((results_expiry_column(ttl),) if expiring is not None else ()),
            plain_columns=BATCH_PLAIN_COLUMNS,
            csv_fields=BATCH_CSV_FIELDS,
            raw=lambda b: b.raw,
            item_id=lambda b: b.id,
            empty="no batches match" if filtered else "no batches yet",
        )
        remember(seen, "batch", state.cache_scope())
        for notice in cut:  # a pipe that stopped at --limit must not look like every batch
            out.info(notice)

    @app.command("get", rich_help_panel="Batches")
    @command_errors
    def get(
        ctx: typer.Context,
        batch_ids: BatchIdsArg,
        json_out: JsonOpt = False,
        jsonl: JsonlOpt = False,
        quiet: QuietOpt = False,
        query: QueryOpt = None,
        raw: RawOpt = False,
    ) -> None:
        """Show every field of a batch: status, progress, token counts, datasets.

        Fields the API adds later are shown too, and for a batch in a chain of
        retries its attempt, the batch it retries and the one that retried it
        (from its name and the local state store). With --json, the batch
        exactly as the API sent it (token counts stay strings). Several ids
        ('-' reads them from standard input, one a line) print each batch in
        turn: --json one array, --jsonl one line each.

        Examples:

          cbatch get 9439e0e3-49a4-4336-93e3-485fc420bc18

          cbatch get 9439e0e3-49a4-4336-93e3-485fc420bc18 --json | jq .status

          cbatch get 9439e0e3-49a4-4336-93e3-485fc420bc18 --query status --raw

          cbatch get 9439e0e3

          cbatch list -q --status failed | cbatch get - --jsonl
        """
        from ..engine import BATCH, act_on, resolve_ids

        state = get_state(ctx)
        out = state.out.set_mode(json_out=json_out, jsonl=jsonl, quiet=quiet, query=query, raw=raw)
        client = state.client()
        given = ids_from_stdin(batch_ids)
        if len(given) == 1:  # one id: one object, as always
            batch = act_on(client, given[0], BATCH, out, client.get_batch)
            show_batch(state, batch, lineage=not out.for_machines)
            return
        if not given:
            out.info("no batch ids on standard input: nothing to show")
        # every batch read before any is shown: a missing one fails the command with nothing half-printed
        batches = [client.get_batch(i) for i in resolve_ids(client, given, BATCH, out)]
        if json_out or (query is not None and not jsonl):
            out.document([b.raw for b in batches])
            return
        for n, batch in enumerate(batches):
            if n and not out.for_machines:  # field views apart: a blank line between
                out.line("")
            show_batch(state, batch, lineage=not out.for_machines)

    @app.command("cancel", rich_help_panel="Batches")
    @command_errors
    @watch_options
    def cancel(
        ctx: typer.Context,
        spec: WatchSpec,
        batch_ids: RunIdsArg,
        wait: Annotated[
            bool, typer.Option("--wait", help="Wait until each batch reaches a terminal state.")
        ] = False,
        yes: Annotated[
            bool,
            typer.Option(
                "--yes", "-y", help="Cancel what a short id or a name matches without asking."
            ),
        ] = False,
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
        line. '-' reads ids from standard input, one a line (none: nothing to
        do, exit 0). A short id or a name is cancelled only after a yes at a
        terminal, or with --yes. A job id cancels the job as 'cbatch jobs
        cancel JOB_ID' does: no part is sent after it, and every part still
        running is cancelled (the outcomes name the job).

        Examples:

          cbatch cancel 9439e0e3-49a4-4336-93e3-485fc420bc18 --wait

          cbatch list --all -q --status queued | cbatch cancel -
        """
        import dataclasses

        from ..engine import BATCH, cancel_batches, lone_run, resolve_ids
        from ._errors import exit_code_for, message_for

        state = get_state(ctx)
        lines = jsonl or (json_out and wait)
        out = state.out.set_mode(json_out=json_out and not lines, jsonl=lines)
        if not wait:
            refuse_watch_options(spec, "add --wait")
        # a cancel asked for and done is a success, however the batch ended
        spec = dataclasses.replace(spec, json_lines=lines, no_exit_status=True)
        if wait:
            hand_over("watch", "cancel --wait", spec)
        batch_ids = ids_from_stdin(batch_ids)
        if not batch_ids:
            out.info("no batch ids on standard input: nothing to cancel")
            if json_out and not lines:
                out.document([])
            raise typer.Exit(ExitCode.OK)
        if (run := lone_run(state.client(), batch_ids, "cancel")) is not None:
            raise typer.Exit(
                _cancel_job(state, *run, spec, wait=wait, json_out=json_out, lines=lines)
            )
        batch_ids = resolve_ids(state.client(), batch_ids, BATCH, out, confirm="cancel", yes=yes)
        first_failure = ExitCode.OK
        outcomes: list[dict[str, Any]] = []
        for outcome in cancel_batches(state.client(), batch_ids):
            if outcome.error is not None:
                first_failure = first_failure or exit_code_for(outcome.error)
                message = message_for(outcome.error)
                record: dict[str, Any] = {
                    "id": outcome.batch_id,
                    "cancel_requested": False,
                    "error": message,
                }
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

            code = run_watch(state, accepted, spec)
            first_failure = first_failure or code
        raise typer.Exit(first_failure)


def _cancel_job(
    state: CliState,
    job: JobRecord,
    store: StateStore,
    spec: WatchSpec,
    *,
    wait: bool,
    json_out: bool,
    lines: bool,
) -> ExitCode:
    """``cancel JOB``: the job cancelled as ``jobs cancel`` does; outcomes as for batches, each naming the job."""
    from ._jobs import cancel_run, follow_job

    outcomes = [
        {"id": batch_id, "job_id": job.id, "cancel_requested": error is None}
        | ({} if error is None else {"error": error})
        for batch_id, error in cancel_run(state, job, store)
    ]
    for record in outcomes if lines else ():
        state.out.json_line(record)
    if json_out and not lines:
        state.out.document(outcomes)
    code = ExitCode.REFUSED if any(not o["cancel_requested"] for o in outcomes) else ExitCode.OK
    if wait:
        watched = follow_job(state, job, store, None, spec)
        code = code or watched
    return code
