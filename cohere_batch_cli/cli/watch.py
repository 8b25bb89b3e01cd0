"""``cbatch watch``: follow batches until each one ends, and exit with their outcome.

The command only parses options; :func:`watch_batches` picks a renderer (live
view on a terminal, plain lines otherwise, JSON lines with ``--json``) and
feeds it the events of :class:`cohere_batch_cli.watcher.Watcher`. ``create
--watch``, ``cancel --wait`` and ``results --wait`` call the same function.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Optional, TextIO

import typer

from ..exit_codes import ExitCode
from ._context import get_state
from .batches import BatchIdsArg  # the same argument as cancel: Tab completes ids
from ..watcher import WatchOptions
from ._errors import command_errors

if TYPE_CHECKING:
    from ._context import CliState

DEFAULT_INTERVAL = WatchOptions.interval
DEFAULT_MAX_INTERVAL = WatchOptions.max_interval
DEFAULT_OUTAGE_LIMIT = WatchOptions.outage_limit

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``2h``, ``1h30m`` or ``500ms``.

    A bare number is seconds, as in ``sleep``. Raises ``typer.BadParameter``,
    so a bad value is a usage error (exit 2) reported by typer itself.
    """
    if isinstance(text, (int, float)):
        return float(text)
    compact = str(text).strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(compact):
        match = _DURATION_PART.match(compact, pos)
        if match is None or (match.group(2) is None and pos > 0):
            break  # "15m3": a number without a unit only stands alone
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
        if match.group(2) is None and pos < len(compact):
            break
    if not compact or pos != len(compact):
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 90, 90s, 15m or 2h")
    if total <= 0:
        raise typer.BadParameter("a duration must be more than zero")
    return total


def format_duration(seconds: float) -> str:
    """The shortest spelling :func:`parse_duration` reads back the same."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def resume_command(
    state: CliState | None,
    batch_ids: Sequence[str],
    options: WatchOptions,
    *,
    plain: bool | None = None,
    json_lines: bool = False,
) -> str:
    """The exact ``cbatch watch`` command that picks this watch up again."""
    args = ["cbatch"]
    if state is not None and state.profile:
        args += ["--profile", state.profile]
    if state is not None and state.base_url:
        args += ["--base-url", state.base_url]
    args += ["watch", *batch_ids]
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
    return shlex.join(args)


def _wants_plain(state: CliState, plain: bool | None) -> bool:
    if plain:
        return True
    return not state.stdout_is_tty or os.environ.get("TERM") == "dumb"


def watch_batches(
    state: CliState,
    batch_ids: Sequence[str],
    *,
    plain: bool | None = None,
    json_lines: bool = False,
    timeout: float | None = None,
    interval: float = DEFAULT_INTERVAL,
    max_interval: float = DEFAULT_MAX_INTERVAL,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
    no_exit_status: bool = False,
    stream: TextIO | None = None,
) -> ExitCode:
    """Watch ``batch_ids`` to the end and return the exit code of the outcome.

    ``stream`` is where plain and JSON lines go (stdout by default; stderr when
    the caller's own data owns stdout, as ``results --wait -o -`` does).

    ``plain`` forces plain lines (None or False: plain unless stdout is a
    terminal); ``json_lines`` wins over both. Ctrl-C stops watching, cancels
    nothing, prints the command that resumes, and returns 130. A lasting
    outage, a 404 or a refused key are raised for the caller's error table.
    """
    from ..api.retry import RetryPolicy
    from ..watcher import Watcher

    ids = list(dict.fromkeys(batch_ids))
    options = WatchOptions(
        interval=interval,
        max_interval=max(interval, max_interval),
        timeout=timeout,
        outage_limit=outage_limit,
        no_exit_status=no_exit_status,
    )
    resume = resume_command(state, ids, options, plain=plain, json_lines=json_lines)
    from ..output import watch_views as views

    renderer: views.LiveRenderer | views.PlainRenderer | views.JsonRenderer
    if json_lines:
        renderer = views.JsonRenderer(stream or sys.stdout)
    elif _wants_plain(state, plain) or stream is not None:
        renderer = views.PlainRenderer(stream or sys.stdout, many=len(ids) > 1)
    else:
        renderer = views.LiveRenderer(state.console(), ids)
    # Each poll fails fast (one quick retry for a blip): the watcher's own backoff and
    # outage limit handle anything longer, and --timeout stays a real bound.
    source = state.client().with_retry(RetryPolicy.for_polls(state.retries))
    watcher = Watcher(source, ids, options, sleep=renderer.sleep)
    try:
        with renderer:
            for events in watcher.rounds():
                renderer.handle(events)
    except KeyboardInterrupt:
        state.info(f"\nstopped watching; nothing was cancelled, the batches keep running.\nresume with: {resume}")
        return ExitCode.INTERRUPTED
    finally:
        if state.debug:
            s = watcher.stats
            state.debug_line(
                f"watch: {s.requests} requests ({s.gets} GET, {s.list_pages} list pages) "
                f"in {s.rounds} rounds, {s.failures} failed"
            )
    code = watcher.exit_code if watcher.exit_code is not None else ExitCode.UNEXPECTED
    if code == ExitCode.TIMEOUT:
        state.info(f"the batches keep running; continue with: {resume}")
    return code




def register(app: typer.Typer) -> None:
    """Add ``watch`` to the root app."""

    @app.command("watch", rich_help_panel="Batches")
    @command_errors
    def watch(
        ctx: typer.Context,
        batch_ids: BatchIdsArg,
        interval: Annotated[float, typer.Option("--interval", parser=parse_duration, metavar="DURATION", help="Shortest pause between polls, used while records are being processed [default: 2s].", show_default=False)] = DEFAULT_INTERVAL,
        max_interval: Annotated[float, typer.Option("--max-interval", parser=parse_duration, metavar="DURATION", help="Longest pause, reached while batches are queued or idle [default: 30s].", show_default=False)] = DEFAULT_MAX_INTERVAL,
        timeout: Annotated[Optional[float], typer.Option("--timeout", parser=parse_duration, metavar="DURATION", help="Stop after this long (90, 90s, 15m, 2h) with exit 10; the batches keep running.", show_default=False)] = None,
        outage_limit: Annotated[float, typer.Option("--outage-limit", parser=parse_duration, metavar="DURATION", help="Give up after the API has been unreachable this long [default: 5m].", show_default=False)] = DEFAULT_OUTAGE_LIMIT,
        plain: Annotated[bool, typer.Option("--plain", help="One timestamped line per change, even on a terminal.")] = False,
        json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per change (JSON lines) on stdout.")] = False,
        no_exit_status: Annotated[bool, typer.Option("--no-exit-status", help="Exit 0 whatever the batches end as (timeouts and errors still count).")] = False,
    ) -> None:
        """Follow batches until every one has ended: completed, failed or canceled.

        Exit codes: 0 all completed, 8 one failed, 9 one canceled, 10 --timeout
        ran out (batches keep running), 130 Ctrl-C (nothing is cancelled).

        Examples:

          cbatch watch 9439e0e3-49a4-4336-93e3-485fc420bc18

          cbatch watch ID1 ID2 ID3 --timeout 2h --plain

          cbatch watch ID --json | jq -c 'select(.event == "status_changed")'
        """
        state = get_state(ctx)
        code = watch_batches(
            state,
            batch_ids,
            plain=plain,
            json_lines=json_lines,
            timeout=timeout,
            interval=interval,
            max_interval=max(interval, max_interval),
            outage_limit=outage_limit,
            no_exit_status=no_exit_status,
        )
        raise typer.Exit(code)
