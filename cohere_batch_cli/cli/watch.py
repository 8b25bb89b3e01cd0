"""``cbatch watch``: follow batches until each one ends, and exit with their outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ._context import get_state
from ._errors import command_errors
from ._options import (
    EventsJsonOpt,
    FailOnRecordsOpt,
    JsonlOpt,
    complete_batch_id,
    hand_over,
    ids_from_stdin,
    watch_options,
)

if TYPE_CHECKING:
    from ..engine import CohereClient, WatchSpec
    from ..output.core import Output

WatchIdsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Batch ids, unique prefixes or exact names ('-' reads them from standard input, one a line), or one job id; none at a terminal: choose among the running batches.",
        metavar="[BATCH_ID...|JOB_ID]",
        autocompletion=complete_batch_id,
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``watch`` to the root app."""

    @app.command("watch", rich_help_panel="Batches")
    @command_errors
    @watch_options
    def watch(
        ctx: typer.Context,
        spec: WatchSpec,
        batch_ids: WatchIdsArg = None,
        json_lines: EventsJsonOpt = False,
        jsonl: JsonlOpt = False,
        fail_on_records: FailOnRecordsOpt = False,
    ) -> None:
        """Follow batches until every one has ended: completed, failed or canceled.

        Exit codes: 0 all completed (however many of their records failed), 8
        one failed, 9 one canceled, 10 --timeout ran out (batches keep
        running), 4 an id that does not exist (reported after a 10 s grace and
        dropped; the others are followed to the end), 12 with
        --fail-on-records when records failed or have no result (or, for a
        run made with --schema, answers break the schema), 130 Ctrl-C,
        143 SIGTERM, 129 SIGHUP (nothing is cancelled). With several outcomes,
        the worst: see 'cbatch help exit-codes'.
        With no id at a terminal, it offers the batches still running.
        A job id (as 'cbatch jobs create' printed it) follows every part of
        the job, as 'cbatch jobs watch JOB_ID' does, with every option above.
        --on-done runs a command as each batch ends, with CBATCH_BATCH_ID,
        CBATCH_BATCH_NAME, CBATCH_BATCH_STATUS, CBATCH_EXIT_CODE and more in
        its environment (docs/watch-and-ci.md lists them).

        Examples:

          cbatch watch 9439e0e3-49a4-4336-93e3-485fc420bc18

          cbatch watch ID1 ID2 ID3 --timeout 2h --plain

          cbatch list -q --status in_progress | cbatch watch -

          cbatch watch ID --json | jq -c 'select(.event == "status_changed")'

          cbatch watch ID --on-done 'notify-send "$CBATCH_BATCH_NAME: $CBATCH_BATCH_STATUS"'
        """
        import dataclasses

        from ..engine import BATCH, lone_run, resolve_ids
        from ._watching import run_watch

        state = get_state(ctx)
        spec = dataclasses.replace(
            spec, json_lines=json_lines or jsonl, fail_on_records=fail_on_records
        )
        hand_over("watch", "watch", spec)
        if batch_ids and not (batch_ids := ids_from_stdin(batch_ids)):
            state.out.info("no batch ids on standard input: nothing to watch")
            raise typer.Exit(0)
        if batch_ids and (run := lone_run(state.client(), batch_ids, "watch")) is not None:
            from ._jobs import watch_run

            if spec.json_lines:
                state.out.set_mode(jsonl=True)
            raise typer.Exit(watch_run(state, *run, spec))
        if batch_ids:
            ids = resolve_ids(state.client(), batch_ids, BATCH, state.out)
        else:
            ids = choose_running(state.client(), state.out)
        raise typer.Exit(run_watch(state, ids, spec))


def choose_running(client: CohereClient, reporter: Output) -> list[str]:
    """``cbatch watch`` with no id at a terminal: offer the batches still running, as ``gh run watch`` does."""
    from .. import BatchStatus, UsageError

    if not reporter.interactive:
        raise UsageError(
            "give one or more batch ids (at a terminal, 'cbatch watch' alone offers the running batches)"
        )
    running = [
        batch
        for batch in client.iter_batches(page_size=100, limit=1000)
        if not batch.status.is_terminal and batch.status != BatchStatus.UNSPECIFIED
    ]
    if not running:
        raise UsageError("no batch is running; watch a finished one by its id")
    reporter.info("Batches still running:")
    for n, batch in enumerate(running, 1):
        reporter.info(f"  {n:>3}  {batch.id}  {batch.status.label:<11}  {batch.name}")
    answer = reporter.ask("Watch which? (numbers, or Enter for all) ")
    if answer is None:
        raise UsageError("no batch chosen")
    if not answer.strip():
        return [b.id for b in running]
    chosen = []
    for word in answer.replace(",", " ").split():
        if not word.isdigit() or not 1 <= int(word) <= len(running):
            raise UsageError(f"{word!r} is not one of the numbers 1 to {len(running)}")
        chosen.append(running[int(word) - 1].id)
    return list(dict.fromkeys(chosen))
