"""``cbatch cache``: the local answer cache of table runs, seen, pruned and cleared."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from ._context import get_state
from ._errors import command_errors
from ._options import JsonlOpt, JsonOpt, parse_duration

if TYPE_CHECKING:
    from ..engine import AnswerCache

cache_app = typer.Typer(
    help="""The local answer cache: answers of table runs (create --from) kept on this machine.

A re-run of a table sends only the requests whose answers are not here.
The cache is local state: answers cannot be fetched from the API again once
their output datasets expire. Deleting it is always safe: the next run sends
what it would have found. It is bounded (1 GB by default,
CBATCH_CACHE_MAX_BYTES), dropping the answers used longest ago first.

Examples:

  cbatch cache stats

  cbatch cache prune --older-than 30d

  cbatch cache clear --yes
""",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _size(text: str) -> int:
    from ..engine import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _open() -> AnswerCache:
    from .. import LocalWriteError
    from ..engine import CacheUnusable, open_cache

    try:
        return open_cache()
    except CacheUnusable as exc:
        raise LocalWriteError(
            str(exc), hint="deleting it is safe: cbatch cache clear --yes"
        ) from None


@cache_app.command("stats")
@command_errors
def stats(ctx: typer.Context, json_out: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Show what the answer cache holds: entries, bytes, and the requests it saved.

    Example:

      cbatch cache stats --json
    """
    from ..engine import CACHE_FILE_NAME, Stats, cache_dir, human_bytes, max_bytes

    state = get_state(ctx)
    out = state.out.set_mode(json_out=json_out, jsonl=jsonl)
    path = cache_dir()[0] / CACHE_FILE_NAME
    if not path.exists():  # a look makes no cache
        s = Stats(path, 0, 0, 0, max_bytes(), 0, 0, 0)
    else:
        with _open() as cache:
            s = cache.stats()
    if out.for_machines:
        out.document(
            {
                "path": str(s.path), "entries": s.entries, "bytes": s.bytes,
                "file_bytes": s.file_bytes, "max_bytes": s.max_bytes, "hits": s.hits,
                "saved_input_tokens": s.saved_input_tokens,
                "saved_output_tokens": s.saved_output_tokens,
            }
        )  # fmt: skip
        return
    out.line(f"path:        {s.path}")
    out.line(f"entries:     {s.entries:,}")
    out.line(
        f"size:        {human_bytes(s.bytes)} of {human_bytes(s.max_bytes)}"
        f" ({human_bytes(s.file_bytes)} on disk)"
    )
    out.line(
        f"hits saved:  {s.hits:,} requests"
        f" ({s.saved_input_tokens:,} input and {s.saved_output_tokens:,} output tokens)"
    )


@cache_app.command("prune")
@command_errors
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            parser=parse_duration,
            metavar="DURATION",
            help="Drop the answers not used for this long (30d, 12h).",
            show_default=False,
        ),
    ] = None,
    to_size: Annotated[
        int | None,
        typer.Option(
            "--to-size",
            parser=_size,
            metavar="SIZE",
            help="Drop the answers used longest ago until the cache holds at most this much (500MB).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Drop answers from the cache: those unused for a while, or the oldest down to a size.

    Examples:

      cbatch cache prune --older-than 30d

      cbatch cache prune --to-size 200MB
    """
    from .. import UsageError
    from ..engine import counted, human_bytes

    if older_than is None and to_size is None:
        raise UsageError("give --older-than DURATION, --to-size SIZE, or both")
    from ..engine import CACHE_FILE_NAME, cache_dir

    state = get_state(ctx)
    removed = freed = 0
    if (cache_dir()[0] / CACHE_FILE_NAME).exists():  # nothing to prune makes no cache
        with _open() as cache:
            before = time.time() - older_than if older_than is not None else None
            removed, freed = cache.prune(before, to_size)
    state.out.info(f"dropped {counted(removed, 'answer')} ({human_bytes(freed)})")


@cache_app.command("clear")
@command_errors
def clear(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Clear without asking (scripts, CI).")
    ] = False,
) -> None:
    """Delete the answer cache, after asking at a terminal (--yes: without asking).

    Safe: the next table run sends what it would have found. Off a terminal,
    --yes is required.

    Example:

      cbatch cache clear --yes
    """
    from .. import UsageError
    from ..engine import CACHE_FILE_NAME, cache_dir, remove_cache

    out = get_state(ctx).out
    path = cache_dir()[0] / CACHE_FILE_NAME
    if not yes:
        if not out.interactive:
            raise UsageError(f"the answer cache {path} was not cleared: add --yes to clear it")
        answer = out.ask(f"delete the answer cache {path}? the next runs send what it holds [y/N] ")
        if (answer or "").lower() not in ("y", "yes"):
            raise UsageError("the answer cache was not cleared: not confirmed")
    try:
        existed = remove_cache(path)
    except OSError as exc:
        from .. import LocalWriteError

        raise LocalWriteError(f"cannot delete {path}: {exc.strerror or exc}") from None
    out.info(f"cleared the answer cache {path}" if existed else f"no answer cache at {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache", rich_help_panel="Configuration")
