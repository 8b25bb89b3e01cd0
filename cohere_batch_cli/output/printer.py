"""The data modes of stdout, and how a listing's columns are described.

Modes: ``table`` (rich, for a person at a terminal), ``plain`` (tab-separated
lines, no colour, no boxes: stdout is not a terminal), ``json`` (one JSON
document), ``jsonl`` (one object a line), ``csv``, and ``ids`` (one id a line,
for ``xargs``). :class:`~.core.Output` writes them; this module only decides
which one a command's flags ask for, and refuses flags that contradict each
other rather than letting one silently win.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import OutputOptionError

TABLE, PLAIN, JSON, JSONL, IDS, CSV = "table", "plain", "json", "jsonl", "ids", "csv"
FORMATS = (TABLE, PLAIN, JSON, JSONL, CSV, IDS)

MAX_TABLE_ROWS = 500
"""Past this many rows a rich table costs seconds (PERF-NOTES: ~0.4 ms a row); stream instead."""


def choose_mode(
    *,
    json_out: bool = False,
    jsonl: bool = False,
    quiet: bool = False,
    fmt: str | None = None,
    query: str | None = None,
    stdout_is_tty: bool = False,
) -> str:
    """The mode from the shorthands (--json, --jsonl, -q) or --format; else by terminal.

    At most one of them may be given (``--format json --json`` says the same
    thing twice and is allowed); ``--query`` reads JSON, so it goes with
    ``--json``, ``--format json`` or nothing.
    """
    if fmt is not None and fmt not in FORMATS:
        raise OutputOptionError(f"--format must be one of {', '.join(FORMATS)}")
    asked = {flag: mode for flag, mode, on in (("--json", JSON, json_out), ("--jsonl", JSONL, jsonl), ("-q", IDS, quiet)) if on}
    if fmt is not None:
        asked[f"--format {fmt}"] = fmt
    modes = set(asked.values())
    if len(modes) > 1:
        raise OutputOptionError(f"{' and '.join(sorted(asked))} ask for different output; give one of them")
    mode = modes.pop() if modes else None
    if query is not None and mode not in (None, JSON):
        flag = next(iter(asked))
        raise OutputOptionError(f"--query prints JSON; it cannot go with {flag}")
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
    justify: Literal["left", "right", "center"] = "left"
    min_width: int | None = None
    """Cells never cut below this: ids must stay whole to be copied."""


def compile_query(expression: str) -> Any:
    """A compiled JMESPath expression; a malformed one is a usage error with its position."""
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise OutputOptionError(f"--query is not valid JMESPath: {str(exc).splitlines()[0]}") from None
