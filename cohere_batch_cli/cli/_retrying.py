"""Retry rounds from any command: ``retry --watch`` and ``create --retry-failed N --watch``.

The task (:func:`cohere_batch_cli.tasks.retrying.retry_rounds`) does the
rounds; what lives here is what only the command line knows: how each
attempt is shown, and the exact ``cbatch retry`` command that resumes the
rounds after an interruption (the same command, for ``retry`` itself).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import ExitCode
from ._context import CliState
from ._options import DEFAULT_PAUSE, format_duration
from ._show import show_batch
from ._watching import global_args, watch_args

if TYPE_CHECKING:
    from .. import Batch
    from ..engine import RetryOptions, RetryOutcome, StateStore, WatchSpec


def retry_command(
    state: CliState,
    batch_id: str,
    options: RetryOptions,
    *,
    spec: WatchSpec,
) -> str:
    """The ``cbatch retry ... --watch`` command that goes on with the rounds from where they stopped."""
    args = [*global_args(state), "retry", batch_id]
    if options.rule.pattern is not None:
        args += ["--match", options.rule.pattern]
    if not options.rule.failed:
        args.append("--invalid")
    elif not options.rule.missing:
        args.append("--no-missing")
    if options.input is not None:
        args += ["--input", str(options.input)]
    if options.model is not None:
        args += ["--model", options.model]
    args.append("--watch")
    if options.rounds != 1:
        args += ["--rounds", str(options.rounds)]
    if options.pause != DEFAULT_PAUSE:
        args += ["--pause", format_duration(options.pause)]
    args += watch_args(spec)
    return shlex.join(args)


def report_attempt(
    state: CliState, outcome: RetryOutcome, *, json_lines: bool = False, fields: bool = True
) -> None:
    """What one attempt came to: resumed or created, and the batch (a line of JSON, its id, or its fields)."""
    out = state.out
    batch = outcome.batch
    if batch is None:
        return
    words = f"batch {batch.id}: attempt {outcome.attempt} of {outcome.chain.root.id}"
    if outcome.resumed is not None and outcome.resumed.startswith("attempt"):
        out.info(f"resumed: {outcome.resumed}")
    else:
        out.info(
            f"created {words}, retrying {outcome.records:,} record{'' if outcome.records == 1 else 's'}"
        )
    if json_lines:
        out.json_line(batch.raw)
    elif fields or out.for_machines:
        show_batch(state, batch)


def run_rounds(
    state: CliState,
    batch_id: str,
    options: RetryOptions,
    *,
    spec: WatchSpec,
    quiet: bool,
    resume: str,
    first_shown: bool = False,
) -> ExitCode:
    """``options.rounds`` rounds of retries of ``batch_id``, every attempt watched as ``spec`` says; the exit code.

    ``first_shown``: the first batch (a ``create``'s) is already on stdout.
    Records still failing after the last round are the error line and exit 12
    (with ``--no-exit-status``, a line and 0). ``spec``'s deadline bounds the
    rounds, their pauses and their watches: when it falls, exit 10 and the
    command that goes on.
    """
    from ..engine import open_store_or_warn, retry_rounds, still_failing_error, stop_word
    from ._watching import run_watch

    out = state.out
    store = open_store_or_warn(out, "the retry's progress")
    attempts = 0

    json_lines = spec.json_lines
    each = spec.strict()  # each attempt judged as it ended; --no-exit-status applies to the rounds

    def watch(batch: Batch) -> ExitCode:
        return run_watch(state, [batch.id], each, to_stderr=quiet, resume=resume, final=False)

    def on_attempt(outcome: RetryOutcome) -> None:
        nonlocal attempts
        attempts += 1
        report_attempt(
            state, outcome, json_lines=json_lines, fields=not first_shown and attempts == 1
        )

    try:
        result = retry_rounds(
            state.client(),
            batch_id,
            out,
            options,
            watch=watch,
            spec=spec,
            store=store,
            on_attempt=on_attempt,
        )
    except KeyboardInterrupt as exc:
        out.info(f"\n{stop_word(exc)}: nothing was cancelled; go on with the rounds with: {resume}")
        raise
    if result.exit_code == ExitCode.TIMEOUT and result.stopped is not None:
        out.info(
            f"--timeout ran out {result.stopped}; nothing was cancelled; go on with the rounds with: {resume}"
        )
    if result.exit_code in (
        ExitCode.INTERRUPTED,
        ExitCode.TERMINATED,
        ExitCode.HANGUP,
        ExitCode.TIMEOUT,
    ):
        return result.exit_code
    if result.exit_code == ExitCode.RECORDS_FAILED and result.still_failing:
        root = result.outcomes[-1].chain.root.id if result.outcomes else batch_id
        error = still_failing_error(result.still_failing, root)
        if spec.no_exit_status:
            out.info(f"{error} ({error.hint}); --no-exit-status: exit 0")
            return ExitCode.OK
        raise error
    succeeded = result.succeeded_words()
    if succeeded is not None:
        out.info(succeeded)
    return spec.forgive(result.exit_code)


def show_dry_run(
    state: CliState, batch_id: str, options: RetryOptions, store: StateStore | None
) -> None:
    """What would be sent again, a record a line (custom_id, why, the error), streamed from a file.

    The one dry run of a retry: ``retry --dry-run`` for a batch, and ``jobs retry --dry-run``
    for each part of a job.
    """
    import dataclasses
    import json
    import tempfile

    from ..engine import retry_once
    from ..output.printer import Column

    out = state.out
    with tempfile.TemporaryDirectory(prefix="cbatch-dry-run-") as folder:
        listing = Path(folder) / "listing.jsonl"
        outcome = retry_once(
            state.client(),
            batch_id,
            out,
            dataclasses.replace(options, listing=listing),
            store=store,
        )
        if outcome.batch is not None:  # an earlier run made the next attempt and never saw it end
            out.info(
                f"{outcome.resumed}; it is {outcome.batch.status.label}: nothing new would be sent until it ends"
            )
            return
        out.info(
            f"a retry would be batch {outcome.batch_name!r} on {outcome.model}, its input a dataset named {outcome.dataset_name!r}"
        )
        if outcome.selection is None or not listing.exists():
            return

        def records() -> Any:
            with open(listing, encoding="utf-8") as fh:
                for line in fh:
                    yield json.loads(line)

        out.items(
            records(),
            columns=(
                Column("CUSTOM_ID", lambda r: r["custom_id"]),
                Column("REASON", lambda r: r["reason"]),
                Column(
                    "ATTEMPT",
                    lambda r: "-" if r["attempt"] is None else str(r["attempt"]),
                    justify="right",
                ),
                Column("ERROR", lambda r: r["error"] or ""),
            ),
            csv_fields=("custom_id", "reason", "attempt", "error"),
            raw=lambda r: r,
            item_id=lambda r: r["custom_id"],
            empty="nothing would be sent again",
        )
