"""A table in, for every command that takes one: ``create``, ``jobs create`` and ``estimate --from``.

The one declaration of the table options (``--from``, ``--prompt``, ``--embed``
and the rest), parsed into one :class:`~cohere_batch_cli.tasks.table_prompts.TableSpec`
a command receives as ``table`` (None without ``--from``), as ``watch_options``
gives a ``WatchSpec``: an option cannot reach one command and be lost on another
(``tests/test_table_options.py`` runs every option on every command). Then the
one way a command turns the spec into requests: the flow of
:mod:`..tasks.table_send` (the one the Python API takes too) renders them into a
file that takes the ``--file`` path, or, for a job, a file kept in the state
folder that each part, a resume and a retry read again.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import UsageError
from ..engine import CHAT_BOUNDS
from ._options import _spec_options

if TYPE_CHECKING:
    from ..engine import TableRequests, TableSpec
    from ._context import CliState

PANEL = "A table in"


class EmbedInputType(str, Enum):
    """The embed ``input_type``s for text (``tasks/table_prompts.EMBED_INPUT_TYPES``), as typer's choices."""

    search_document = "search_document"
    search_query = "search_query"
    classification = "classification"
    clustering = "clustering"


class EmbedTruncate(str, Enum):
    NONE = "NONE"
    START = "START"
    END = "END"


class SafetyMode(str, Enum):
    """``safety_mode``'s values (``generation_options.SAFETY_MODES``), as typer's choices."""

    CONTEXTUAL = "CONTEXTUAL"
    STRICT = "STRICT"
    OFF = "OFF"


class Thinking(str, Enum):
    """``thinking.type``'s values (``generation_options.THINKING``), as typer's choices."""

    enabled = "enabled"
    disabled = "disabled"


def _bounds(name: str) -> dict[str, Any]:
    """typer's ``min``/``max`` of a generation option: bodies.yaml's, as ``generation_options`` writes them."""
    least, most = CHAT_BOUNDS[name]
    return {"min": least, "max": most}


