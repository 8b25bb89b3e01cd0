"""``cbatch retry``: send again only the records of a finished batch that failed or never came back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._context import get_state
from ._errors import command_errors
from ._options import (
    DEFAULT_PAUSE,
    InvalidOpt,
    JsonlOpt,
    JsonOpt,
    MatchOpt,
    MissingOpt,
    PauseOpt,
    QuietOpt,
    RunIdArg,
    WaitLockOpt,
    hand_over,
    refuse_watch_options,
    retry_options,
    watch_options,
)

if TYPE_CHECKING:
    from ..engine import WatchSpec


def register(app: typer.Typer) -> None:
    @app.command("retry", rich_help_panel="Batches")
    @command_errors
    @watch_options
    def retry(
        ctx: typer.Context,
        spec: WatchSpec,
        batch_id: RunIdArg,
        match: MatchOpt = None,
        missing: MissingOpt = True,
        invalid: InvalidOpt = False,
        input_file: Annotated[
            Path | None,
            typer.Option(
                "--input",
                "-i",
                help="The batch's input file (default: the file cbatch recorded, else the batch's input dataset).",
                dir_okay=False,
                show_default=False,
            ),
        ] = None,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help="Model of the new batch [default: the retried batch's].",
                show_default=False,
            ),
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run", "-n", help="Say what would be sent again and why; send nothing."
            ),
        ] = False,
        watch: Annotated[
            bool,
            typer.Option(
                "--watch",
                "-w",
                help="Follow the new batch to its end, and retry again for --rounds.",
            ),
        ] = False,
        rounds: Annotated[
            int,
            typer.Option(
                "--rounds",
                min=1,
                max=100,
                help="With --watch: retry what still fails, up to this many attempts.",
            ),
        ] = 1,
        pause: PauseOpt = DEFAULT_PAUSE,
        wait_lock: WaitLockOpt = None,
        json_out: JsonOpt = False,
        jsonl: JsonlOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        """Send again only the records of a finished batch that failed or never came back.

        Compares the batch's input with the output of every attempt so far,
        and creates a new batch on the same model with just the records whose
        latest attempt failed (or that have no result), same custom_ids and
        bodies, named "NAME [retry N of ROOT]". Every failure is retried
        unless --match picks some by their error text: the API marks none as
        transient. A run made with --schema counts an answer that breaks the
        schema as failed: it is sent again with the failures, and --invalid
        sends only those answers again. The input is the --input file, else the file cbatch
        recorded when it created the batch (refused if it changed), else the
        batch's input dataset. Run on any attempt of a chain, it goes on from
        the newest. Running it again after an interruption never makes a
        second batch for one attempt: it says where it resumed.

        Exit codes: 0 created (or nothing to send); with --watch, 0 when
        every record succeeded and 12 when some still fail after the last
        round; 5 while the newest attempt still runs; as 'cbatch watch'
        otherwise.

        A job id (as 'cbatch jobs create' printed it) retries the job as
        'cbatch jobs retry JOB_ID' does: what failed in every part (with
        --invalid, only the answers that break the table job's schema) is
        sent again and the retries are watched together, for --rounds
        (--watch or not); --dry-run lists what would be sent again, part by
        part, as 'jobs retry --dry-run' does; --input is the job's input
        file; --model has no meaning for a job and is refused.

        Examples:

          cbatch retry 9439e0e3-49a4-4336-93e3-485fc420bc18 --dry-run

          cbatch retry 9439e0e3-49a4-4336-93e3-485fc420bc18 --match 'timed out|internal'

          cbatch retry 9439e0e3-49a4-4336-93e3-485fc420bc18 --watch --rounds 3

          cbatch retry 9439e0e3-49a4-4336-93e3-485fc420bc18 --invalid --watch
        """
        import dataclasses

        from .. import UsageError
        from ..engine import (
            RecordsStillFailing,
            find_run,
            mark_done,
            open_store_or_warn,
            retry_once,
        )
        from ._retrying import report_attempt, retry_command, run_rounds, show_dry_run

        state = get_state(ctx)
        if (run := find_run(state.client(), batch_id)) is not None:
            if model is not None:
                raise UsageError(
                    f"--model has no meaning for job {batch_id}: its parts are retried on the job's model",
                    hint=f"leave it out, or give one part's batch id (cbatch jobs get {batch_id})",
                )
            state.out.set_mode(jsonl=json_out or jsonl, quiet=quiet)
            spec = dataclasses.replace(spec, json_lines=json_out or jsonl)
            from ._jobs import dry_run_job_retry, retry_run

            retry = retry_options(
                state, rounds=rounds, pause=pause, match=match, missing=missing, wait_lock=wait_lock,
                invalid=invalid,
            )  # fmt: skip
            if dry_run:
                if watch:
                    raise UsageError("--dry-run sends nothing: there is nothing to --watch")
                refuse_watch_options(spec, "leave out --dry-run")
                dry_run_job_retry(state, *run, file=input_file, retry=retry)
                return
            hand_over("watch", "retry JOB", spec)
            hand_over("values", "retry JOB", (retry,))
            code = retry_run(state, *run, spec, file=input_file, retry=retry, quiet=quiet)
            raise typer.Exit(code)
        lines = (json_out or jsonl) and watch and not dry_run
        out = state.out.set_mode(json_out=json_out and not lines, jsonl=jsonl or lines, quiet=quiet)
        spec = dataclasses.replace(spec, json_lines=lines)
        if not watch:
            refuse_watch_options(spec, "add --watch")
        if rounds > 1 and not watch:
            raise UsageError("--rounds needs --watch: a round waits for the batch before it")
        if pause != DEFAULT_PAUSE and not watch:
            raise UsageError("--pause is the wait between rounds: it needs --watch --rounds N")
        if dry_run and watch:
            raise UsageError("--dry-run sends nothing: there is nothing to --watch")
        from ..engine import BATCH, resolve_id

        options = retry_options(
            state, rounds=rounds, pause=pause, match=match, missing=missing, wait_lock=wait_lock,
            model=model, input_file=input_file, dry_run=dry_run, invalid=invalid,
        )  # a bad pattern is refused before any call  # fmt: skip
        hand_over("values", "retry", (options,))
        batch_id = resolve_id(state.client(), batch_id, BATCH, out)
        if watch:
            hand_over("watch", "retry --watch", spec)
            resume = retry_command(state, batch_id, options, spec=spec)
            code = run_rounds(state, batch_id, options, spec=spec, quiet=quiet, resume=resume)
            raise typer.Exit(code)
        store = open_store_or_warn(out, "the retry's progress")
        if dry_run:
            show_dry_run(state, batch_id, options, store)
            return
        outcome = retry_once(state.client(), batch_id, out, options, store=store)
        if outcome.batch is None:
            selection = outcome.selection
            if selection is not None and selection.still_failing:
                raise RecordsStillFailing(
                    f"{selection.still_failing:,} records still fail and none of them is picked ({options.rule.describe()})",
                    hint=f"see them with: cbatch results {outcome.chain.root.id} --failed-only",
                )
            return
        report_attempt(state, outcome)
        mark_done(store, outcome)
