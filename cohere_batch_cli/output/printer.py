"""The data modes of stdout, and how a listing's columns are described.

Modes: ``table`` (aligned columns for a person at a terminal), ``plain``
(tab-separated lines of raw values, no colour, no boxes: stdout is not a
terminal), ``json`` (one JSON document), ``jsonl`` (one object a line),
``text`` (the JSON's values raw, one a line, like ``jq -r``), ``csv``, and
``ids`` (one id a line, for ``xargs``). :class:`~.core.Output` writes them; this module only decides
which one a command's flags ask for, and refuses flags that contradict each
other rather than letting one silently win.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import OutputOptionError

TABLE, PLAIN, JSON, JSONL, IDS, CSV, TEXT = "table", "plain", "json", "jsonl", "ids", "csv", "text"
FORMATS = (TABLE, PLAIN, JSON, JSONL, TEXT, CSV, IDS)
QUERY_MODES = (JSON, TEXT)
"""The modes ``--query`` can go with: both print the JSON it picks."""

FLUSH: Any = object()
"""Yielded by a listing that goes on (``list --watch``): what came so far is all there is for now,
so a table is laid out at once and the rows after it follow as they come."""


def choose_mode(
    *,
    json_out: bool = False,
    jsonl: bool = False,
    quiet: bool = False,
    fmt: str | None = None,
    query: str | None = None,
    raw: bool = False,
    stdout_is_tty: bool = False,
) -> str:
    """The mode from the shorthands (--json, --jsonl, -q, --raw) or --format; else by terminal.

    At most one of them may be given (``--format json --json`` says the same
    thing twice and is allowed); ``--query`` reads JSON, so it goes with
    ``--json``, ``--raw`` (``--format text``), or nothing.
    """
    if fmt is not None and fmt not in FORMATS:
        raise OutputOptionError(f"--format must be one of {', '.join(FORMATS)}")
    shorthands = (
        ("--json", JSON, json_out),
        ("--jsonl", JSONL, jsonl),
        ("-q", IDS, quiet),
        ("--raw", TEXT, raw),
    )
    asked = {flag: mode for flag, mode, on in shorthands if on}
    if fmt is not None:
        asked[f"--format {fmt}"] = fmt
    modes = set(asked.values())
    if len(modes) > 1:
        raise OutputOptionError(
            f"{' and '.join(sorted(asked))} ask for different output; give one of them"
        )
    mode = modes.pop() if modes else None
    if query is not None and mode not in (None, *QUERY_MODES):
        flag = next(iter(asked))
        raise OutputOptionError(
            f"--query prints JSON; it cannot go with {flag} (use --json or --raw)"
        )
    if mode is not None:
        return mode
    if query is not None:
        return JSON
    return TABLE if stdout_is_tty else PLAIN


@dataclass(frozen=True)
class Column:
    """A column of a listing: its header, and how to read its cell from one item."""

    header: str
    cell: Callable[[Any], str]
    style: Callable[[Any], str] | None = None
    justify: Literal["left", "right"] = "left"
    whole: bool = False
    """Never cut or split (ids, to be copied; statuses, to be read)."""
    priority: int = 1
    """Which columns a narrow table drops first: the highest number; 0 is never dropped."""
    min_width: int = 6
    """How narrow a cut may make this column before a less important one is dropped instead."""
    widest: Callable[[Any], str] | None = None
    """The widest text the cell can come to show for this item as it changes (``list --watch``
    lays its table out from the first rows): planned for, so a later row is never wider."""


def compile_query(expression: str) -> Any:
    """A compiled JMESPath expression; a malformed one is a usage error with its position."""
    from ..query import QuerySyntaxError
    from ..query import compile_query as compiled

    try:
        return compiled(expression)
    except QuerySyntaxError as exc:
        raise OutputOptionError(f"--query is not valid JMESPath: {exc}") from None
