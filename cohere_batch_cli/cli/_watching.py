"""Running a watch from any command: ``watch``, ``create --watch``, ``cancel --wait``, ``results --wait``.

The task (:func:`cohere_batch_cli.tasks.watching.follow`) does the watching;
what lives here is what only the command line knows: the exact ``cbatch
watch`` command that picks the watch up again, with the global options this
run was given.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .. import ExitCode
from ._context import CliState
from ._options import (
    DEFAULT_INTERVAL,
    DEFAULT_MAX_INTERVAL,
    DEFAULT_OUTAGE_LIMIT,
    DEFAULT_PROGRESS_EVERY,
    format_duration,
)

if TYPE_CHECKING:
    from .. import Batch
    from ..engine import BatchDone, WatchSpec


def global_args(state: CliState | None) -> list[str]:
    """``cbatch`` and the global options that a command printed for the user must repeat."""
    args = ["cbatch"]
    if state is not None and state.profile:
        args += ["--profile", state.profile]
    if state is not None and state.base_url:
        args += ["--base-url", state.base_url]
    return args


def watch_args(spec: WatchSpec, *, output: bool = True) -> list[str]:
    """The options that give a later command the same watch (``output``: with ``--json``/``--plain``)."""
    args: list[str] = []
    if output and spec.json_lines:
        args.append("--json")
    elif output and spec.plain:
        args.append("--plain")
    if spec.interval != DEFAULT_INTERVAL:
        args += ["--interval", format_duration(spec.interval)]
    if spec.max_interval != max(spec.interval, DEFAULT_MAX_INTERVAL):
        args += ["--max-interval", format_duration(spec.max_interval)]
    if spec.timeout is not None:
        args += ["--timeout", format_duration(spec.timeout)]
    if spec.outage_limit != DEFAULT_OUTAGE_LIMIT:
        args += ["--outage-limit", format_duration(spec.outage_limit)]
    if spec.progress_every != DEFAULT_PROGRESS_EVERY:
        args += ["--progress-every", format_duration(spec.progress_every)]
    if spec.no_exit_status:
        args.append("--no-exit-status")
    if spec.on_done:
        args += ["--on-done", spec.on_done]
    return args


def resume_command(state: CliState | None, batch_ids: Sequence[str], spec: WatchSpec) -> str:
    """The exact ``cbatch watch`` command that picks this watch up again."""
    args = [*global_args(state), "watch", *batch_ids, *watch_args(spec)]
    if spec.fail_on_records:
        args.append("--fail-on-records")
    return shlex.join(args)


def run_watch(
    state: CliState,
    batch_ids: Sequence[str],
    spec: WatchSpec,
    *,
    to_stderr: bool = False,
    resume: str | None = None,
    on_ends: Callable[[list[BatchDone]], None] | None = None,
    results: str | None = None,
    final: bool = True,
) -> ExitCode:
    """Watch ``batch_ids`` to the end as ``spec`` says; return the exit code of the outcome.

    The one watch driver of the command line: every command that watches
    comes here with its spec whole. ``to_stderr`` sends plain lines to
    stderr, for a command whose stdout holds its own data. ``resume``
    replaces the ``cbatch watch`` command printed on Ctrl-C (a command that
    does more than watch is resumed by running it again). ``on_ends`` hears,
    once a poll, of the batches that ended in it. ``results`` is the command
    that writes these batches' results together (a job's), named at their ends.
    """
    from ..engine import follow

    ids = list(dict.fromkeys(batch_ids))
    state.out.set_watch_style(
        plain=spec.plain or None,
        json_lines=spec.json_lines and not to_stderr,
        to_stderr=to_stderr,
        progress_every=spec.progress_every,
        results=results,
        final=final,
    )
    if resume is None:
        resume = resume_command(state, ids, spec)
    return follow(
        state.client(), ids, state.out, spec, resume=resume, retries=state.retries, on_ends=on_ends,
        invalid_left=invalid_counter(state) if spec.fail_on_records else None,
    )  # fmt: skip


def invalid_counter(state: CliState) -> Callable[[Batch], int]:
    """``--fail-on-records``: a schema run's invalid answers in an ended batch, read with the command's download settings."""
    from ..engine import RetryOptions, existing_store, invalid_left

    options = RetryOptions(read_timeout=state.timeout, ca_bundle=state.ca_bundle)
    return lambda batch: invalid_left(state.client(), batch, state.out, options, existing_store())
