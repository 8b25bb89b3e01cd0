"""Running a watch from any command: ``watch``, ``create --watch``, ``cancel --wait``, ``results --wait``.

The task (:func:`cohere_batch_cli.tasks.watching.follow`) does the watching;
what lives here is what only the command line knows: the exact ``cbatch
watch`` command that picks the watch up again, with the global options this
run was given.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..exit_codes import ExitCode
from ..units import format_duration
from ..watcher import WatchOptions
from ._context import CliState
from ._options import (
    DEFAULT_INTERVAL,
    DEFAULT_MAX_INTERVAL,
    DEFAULT_OUTAGE_LIMIT,
    DEFAULT_PROGRESS_EVERY,
)


def global_args(state: CliState | None) -> list[str]:
    """``cbatch`` and the global options that a command printed for the user must repeat."""
    args = ["cbatch"]
    if state is not None and state.profile:
        args += ["--profile", state.profile]
    if state is not None and state.base_url:
        args += ["--base-url", state.base_url]
    return args


def resume_command(
    state: CliState | None,
    batch_ids: Sequence[str],
    options: WatchOptions,
    *,
    plain: bool | None = None,
    json_lines: bool = False,
    records_count: bool = False,
) -> str:
    """The exact ``cbatch watch`` command that picks this watch up again."""
    args = [*global_args(state), "watch", *batch_ids]
    if json_lines:
        args.append("--json")
    elif plain:
        args.append("--plain")
    if options.interval != DEFAULT_INTERVAL:
        args += ["--interval", format_duration(options.interval)]
    if options.max_interval != max(options.interval, DEFAULT_MAX_INTERVAL):
        args += ["--max-interval", format_duration(options.max_interval)]
    if options.timeout is not None:
        args += ["--timeout", format_duration(options.timeout)]
    if options.outage_limit != DEFAULT_OUTAGE_LIMIT:
        args += ["--outage-limit", format_duration(options.outage_limit)]
    if options.no_exit_status:
        args.append("--no-exit-status")
    if records_count:
        args.append("--fail-on-records")
    return shlex.join(args)


def run_watch(
    state: CliState,
    batch_ids: Sequence[str],
    *,
    plain: bool | None = None,
    json_lines: bool = False,
    to_stderr: bool = False,
    timeout: float | None = None,
    interval: float = DEFAULT_INTERVAL,
    max_interval: float = DEFAULT_MAX_INTERVAL,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
    no_exit_status: bool = False,
    progress_every: float = DEFAULT_PROGRESS_EVERY,
    on_done: str | None = None,
    records_count: bool = False,
    resume: str | None = None,
) -> ExitCode:
    """Watch ``batch_ids`` to the end in the style asked for; return the exit code of the outcome.

    ``to_stderr`` sends plain lines to stderr, for a command whose stdout holds
    its own data. ``plain`` forces plain lines; ``json_lines`` wins over both.
    ``on_done`` is a shell command run as each batch ends (:mod:`..tasks.notify`).
    ``records_count`` makes records that failed or never came back exit 12.
    ``resume`` replaces the ``cbatch watch`` command printed on Ctrl-C (a
    command that does more than watch is resumed by running it again).
    """
    from ..tasks.watching import follow

    ids = list(dict.fromkeys(batch_ids))
    options = WatchOptions(
        interval=interval,
        max_interval=max(interval, max_interval),
        timeout=timeout,
        outage_limit=outage_limit,
        no_exit_status=no_exit_status,
    )
    state.out.set_watch_style(
        plain=plain,
        json_lines=json_lines and not to_stderr,
        to_stderr=to_stderr,
        progress_every=progress_every,
    )
    if resume is None:
        resume = resume_command(
            state, ids, options, plain=plain, json_lines=json_lines, records_count=records_count
        )
    hook = None
    if on_done:
        from ..tasks.notify import OnDone

        hook = OnDone(on_done, state.out)
    return follow(
        state.client(),
        ids,
        state.out,
        options=options,
        resume=resume,
        retries=state.retries,
        on_done=hook,
        records_count=records_count,
    )
