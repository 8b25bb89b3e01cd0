"""Options and arguments that several commands share, declared once so they read the same.

Output flags mean one thing on every command: ``--json`` one JSON document on
stdout, ``--jsonl`` one object a line, ``-q`` ids alone; two of them together
are a usage error. Commands that stream events (``watch``, ``create --watch``,
``cancel --wait``) write lines, and keep ``--json`` as an alias of ``--jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from ..engine import (
    INTERVAL,
    MAX_INTERVAL,
    OUTAGE_LIMIT,
    PAUSE,
)

if TYPE_CHECKING:
    from ..engine import (
        FileReport,
        KeyOptions,
        ResultsSpec,
        RetryOptions,
        SendSpec,
        TableSpec,
        WatchSpec,
    )
    from ._context import CliState


def complete_batch_id(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    from ._completion import complete

    return complete("batch", ctx.find_root().params, incomplete)


def ids_from_stdin(tokens: list[str]) -> list[str]:
    """``-`` stands for the ids on standard input, one a line (``cbatch list -q | cbatch cancel -``).

    The one reader of ids from stdin, for every command that takes ``-``:
    ``cancel``, ``watch``, ``get``, ``results``. Blank lines are skipped; stdin
    is read once, however many ``-`` there are.
    """
    if "-" not in tokens:
        return tokens
    import sys

    text = sys.stdin.read() if sys.stdin is not None else ""
    piped = [line.strip() for line in text.splitlines() if line.strip()]
    expanded: list[str] = []
    for token in tokens:
        if token == "-":
            expanded.extend(piped)
            piped = []
        else:
            expanded.append(token)
    return expanded


def complete_dataset_id(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    from ._completion import complete

    return complete("dataset", ctx.find_root().params, incomplete)


BatchIdArg = Annotated[
    str,
    typer.Argument(
        help="The batch id, a unique prefix of it, or the batch's exact name.",
        metavar="BATCH_ID",
        autocompletion=complete_batch_id,
    ),
]
BatchIdsArg = Annotated[
    list[str],
    typer.Argument(
        help="One or more batch ids (unique prefixes and exact names too).",
        metavar="BATCH_ID...",
        autocompletion=complete_batch_id,
    ),
]
RunIdArg = Annotated[
    str,
    typer.Argument(
        help="The batch id, a unique prefix of it, the batch's exact name, or a job id (a run: docs/jobs.md).",
        metavar="BATCH_ID|JOB_ID",
        autocompletion=complete_batch_id,
    ),
]
RunIdsArg = Annotated[
    list[str],
    typer.Argument(
        help="One or more batch ids (unique prefixes and exact names too), or one job id.",
        metavar="BATCH_ID...|JOB_ID",
        autocompletion=complete_batch_id,
    ),
]
DatasetIdArg = Annotated[
    str,
    typer.Argument(
        help="The dataset id, a unique prefix of it, or the dataset's exact name.",
        metavar="DATASET_ID",
        autocompletion=complete_dataset_id,
    ),
]

JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", help="Print the API's own JSON, as one document, and nothing else on stdout."
    ),
]
JsonlOpt = Annotated[
    bool, typer.Option("--jsonl", help="Print one JSON object a line (JSON lines).")
]
EventsJsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON object per line on stdout (the same as --jsonl here: events stream).",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only ids, one a line.")]
RawOpt = Annotated[
    bool,
    typer.Option(
        "--raw",
        "-r",
        help="Print JSON values raw, one a line (strings without quotes), like jq -r; the same as --format text.",
    ),
]


def _complete_format(incomplete: str) -> list[str]:
    from ..output.printer import FORMATS

    return [f for f in FORMATS if f.startswith(incomplete)]


FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Output format: table, plain (tab-separated raw values), json, jsonl, text (values raw, like jq -r), csv or ids.",
        show_default=False,
        autocompletion=_complete_format,
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


def parse_duration(text: str) -> float:
    """Seconds from a duration option (:func:`cohere_batch_cli.engine.parse_duration`).

    Raises ``typer.BadParameter``, so a bad value is a usage error (exit 2)
    reported by typer itself.
    """
    from ..engine import parse_duration as seconds

    try:
        return seconds(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def format_duration(seconds: float) -> str:
    """The shortest spelling :func:`parse_duration` reads back the same: for the commands we print, and settings shown."""
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def parse_moment(text: str) -> datetime:
    """A moment from an option (:func:`cohere_batch_cli.engine.parse_moment`), as a usage error."""
    from datetime import timezone

    from ..engine import parse_moment as moment

    try:
        return moment(text, datetime.now(timezone.utc))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


SinceOpt = Annotated[datetime | None, typer.Option("--since", parser=parse_moment, metavar="WHEN", help="Only batches created at or after WHEN: a duration back from now (2h, 3d) or a date or time (2026-12-01, 2026-12-01T09:30Z; UTC unless an offset is given).", show_default=False)]  # fmt: skip
UntilOpt = Annotated[datetime | None, typer.Option("--until", parser=parse_moment, metavar="WHEN", help="Only batches created before WHEN (as --since).", show_default=False)]  # fmt: skip


# -- watching ----------------------------------------------------------------------------

DEFAULT_INTERVAL = INTERVAL
DEFAULT_MAX_INTERVAL = MAX_INTERVAL
DEFAULT_OUTAGE_LIMIT = OUTAGE_LIMIT

DEFAULT_PROGRESS_EVERY = 30.0  # tasks.watching.PROGRESS_EVERY, without importing the engine

IntervalOpt = Annotated[float, typer.Option("--interval", parser=parse_duration, metavar="DURATION", help="Shortest pause between polls, used while records are being processed [default: 2s].", show_default=False)]  # fmt: skip
MaxIntervalOpt = Annotated[float | None, typer.Option("--max-interval", parser=parse_duration, metavar="DURATION", help="Longest pause, reached while batches are queued or idle; at least --interval [default: 30s].", show_default=False)]  # fmt: skip
ProgressEveryOpt = Annotated[float, typer.Option("--progress-every", parser=parse_duration, metavar="DURATION", help="Plain lines: at most one progress line per batch this often; status changes are always printed [default: 30s].", show_default=False)]  # fmt: skip
OnDoneOpt = Annotated[str | None, typer.Option("--on-done", metavar="COMMAND", help="Run this shell command as each batch ends, its outcome in CBATCH_* environment variables (never in the command line).", show_default=False)]  # fmt: skip
WatchTimeoutOpt = Annotated[float | None, typer.Option("--timeout", parser=parse_duration, metavar="DURATION", help="Stop the whole command after this long (90, 90s, 15m, 2h: upload, validation, pauses and watch included) with exit 10; the batches keep running.", show_default=False)]  # fmt: skip
OutageLimitOpt = Annotated[float, typer.Option("--outage-limit", parser=parse_duration, metavar="DURATION", help="Give up after the API has been unreachable this long [default: 5m].", show_default=False)]  # fmt: skip
PlainOpt = Annotated[
    bool, typer.Option("--plain", help="One timestamped line per change, even on a terminal.")
]
NoExitStatusOpt = Annotated[bool, typer.Option("--no-exit-status", help="Exit 0 whatever the batches end as (timeouts and errors still count).")]  # fmt: skip


WATCH_FLAGS: dict[str, str] = {
    "interval": "--interval",
    "max_interval": "--max-interval",
    "timeout": "--timeout",
    "outage_limit": "--outage-limit",
    "progress_every": "--progress-every",
    "no_exit_status": "--no-exit-status",
    "on_done": "--on-done",
    "plain": "--plain",
}
"""Every option of a watch, by parameter name: the same on every command that runs one."""

_WATCH_PARAMS: dict[str, tuple[Any, Any]] = {
    "interval": (IntervalOpt, DEFAULT_INTERVAL),
    "max_interval": (MaxIntervalOpt, None),
    "timeout": (WatchTimeoutOpt, None),
    "outage_limit": (OutageLimitOpt, DEFAULT_OUTAGE_LIMIT),
    "progress_every": (ProgressEveryOpt, DEFAULT_PROGRESS_EVERY),
    "no_exit_status": (NoExitStatusOpt, False),
    "on_done": (OnDoneOpt, None),
    "plain": (PlainOpt, False),
}


def watch_options(function: Callable[..., None]) -> Callable[..., None]:
    """Give a command every option of a watch, parsed into one ``WatchSpec`` passed as ``spec``.

    The one place the watch options are declared for commands: the wrapped
    command's signature gains ``--interval``, ``--max-interval``,
    ``--timeout``, ``--outage-limit``, ``--progress-every``,
    ``--no-exit-status``, ``--on-done`` and ``--plain``, and the function
    receives them as one frozen value (its ``--json`` is the command's own, set
    with ``dataclasses.replace``). ``--timeout``'s deadline starts here, as the
    command starts: it bounds the whole command.
    """
    return _spec_options(function, _WATCH_PARAMS, lambda values, _: watch_spec(**values))


def _spec_options(
    function: Callable[..., None],
    declared: dict[str, tuple[Any, Any]],
    build: Callable[[dict[str, Any], dict[str, Any]], Any],
    name: str = "spec",
) -> Callable[..., None]:
    """``function`` with the ``declared`` options added to its signature, handed over as one ``spec``.

    The one way a family of options (a watch's, a results writer's, a
    table's) is given to every command that takes it: typer reads the added
    parameters, and the command receives ``build(values, its other
    arguments)`` as ``spec`` (or as ``name``: a command can take two families).
    """
    import functools
    import inspect

    signature = inspect.signature(function)
    namespace = function.__globals__

    def resolved(annotation: Any) -> Any:  # what typer would read, without the spec's own type
        if not isinstance(annotation, str):
            return annotation
        try:
            return eval(annotation, namespace)
        except (
            NameError
        ):  # another family's spec (a type imported for checking alone): its own wrapper takes it
            return annotation

    kept = [
        p.replace(annotation=resolved(p.annotation))
        for p in signature.parameters.values()
        if p.name != name
    ]
    added = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
        )
        for name, (annotation, default) in declared.items()
    ]
    params = [p for p in kept if p.kind != inspect.Parameter.KEYWORD_ONLY]
    params += [p for p in kept if p.kind == inspect.Parameter.KEYWORD_ONLY] + added

    @functools.wraps(function)
    def command(*args: Any, **kwargs: Any) -> None:
        values = {key: kwargs.pop(key, default) for key, (_, default) in declared.items()}
        function(*args, **{name: build(values, kwargs)}, **kwargs)

    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def watch_spec(
    *,
    interval: float = DEFAULT_INTERVAL,
    max_interval: float | None = None,
    timeout: float | None = None,
    outage_limit: float = DEFAULT_OUTAGE_LIMIT,
    progress_every: float = DEFAULT_PROGRESS_EVERY,
    no_exit_status: bool = False,
    on_done: str | None = None,
    plain: bool = False,
) -> WatchSpec:
    """The watch spec of these option values (a usage error for a --max-interval under --interval)."""
    from ..engine import WatchSpec

    defaults = {name: default for name, (_, default) in _WATCH_PARAMS.items()}
    values = {
        "interval": interval, "max_interval": max_interval, "timeout": timeout, "outage_limit": outage_limit,
        "progress_every": progress_every, "no_exit_status": no_exit_status, "on_done": on_done, "plain": plain,
    }  # fmt: skip
    given = frozenset(WATCH_FLAGS[n] for n, v in values.items() if v != defaults[n])
    return WatchSpec(
        interval=interval,
        max_interval=max_interval_for(interval, max_interval),
        timeout=timeout,
        outage_limit=outage_limit,
        progress_every=progress_every,
        no_exit_status=no_exit_status,
        on_done=on_done or None,
        plain=plain,
        given=given,
    )


def refuse_watch_options(spec: WatchSpec, why: str) -> None:
    """A usage error naming the watch options given to a run that does not watch (``why``: what to add)."""
    from .. import UsageError

    if spec.given:
        names = ", ".join(f for f in WATCH_FLAGS.values() if f in spec.given)
        raise UsageError(f"{names} shape{'s' if len(spec.given) == 1 else ''} a watch: {why}")


# -- results ------------------------------------------------------------------------------


class ResultsFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="File to write, or - for stdout [default: RUN_ID.FORMAT, the batch's or the job's id]. A name ending .jsonl, .csv or .parquet picks the format.", show_default=False)]  # fmt: skip
ResultsFormatOpt = Annotated[ResultsFormat | None, typer.Option("--format", "-F", help="jsonl (one record a line, custom_id first), csv or parquet (one row a record, typed columns; needs the [parquet] extra) [default: from -o's name, else jsonl].", show_default=False)]  # fmt: skip
ColumnOpt = Annotated[list[str] | None, typer.Option("--column", metavar="NAME=EXPR", help="csv, parquet: add a column, a JMESPath expression over the record (custom_id, status, error, body, request), e.g. model=body.id. Repeatable.", show_default=False)]  # fmt: skip
BodyOpt = Annotated[bool, typer.Option("--body", help="csv, parquet: add the whole response as a body column (JSON text).")]  # fmt: skip
FailedOnlyOpt = Annotated[bool, typer.Option("--failed-only", help="Only the records that failed.")]  # fmt: skip
JoinOpt = Annotated[Path | None, typer.Option("--join", help="The input JSONL: put each request beside its result. A table (CSV, Parquet, JSONL of objects, or a folder): write it with the answers as columns.", exists=True, show_default=False)]  # fmt: skip
AnswerPrefixOpt = Annotated[str | None, typer.Option("--answer-prefix", metavar="P", help="A batch made from a table: put P before every column added to it (answer, status, ...), when the table has columns of those names.", show_default=False)]  # fmt: skip
ResultsIdColumnOpt = Annotated[str | None, typer.Option("--id-column", metavar="COLUMN", help="A --join table of a run made on another machine: the column that named its rows (default: found by matching the run's requests, read from the API).", show_default=False)]  # fmt: skip
RecordsOpt = Annotated[bool, typer.Option("--records", help="A batch made from a table: write its records, as for any batch, not the table with the answers as columns.")]  # fmt: skip
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1, max=16, help="Parts fetched at once.")]  # fmt: skip
PartialOpt = Annotated[bool, typer.Option("--partial", help="A job: write the parts that ended, leaving out those still running or not sent yet.")]  # fmt: skip
DeleteOutputsOpt = Annotated[bool, typer.Option("--delete-outputs", help="A job: once the file is written, delete the output datasets it was made from (they count in the organisation's storage); later results leave those parts out.")]  # fmt: skip
InputOrderOpt = Annotated[bool, typer.Option("--input-order", help="A job: write the records in the order of its input file (read again and compared with its check: a file changed since is refused, exit 5; sorted on disk, not in memory).")]  # fmt: skip
InputFileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="A job's input file, for --input-order (default: the file it was made from, while unchanged).", dir_okay=False, show_default=False)]  # fmt: skip

RESULTS_FLAGS: dict[str, str] = {
    "output": "--output",
    "fmt": "--format",
    "columns": "--column",
    "body": "--body",
    "failed_only": "--failed-only",
    "join": "--join",
    "concurrency": "--concurrency",
    "partial": "--partial",
    "delete_outputs": "--delete-outputs",
    "input_order": "--input-order",
    "input_file": "--file",
}
"""Every option of a results writer, by parameter name: the same on every command that writes results
(the option-reach test covers each)."""

_RESULTS_PARAMS: dict[str, tuple[Any, Any]] = {
    "output": (OutputOpt, None),
    "fmt": (ResultsFormatOpt, None),
    "columns": (ColumnOpt, None),
    "body": (BodyOpt, False),
    "failed_only": (FailedOnlyOpt, False),
    "join": (JoinOpt, None),
    "concurrency": (ConcurrencyOpt, 4),
    "partial": (PartialOpt, False),
    "delete_outputs": (DeleteOutputsOpt, False),
    "input_order": (InputOrderOpt, False),
    "input_file": (InputFileOpt, None),
    "answer_prefix": (AnswerPrefixOpt, None),
    "id_column": (ResultsIdColumnOpt, None),
    "records": (RecordsOpt, False),
}


def results_options(function: Callable[..., None]) -> Callable[..., None]:
    """Give a command every option of a results writer, parsed into one ``ResultsSpec`` passed as ``spec``.

    The one place the results options are declared (``-o``, ``--format``,
    ``--column``, ``--body``, ``--failed-only``, ``--join``,
    ``--concurrency``, ``--partial``, ``--delete-outputs``,
    ``--input-order``, ``--file``, ``--answer-prefix``, ``--id-column``, ``--records``), for ``results`` and ``jobs results``
    alike. The spec is checked as it is built: a combination that means
    nothing stops the command (exit 2) before any request. A command's own
    flags (``results --own``) are set on it with ``dataclasses.replace``.
    """

    def build(values: dict[str, Any], others: dict[str, Any]) -> Any:
        from ._context import get_state

        return results_spec(get_state(others["ctx"]), **values)

    return _spec_options(function, _RESULTS_PARAMS, build)


def results_spec(state: CliState, **values: Any) -> ResultsSpec:
    """The results spec of these option values and the run's settings, checked (:func:`tasks.results.check`)."""
    from ..engine import OutputOptionError, ResultsSpec, check_results_spec

    fmt = values.get("fmt")
    spec = ResultsSpec(
        output=values.get("output"),
        fmt=fmt.value if isinstance(fmt, ResultsFormat) else fmt,
        columns=tuple(values.get("columns") or ()),
        body=bool(values.get("body")),
        failed_only=bool(values.get("failed_only")),
        join=values.get("join"),
        concurrency=int(values.get("concurrency") or 4),
        partial=bool(values.get("partial")),
        delete_outputs=bool(values.get("delete_outputs")),
        input_order=bool(values.get("input_order")),
        input_file=values.get("input_file"),
        records=bool(values.get("records")),
        answer_prefix=values.get("answer_prefix"),
        id_column=values.get("id_column"),
        read_timeout=state.timeout,
        ca_bundle=state.ca_bundle,
        dataset_ttl=state.settings().limits.dataset_ttl,
    )
    chosen, _ = check_results_spec(spec)  # a usage error stops the command before any call
    if chosen == "parquet" and spec.output == "-" and state.out.stdout_is_tty:
        raise OutputOptionError(
            "Parquet is binary and stdout is a terminal", hint="write it to a file: -o FILE.parquet"
        )
    return spec


def _complete_status(incomplete: str) -> list[str]:
    return [s for s in STATUS_WORDS if s.startswith(incomplete)]


STATUS_WORDS = ("queued", "in_progress", "canceling", "completed", "failed", "canceled")
StatusOpt = Annotated[list[str] | None, typer.Option("--status", "-s", help="Only batches in this status (repeatable): queued, in_progress, canceling, completed, failed, canceled.", autocompletion=_complete_status)]  # fmt: skip


def max_interval_for(interval: float, max_interval: float | None) -> float:
    """The longest pause: as given (never below ``interval``: refused), else 30 s or ``interval``."""
    from .. import UsageError

    if max_interval is None:
        return max(interval, DEFAULT_MAX_INTERVAL)
    if max_interval < interval:
        raise UsageError(
            f"--max-interval ({format_duration(max_interval)}) is shorter than --interval "
            f"({format_duration(interval)}); give a --max-interval of at least {format_duration(interval)}"
        )
    return max_interval


# -- retrying ----------------------------------------------------------------------------

DEFAULT_PAUSE = PAUSE

MatchOpt = Annotated[str | None, typer.Option("--match", metavar="PATTERN", help="Retry only failures whose error text this regular expression finds (Python syntax; (?i) ignores case) [default: every failure].", show_default=False)]  # fmt: skip
MissingOpt = Annotated[bool, typer.Option("--missing/--no-missing", help="Also retry records that have no result at all.")]  # fmt: skip
FailOnRecordsOpt = Annotated[bool, typer.Option("--fail-on-records", help="Exit 12 when a batch ends with records that failed or have no result, COMPLETED included (for CI); for a run made with --schema, answers that break the schema count too.")]  # fmt: skip
InvalidOpt = Annotated[bool, typer.Option("--invalid", help="Send again only the answers that break the run's answer schema (a run made with --schema); without it, they are sent again with the failures.")]  # fmt: skip
PauseOpt = Annotated[float, typer.Option("--pause", parser=parse_duration, metavar="DURATION", help="Pause before the second round; it doubles each round after, up to 10m [default: 30s].", show_default=False)]  # fmt: skip
IdempotencyKeyOpt = Annotated[str | None, typer.Option("--idempotency-key", metavar="KEY", help="Make the create safe to run again (a CI step retried): the same KEY with the same input and options gives the run the first made, found by name on the API from any machine; another input or option is refused (exit 17), naming what differs.", show_default=False)]  # fmt: skip


def key_options(key: str | None, table: TableSpec | None) -> KeyOptions | None:
    """``--idempotency-key`` and the options of a table run it covers, as the engine's one value (None: no key)."""
    if key is None:
        return None
    from ..engine import KeyOptions, check_key, table_fields

    return KeyOptions(check_key(key), () if table is None else table_fields(table))


WaitLockOpt = Annotated[float | None, typer.Option("--wait-lock", parser=parse_duration, metavar="DURATION", help="When another cbatch on this machine is sending for the same run (job or batch), wait this long for it to end instead of stopping at once (exit 5).", show_default=False)]  # fmt: skip


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
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Run every check (the file, the context, the budget, a job's split plan) and send nothing: exit 0 when the create would go ahead.")]  # fmt: skip


Seam = Literal["watch", "results", "table", "values"]
"""What a command hands over: its ``WatchSpec``, its ``ResultsSpec``, its ``TableSpec``, or
its sending values as one tuple (a ``SendSpec``, ``JobOptions``, ``RetryOptions``...)."""

seams: dict[Seam, Callable[[str, Any], None]] = {}
"""The seams where a command hands what it parsed from its flags to the engine, as gh's ``runF``.

Empty in use. A test sets one (``monkeypatch.setitem(seams, "watch", f)``) to
see, in-process, the value each command built: :func:`hand_over` then calls it
and ends the command (exit 0) before any request is made.
"""


def hand_over(seam: Seam, command: str, value: Any) -> None:
    """Where ``command`` (``"create --watch"``, ``"jobs results"``...) has parsed ``seam``'s value whole."""
    told = seams.get(seam)
    if told is not None:
        told(command, value)
        raise typer.Exit(0)


def send_spec(
    state: CliState,
    *,
    file: Path,
    model: str,
    name: str,
    dataset_name: str | None,
    dataset_type: str | None,
    source: Path | None,
    label: str | None,
    max_cost: Decimal | None,
    max_input_tokens: int | None,
    context_check: bool,
    strict_context: bool,
    tokenizer: Path | None,
    wait_lock: float | None,
    carry_on: Callable[[str], str] | None,
    key: KeyOptions | None = None,
    checked: FileReport | None = None,
    table_fields: tuple[tuple[str, str], ...] = (),
) -> SendSpec:
    """``create --file``'s (and ``--from``'s) sending flags as one ``SendSpec``, with the settings they read.

    Built once per command and handed whole to the engine
    (:func:`cohere_batch_cli.tasks.send_file.create_from_file`), as a
    ``WatchSpec`` is: the counting options and the budget come from the
    settings and the global options here, and nowhere else.
    """
    from ..engine import GuardOptions, SendSpec
    from ._estimating import budget, count_options

    return SendSpec(
        file=file, model=model, name=name, dataset_name=dataset_name, dataset_type=dataset_type,
        source=source, label=label,
        guard=GuardOptions(count_options(state, tokenizer), check_context=context_check, strict=strict_context),
        budget=budget(state, model, max_cost, max_input_tokens), limits=state.settings().limits,
        wait_lock=wait_lock or 0.0, carry_on=carry_on, key=key, checked=checked,
        table_fields=table_fields,
    )  # fmt: skip


def retry_options(
    state: CliState,
    *,
    rounds: int,
    pause: float,
    match: str | None,
    missing: bool,
    wait_lock: float | None,
    model: str | None = None,
    input_file: Path | None = None,
    dry_run: bool = False,
    rounds_flag: str | None = None,
    invalid: bool = False,
) -> RetryOptions:
    """A command's retry flags as one ``RetryOptions``, with the global options a download reads.

    The one place ``retry``, ``create --retry-failed``, ``jobs retry`` and the
    ``jobs`` commands' ``--retry-failed`` turn their flags into the value the
    engine takes whole; a bad ``--match`` is refused here, before anything is
    sent. ``rounds_flag`` names the flag that asks for rounds where rounds are
    optional (``--retry-failed``): with none asked, ``--match``,
    ``--no-missing`` and ``--pause`` would reach nothing, and are refused.
    ``invalid`` (``retry --invalid``) picks a schema run's invalid answers
    alone, so ``--match`` and ``--no-missing``, which shape the failures and
    missing records it leaves out, are refused with it.
    """
    from ..engine import RetryOptions, Rule

    if rounds_flag is not None and not rounds:
        given = [flag for flag, on in (("--match", match is not None), ("--no-missing", not missing),
                                       ("--pause", pause != DEFAULT_PAUSE)) if on]  # fmt: skip
        if given:
            from .. import UsageError

            raise UsageError(
                f"{given[0]} shapes the retry rounds: it needs {rounds_flag} N",
                hint=f"add {rounds_flag} N, or leave out {' and '.join(given)}",
            )

    if invalid and (match is not None or not missing):
        from .. import UsageError

        flag = "--match" if match is not None else "--no-missing"
        raise UsageError(
            f"--invalid sends only the invalid answers again: {flag} shapes the failures it leaves out",
            hint=f"leave out {flag}, or leave out --invalid to send failures (and invalid answers) again",
        )
    rule = Rule.only_invalid() if invalid else Rule(pattern=match, missing=missing)
    return RetryOptions(
        rule=rule, rounds=rounds, pause=pause, input=input_file,
        dry_run=dry_run, model=model, read_timeout=state.timeout, ca_bundle=state.ca_bundle,
        wait_lock=wait_lock or 0.0,
    )  # fmt: skip