FromOpt = Annotated[Path | None, typer.Option("--from", metavar="TABLE", help="A table (CSV, Parquet, JSONL of objects, or a folder of them): one request a row, a chat request from --prompt or an embed request from --embed.", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
PromptOpt = Annotated[str | None, typer.Option("--prompt", metavar="TEMPLATE", help='With --from: the user message, a Jinja2 template of the row\'s columns ({{ title }}, {{ row["review text"] }}).', show_default=False, rich_help_panel=PANEL)]  # fmt: skip
PromptFileOpt = Annotated[Path | None, typer.Option("--prompt-file", help="With --from: the template, read from a file.", dir_okay=False, show_default=False, rich_help_panel=PANEL)]  # fmt: skip
SystemOpt = Annotated[str | None, typer.Option("--system", metavar="TEXT", help="With --prompt: a system message before every prompt (as written, not a template).", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
SystemFileOpt = Annotated[Path | None, typer.Option("--system-file", help="With --prompt: the system message, read from a file.", dir_okay=False, show_default=False, rich_help_panel=PANEL)]  # fmt: skip
IdColumnOpt = Annotated[str | None, typer.Option("--id-column", metavar="COLUMN", help="With --from: the column that holds each row's custom_id (default: its row number, from 1).", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", **_bounds("max_tokens"), help="With --prompt: max_tokens of every request.", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", **_bounds("temperature"), help="With --prompt: temperature of every request.", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
POpt = Annotated[float | None, typer.Option("--p", **_bounds("p"), help="With --prompt: p of every request (top-p: sample from the likeliest tokens whose probabilities add up to p).", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
KOpt = Annotated[int | None, typer.Option("--k", **_bounds("k"), help="With --prompt: k of every request (top-k: sample from the k likeliest tokens; 0: off).", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
SeedOpt = Annotated[int | None, typer.Option("--seed", **_bounds("seed"), help="With --prompt: seed of every request (the same seed and options sample alike, as far as the API can).", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
FrequencyPenaltyOpt = Annotated[float | None, typer.Option("--frequency-penalty", **_bounds("frequency_penalty"), help="With --prompt: frequency_penalty of every request.", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
PresencePenaltyOpt = Annotated[float | None, typer.Option("--presence-penalty", **_bounds("presence_penalty"), help="With --prompt: presence_penalty of every request.", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
StopSequenceOpt = Annotated[list[str] | None, typer.Option("--stop-sequence", metavar="TEXT", help="With --prompt: stop generating at TEXT (stop_sequences); repeat it for up to 5.", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
SafetyModeOpt = Annotated[SafetyMode | None, typer.Option("--safety-mode", help="With --prompt: safety_mode of every request [default: the API's, CONTEXTUAL].", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
ThinkingOpt = Annotated[Thinking | None, typer.Option("--thinking", help="With --prompt: reasoning on or off for every request (thinking) [default: the API's, enabled on models that reason].", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
ThinkingBudgetOpt = Annotated[int | None, typer.Option("--thinking-budget", **_bounds("thinking_budget"), metavar="N", help="With --prompt: reasoning enabled, with at most N tokens of it a request (thinking token_budget).", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
PriorityOpt = Annotated[int | None, typer.Option("--priority", **_bounds("priority"), help="With --prompt: priority of every request (0, the default, is served first under load).", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
SchemaOpt = Annotated[Path | None, typer.Option("--schema", metavar="FILE", help="With --prompt: a JSON Schema every answer must follow (sent as response_format json_object), checked against Cohere's rules first.", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
NoDedupeOpt = Annotated[bool, typer.Option("--no-dedupe", help="With --from: send every row as a request of its own, even rows that render alike (sampling at a temperature above 0); the answer cache is not used either.", rich_help_panel=PANEL)]  # fmt: skip
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="With --from: do not look for the rows' answers in the local answer cache, nor keep them there (rows that render alike are still sent once).", rich_help_panel=PANEL)]  # fmt: skip
EmbedOpt = Annotated[str | None, typer.Option("--embed", metavar="COLUMN", help="With --from: embed each row's text in COLUMN (an embed run: batch-embed-v2-input) instead of a chat request from --prompt.", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
EmbedInputTypeOpt = Annotated[EmbedInputType | None, typer.Option("--embed-input-type", help="With --embed: the input_type of every request [default: search_document].", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
EmbedTypesOpt = Annotated[list[str] | None, typer.Option("--embed-types", metavar="TYPES", help="With --embed: the embedding_types asked for, comma-separated or repeated: float, int8, uint8, binary, ubinary, base64 [default: the API's, float].", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
EmbedTruncateOpt = Annotated[EmbedTruncate | None, typer.Option("--embed-truncate", help="With --embed: what the API cuts from a text over the model's limit (truncate): NONE fails the record [default: the API's, END].", show_default=False, rich_help_panel=PANEL)]  # fmt: skip
EmbedMaxTokensOpt = Annotated[int | None, typer.Option("--embed-max-tokens", min=1, metavar="N", help="With --embed: embed at most N tokens of each text (max_tokens; the rest is cut as --embed-truncate says).", show_default=False, rich_help_panel=PANEL)]  # fmt: skip

TABLE_FLAGS: dict[str, str] = {
    "from_table": "--from",
    "prompt": "--prompt",
    "prompt_file": "--prompt-file",
    "system": "--system",
    "system_file": "--system-file",
    "id_column": "--id-column",
    "max_tokens": "--max-tokens",
    "temperature": "--temperature",
    "p": "--p",
    "k": "--k",
    "seed": "--seed",
    "frequency_penalty": "--frequency-penalty",
    "presence_penalty": "--presence-penalty",
    "stop_sequences": "--stop-sequence",
    "safety_mode": "--safety-mode",
    "thinking": "--thinking",
    "thinking_budget": "--thinking-budget",
    "priority": "--priority",
    "schema": "--schema",
    "no_dedupe": "--no-dedupe",
    "no_cache": "--no-cache",
    "embed": "--embed",
    "embed_input_type": "--embed-input-type",
    "embed_types": "--embed-types",
    "embed_truncate": "--embed-truncate",
    "embed_max_tokens": "--embed-max-tokens",
}
"""Every table option, by parameter name: the same on every command that takes a table
(the option-reach test covers each)."""

_TABLE_PARAMS: dict[str, tuple[Any, Any]] = {
    "from_table": (FromOpt, None),
    "prompt": (PromptOpt, None),
    "prompt_file": (PromptFileOpt, None),
    "system": (SystemOpt, None),
    "system_file": (SystemFileOpt, None),
    "id_column": (IdColumnOpt, None),
    "max_tokens": (MaxTokensOpt, None),
    "temperature": (TemperatureOpt, None),
    "p": (POpt, None),
    "k": (KOpt, None),
    "seed": (SeedOpt, None),
    "frequency_penalty": (FrequencyPenaltyOpt, None),
    "presence_penalty": (PresencePenaltyOpt, None),
    "stop_sequences": (StopSequenceOpt, None),
    "safety_mode": (SafetyModeOpt, None),
    "thinking": (ThinkingOpt, None),
    "thinking_budget": (ThinkingBudgetOpt, None),
    "priority": (PriorityOpt, None),
    "schema": (SchemaOpt, None),
    "no_dedupe": (NoDedupeOpt, False),
    "no_cache": (NoCacheOpt, False),
    "embed": (EmbedOpt, None),
    "embed_input_type": (EmbedInputTypeOpt, None),
    "embed_types": (EmbedTypesOpt, None),
    "embed_truncate": (EmbedTruncateOpt, None),
    "embed_max_tokens": (EmbedMaxTokensOpt, None),
}

_GENERATION = (
    "max_tokens", "temperature", "p", "k", "seed", "frequency_penalty", "presence_penalty",
    "stop_sequences", "safety_mode", "thinking", "thinking_budget", "priority",
)  # fmt: skip
"""The options :func:`~cohere_batch_cli.tasks.table_prompts.chat_options` takes as they are given."""
_CHAT_ONLY = ("system", "system_file", *_GENERATION, "schema")
_EMBED_ONLY = ("embed_input_type", "embed_types", "embed_truncate", "embed_max_tokens")


def table_options(function: Callable[..., None]) -> Callable[..., None]:
    """Give a command every table option, parsed into one ``TableSpec`` (None without ``--from``) passed as ``table``.

    The one place the table options are declared, for ``create``, ``jobs
    create`` and ``estimate`` alike. The spec is checked as it is built: a
    combination that means nothing (``--embed`` with ``--prompt``, ``--system``
    without ``--prompt``, ``--type`` with ``--from``) stops the command with
    exit 2 before any request.
    """

    def build(values: dict[str, Any], others: dict[str, Any]) -> TableSpec | None:
        return table_spec(values, dataset_type=others.get("dataset_type"))

    return _spec_options(function, _TABLE_PARAMS, build, name="table")


def _given(values: dict[str, Any], names: tuple[str, ...] | list[str]) -> list[str]:
    defaults = {name: default for name, (_, default) in _TABLE_PARAMS.items()}
    return [TABLE_FLAGS[n] for n in names if values.get(n, defaults[n]) != defaults[n]]


def _go(flags: list[str]) -> str:
    """``--schema goes``, ``--system, --max-tokens go``: the flags given, and the verb that agrees."""
    return f"{', '.join(flags)} {'goes' if len(flags) == 1 else 'go'}"


def table_spec(values: dict[str, Any], *, dataset_type: str | None = None) -> TableSpec | None:
    """The table spec of these option values, or None without ``--from``; a bad mix is exit 2."""
    table = values.get("from_table")
    if table is None:
        stray = _given(values, list(TABLE_FLAGS))
        if stray:
            raise UsageError(f"{_go(stray)} with --from TABLE")
        return None
    prompt, prompt_file, embed = (
        values.get("prompt"),
        values.get("prompt_file"),
        values.get("embed"),
    )
    if embed is not None and (prompt is not None or prompt_file is not None):
        from ..engine import EMBED_WITH_PROMPT

        raise UsageError(EMBED_WITH_PROMPT)
    if embed is None and (prompt is None) == (prompt_file is None):
        raise UsageError(
            "--from needs exactly one of --prompt TEMPLATE, --prompt-file FILE or --embed COLUMN"
        )
    if dataset_type is not None:
        raise UsageError(
            "--type goes with --file: a table's requests are chat (--prompt) or embed (--embed)"
        )
    from ..engine import TableSpec

    common = {
        "table": table,
        "id_column": values.get("id_column"),
        "dedupe": not values.get("no_dedupe"),
        "cache": not values.get("no_cache"),
    }
    if embed is not None:
        stray = _given(values, _CHAT_ONLY)
        if stray:
            raise UsageError(f"{_go(stray)} with --prompt, not --embed")
        return TableSpec(embed=embed, options=_embed_body(values), **common)
    stray = _given(values, _EMBED_ONLY)
    if stray:
        raise UsageError(f"{_go(stray)} with --embed")
    system, system_file = values.get("system"), values.get("system_file")
    if system is not None and system_file is not None:
        raise UsageError("give --system or --system-file, not both")
    if prompt is not None:
        template, where = prompt, "--prompt"
    else:
        assert prompt_file is not None
        template, where = _read_text(prompt_file, "--prompt-file"), str(prompt_file)
    return TableSpec(
        template=template,
        where=where,
        system=system if system_file is None else _read_text(system_file, "--system-file"),
        options=_chat_body(values),
        **common,
    )


def _chat_body(values: dict[str, Any]) -> dict[str, Any]:
    from ..engine import chat_options

    schema = values.get("schema")
    given: dict[str, Any] = {name: values.get(name) for name in _GENERATION}
    for name in ("safety_mode", "thinking"):  # typer's choices, as the text they hold
        if given[name] is not None:
            given[name] = given[name].value
    given["stop_sequences"] = given["stop_sequences"] or ()
    return chat_options(
        **given,
        schema=None if schema is None else _read_text(schema, "--schema"),
        schema_where=f"--schema {schema}",
    )


def _embed_body(values: dict[str, Any]) -> dict[str, Any]:
    from ..engine import embed_options

    kind, truncate = values.get("embed_input_type"), values.get("embed_truncate")
    return embed_options(
        input_type=None if kind is None else kind.value,
        embedding_types=[
            t.strip() for given in values.get("embed_types") or () for t in given.split(",")
        ],
        truncate=None if truncate is None else truncate.value,
        max_tokens=values.get("embed_max_tokens"),
    )


def _read_text(path: Path, option: str) -> str:
    from ..engine import InputFileError

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InputFileError(f"{option}: cannot read {path}: {reason}") from None


# -- a spec into requests ------------------------------------------------------------------------


def render_table(
    ctx: typer.Context,
    state: CliState,
    table: TableSpec,
    model: str,
    *,
    record: bool = False,
    job: bool = False,
    check: bool = False,
) -> TableRequests:
    """Render every row of ``table`` into requests before anything is sent (a null or a missing column stops it here).

    Through the one flow of :mod:`..tasks.table_send`, held for the rest of
    the command. ``record``: fingerprint the table for ``results`` (a batch
    that will be sent). The file is removed when the command ends, unless
    ``job``: a job's parts, its resume and its retries read its input again,
    so it is kept in the state folder (``table-jobs/``) until ``jobs prune``
    forgets the job. ``check``: checked as written, for a send of one batch
    (:attr:`TableRequests.checked`).
    """
    from ..engine import job_input_path, table_requests_file

    keep_as = job_input_path(table.table) if job else None
    return ctx.with_resource(
        table_requests_file(
            table, model, state.settings().prices_for(model), state.out, record=record,
            keep_as=keep_as, check=check,
        )
    )  # fmt: skip
