"""Options and arguments that several commands share, declared once so they read the same.

Output flags mean one thing on every command: ``--json`` one JSON document on
stdout, ``--jsonl`` one object a line, ``-q`` ids alone; two of them together
are a usage error. Commands that stream events (``watch``, ``create --watch``,
``cancel --wait``) write lines, and keep ``--json`` as an alias of ``--jsonl``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from ..watcher import WatchOptions


def _complete_batch_id(incomplete: str) -> list[tuple[str, str]]:
    from ..completion_cache import complete_batch_id

    return complete_batch_id(incomplete)


BatchIdArg = Annotated[
    str, typer.Argument(help="The batch id.", metavar="BATCH_ID", autocompletion=_complete_batch_id)
]
BatchIdsArg = Annotated[
    list[str],
    typer.Argument(help="One or more batch ids.", metavar="BATCH_ID...", autocompletion=_complete_batch_id),
]

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the API's own JSON, as one document, and nothing else on stdout.")
]
JsonlOpt = Annotated[bool, typer.Option("--jsonl", help="Print one JSON object a line (JSON lines).")]
EventsJsonOpt = Annotated[
    bool, typer.Option("--json", help="One JSON object per line on stdout (the same as --jsonl here: events stream).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only ids, one a line.")]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Output format: table, plain (tab-separated), json, jsonl, csv or ids.",
        show_default=False,
    ),
]
DatasetQueryOpt = Annotated[
    str | None,
    typer.Option(
        "--query",
        help="A JMESPath expression applied to the JSON output, e.g. \"[?validation_status=='failed'].id\".",
        show_default=False,
    ),
]
QueryOpt = Annotated[
    str | None,
    typer.Option(
        "--query",
        help="A JMESPath expression applied to the JSON output, e.g. \"[?status=='BATCH_STATUS_FAILED'].id\".",
        show_default=False,
    ),
]

# -- durations -------------------------------------------------------------------------

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


# -- watching ----------------------------------------------------------------------------

DEFAULT_INTERVAL = WatchOptions.interval
DEFAULT_MAX_INTERVAL = WatchOptions.max_interval
DEFAULT_OUTAGE_LIMIT = WatchOptions.outage_limit

IntervalOpt = Annotated[float, typer.Option("--interval", parser=parse_duration, metavar="DURATION", help="Shortest pause between polls, used while records are being processed [default: 2s].", show_default=False)]  # fmt: skip
MaxIntervalOpt = Annotated[float, typer.Option("--max-interval", parser=parse_duration, metavar="DURATION", help="Longest pause, reached while batches are queued or idle [default: 30s].", show_default=False)]  # fmt: skip
WatchTimeoutOpt = Annotated[float | None, typer.Option("--timeout", parser=parse_duration, metavar="DURATION", help="Stop after this long (90, 90s, 15m, 2h) with exit 10; the batches keep running.", show_default=False)]  # fmt: skip
OutageLimitOpt = Annotated[float, typer.Option("--outage-limit", parser=parse_duration, metavar="DURATION", help="Give up after the API has been unreachable this long [default: 5m].", show_default=False)]  # fmt: skip
PlainOpt = Annotated[bool, typer.Option("--plain", help="One timestamped line per change, even on a terminal.")]
NoExitStatusOpt = Annotated[bool, typer.Option("--no-exit-status", help="Exit 0 whatever the batches end as (timeouts and errors still count).")]  # fmt: skip


# -- token counts and budgets (estimate, create --file) ----------------------------------


def parse_amount(text: str) -> Decimal:
    """A money amount for --max-cost: a plain number in the currency of the profile's prices."""
    if isinstance(text, Decimal):
        return text
    try:
        amount = Decimal(str(text).strip().lstrip("$€£"))
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not an amount; use e.g. 25 or 12.50") from None
    if not amount.is_finite() or amount < 0:
        raise typer.BadParameter("an amount must be a number at least 0")
    return amount


TokenizerFileOpt = Annotated[Path | None, typer.Option("--tokenizer", exists=True, dir_okay=False, metavar="FILE", help="Count with this tokenizer file instead of downloading the model's (for machines that cannot reach storage).", show_default=False)]  # fmt: skip
MaxCostOpt = Annotated[Decimal | None, typer.Option("--max-cost", parser=parse_amount, metavar="AMOUNT", help="Refuse a batch that could cost more: input tokens plus every output bound, at the profile's prices.", show_default=False)]  # fmt: skip
MaxInputTokensOpt = Annotated[int | None, typer.Option("--max-input-tokens", min=1, metavar="N", help="Refuse a batch of more than N input tokens (counted with the model's tokenizer).", show_default=False)]  # fmt: skip
