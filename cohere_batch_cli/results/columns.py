"""The columns of a results table, CSV and Parquet alike: which there are, and what each holds.

One model serves both formats, so a CSV and a Parquet file of the same batch
hold the same columns with the same values; only Parquet keeps their types.

- Always ``custom_id``, ``status`` (``succeeded`` or ``failed``) and ``error``.
- Chat output: ``text`` (the reply's text parts), ``finish_reason``,
  ``input_tokens``, ``output_tokens``, ``tool_calls`` (JSON text).
- Embed output: ``input_tokens``, then one ``embeddings_<type>`` column per
  embedding type, each a list of vectors (one per input): ``float`` as float32,
  ``int8``/``binary`` as int8, ``uint8``/``ubinary`` as uint8, ``base64`` as text.
- ``body`` (the whole response as JSON text) on request, and ``request`` (the
  input line's body as JSON text) with ``--join``.
- ``--column NAME=EXPR``: a JMESPath expression over the record as JSONL shows
  it (``custom_id``, ``status``, ``error``, ``body``, ``request``); the column
  takes the JSON type of its values, and a column of mixed types is JSON text.
  A chosen column with a default's name takes that column's place.

Which output kind a batch is (and which embedding types it holds) is read
from the first records, since a table's header comes before its rows; the
dataset's type decides when those records are all failures. The schema is
documented in docs/results-columns.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson as _orjson

from ..errors import OutputOptionError
from .records import decode_body, dumps, finite, is_failed, reply_text, usage

if TYPE_CHECKING:
    from .table_out import InputTable

Kind = Literal["chat", "embed"]
ColumnType = Literal[
    "string",
    "int64",
    "json_text",
    "inferred",
    "vectors_float32",
    "vectors_int8",
    "vectors_uint8",
    "vectors_text",
    "arrow",
    "typed",
]
"""What a column's values are; :mod:`.parquet` maps each to an Arrow type, CSV writes them all as text.

``arrow``: a column of an input Parquet table, its Arrow type in ``Column.shape``;
``typed``: a typed answer's column, its :class:`~.answers.AnswerType` in ``Column.shape``."""

EMBEDDING_TYPES: dict[str, ColumnType] = {
    "float": "vectors_float32",
    "int8": "vectors_int8",
    "uint8": "vectors_uint8",
    "binary": "vectors_int8",
    "ubinary": "vectors_uint8",
    "base64": "vectors_text",
}
"""The API's embedding types, in the order their columns come, and the type of each column."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_KEYS = frozenset({"custom_id", "body", "error"})


class Record:
    """One output record as the columns read it: decoded once, whatever the number of columns."""

    __slots__ = ("_view", "body", "custom_id", "error", "failed", "raw", "request")

    def __init__(self, raw: dict[str, Any], request: Any = None) -> None:
        self.raw = raw
        self.custom_id = raw.get("custom_id")
        self.failed = is_failed(raw)
        error = raw.get("error") if self.failed else None
        self.error = error if error is None or isinstance(error, str) else dumps(error)
        self.body = fast_decode(raw.get("body"))
        self.request = request
        self._view: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        """The record as a JSONL line shows it, plus ``status`` and ``request``: what EXPR reads."""
        if self._view is None:
            view = {
                "custom_id": self.custom_id,
                "status": "failed" if self.failed else "succeeded",
                "error": self.error,
                "body": self.body,
                "request": self.request,
            }
            view.update(
                (k, v) for k, v in self.raw.items() if k not in _PLAIN_KEYS and k not in view
            )
            self._view = view
        return self._view


def fast_decode(value: Any) -> Any:
    """:func:`.records.decode_body`, through orjson first: an embed body is thousands of numbers."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return _orjson.loads(value)
        except _orjson.JSONDecodeError:
            pass  # not JSON to orjson (or a number past 64 bits): the standard library decides
    return decode_body(value)


@dataclass(frozen=True)
class ColumnSpec:
    """One ``--column NAME=EXPR``, its expression compiled (so a bad one fails before any download)."""

    name: str
    expression: str
    compiled: Any = field(compare=False, repr=False)


class Chosen:
    """The value of a chosen column for a record, counting the records its expression failed on.

    An expression can fail on some records only (``length(body.texts)`` of a
    failure, whose body is null): the value there is null, and ``failures`` and
    ``reason`` make the warning at the end. One per table, so counts never mix.
    """

    def __init__(self, spec: ColumnSpec) -> None:
        self.spec = spec
        self.failures = 0
        self.reason = ""

    def __call__(self, record: Record) -> Any:
        from jmespath.exceptions import JMESPathError

        try:
            return self.spec.compiled.search(record.view())
        except JMESPathError as exc:
            self.failures += 1
            self.reason = self.reason or _first_line(exc)
            return None


def parse_column(text: str) -> ColumnSpec:
    """``NAME=EXPR`` into a :class:`ColumnSpec`; a malformed one is an :class:`OutputOptionError` (exit 2)."""
    from ..query import QuerySyntaxError, compile_query

    name, sep, expression = text.partition("=")
    name, expression = name.strip(), expression.strip()
    if not sep or not expression:
        raise OutputOptionError(
            f"--column {text!r}: expected NAME=EXPR, e.g. --column model=body.id"
        )
    if not _NAME.fullmatch(name):
        raise OutputOptionError(
            f"--column {text!r}: a column name is letters, digits and _, not starting with a digit"
        )
    try:
        compiled = compile_query(expression)
    except QuerySyntaxError as exc:
        raise OutputOptionError(
            f"--column {name}: {expression!r} is not a JMESPath expression: {exc}"
        ) from None
    return ColumnSpec(name, expression, compiled)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_columns(texts: Iterable[str]) -> tuple[ColumnSpec, ...]:
    """Every ``--column``, each name once."""
    specs: list[ColumnSpec] = []
    for text in texts:
        spec = parse_column(text)
        if any(s.name == spec.name for s in specs):
            raise OutputOptionError(f"--column {spec.name} is given twice")
        specs.append(spec)
    return tuple(specs)


@dataclass(frozen=True)
class TableOptions:
    """What a table holds beyond the defaults: chosen columns, the body, and the kind when known."""

    columns: tuple[ColumnSpec, ...] = ()
    body: bool = False
    kind: Kind | None = None
    """The kind the output dataset's type names (``batch-embed-v2-output``), for a start of failures."""
    attempts: bool = False
    """Merged results of a retried batch: an ``attempt`` column, the attempt each row came from."""
    input_table: InputTable | None = None
    """A table run's table: written again with the answers as columns (:mod:`.table_out`)."""


def kind_of_dataset_type(dataset_type: str | None) -> Kind | None:
    """``embed`` or ``chat`` from a dataset type such as ``batch-embed-v2-output``; None if it names neither."""
    text = (dataset_type or "").lower()
    if "embed" in text:
        return "embed"
    if "chat" in text:
        return "chat"
    return None


@dataclass(frozen=True)
class Column:
    """One column: its name, the type of its values, and how a record gives its value."""

    name: str
    type: ColumnType
    get: Callable[[Record], Any]
    shape: Any = None
    """The type of an ``arrow`` or ``typed`` column (see :data:`ColumnType`)."""


@dataclass
class Layout:
    """What the first records say about the output: its kind and the embedding types it holds."""

    kind: Kind
    embedding_types: tuple[str, ...] = ()


def detect(records: Sequence[Record], hint: Kind | None) -> Layout:
    """The kind of output and its embedding types, read from ``records`` (the first ones).

    A success whose body holds ``embeddings`` makes it embed output; with no
    success among them, the dataset type's ``hint`` decides, then chat.
    """
    seen: dict[str, None] = {}
    kinds = set()
    for record in records:
        body = record.body
        if not isinstance(body, dict):
            continue
        if "embeddings" in body:
            kinds.add("embed")
            seen.update(dict.fromkeys(embedding_types_of(body)))
        else:
            kinds.add("chat")
    kind: Kind = "embed" if "embed" in kinds else "chat" if kinds else (hint or "chat")
    if kind == "embed":
        types = tuple(t for t in EMBEDDING_TYPES if t in seen) or ("float",)
        return Layout("embed", types)
    return Layout("chat")


def embedding_types_of(body: dict[str, Any]) -> list[str]:
    """The known embedding types an embed body holds (v1's bare list of vectors is ``float``)."""
    embeddings = body.get("embeddings")
    if isinstance(embeddings, dict):
        return [t for t in embeddings if t in EMBEDDING_TYPES]
    if isinstance(embeddings, list):
        return ["float"]
    return []


def uncovered_embeddings(record: Record, covered: tuple[str, ...]) -> bool:
    """Whether a record holds an embedding type that no column has (the columns came from earlier records)."""
    body = record.body
    if not isinstance(body, dict):
        return False
    embeddings = body.get("embeddings")
    if isinstance(embeddings, dict) and embeddings.keys() <= set(covered):
        return False  # the usual case, asked of every record: said without a loop
    return any(t not in covered for t in embedding_types_of(body))


def table_columns(layout: Layout, options: TableOptions, *, joined: bool) -> list[Column]:
    """The columns of the table, in order: the defaults of the kind, body, request, then chosen ones."""
    columns = [
        Column("custom_id", "string", _custom_id),
        Column("status", "string", _status),
        Column("error", "string", _error),
    ]
    if layout.kind == "chat":
        columns += [
            Column("text", "string", _text),
            Column("finish_reason", "string", _finish_reason),
            Column("input_tokens", "int64", _input_tokens),
            Column("output_tokens", "int64", _output_tokens),
            Column("tool_calls", "json_text", _tool_calls),
        ]
    else:
        columns.append(Column("input_tokens", "int64", _input_tokens))
        columns += [
            Column(f"embeddings_{t}", EMBEDDING_TYPES[t], _embeddings(t))
            for t in layout.embedding_types
        ]
    if options.body:
        columns.append(Column("body", "json_text", _body))
    if joined:
        columns.append(Column("request", "json_text", _request))
    if options.attempts:
        columns.append(Column("attempt", "int64", _attempt))
    for spec in options.columns:
        chosen = Column(spec.name, "inferred", Chosen(spec))
        at = next((i for i, c in enumerate(columns) if c.name == spec.name), None)
        if at is None:
            columns.append(chosen)
        else:
            columns[at] = chosen
    return columns


# -- the values of the default columns ------------------------------------------------------


def _custom_id(record: Record) -> Any:
    return record.custom_id


def _attempt(record: Record) -> Any:
    return record.raw.get("attempt")


def _status(record: Record) -> str:
    return "failed" if record.failed else "succeeded"


def _error(record: Record) -> str | None:
    return record.error


def _text(record: Record) -> str | None:
    return reply_text(record.body) if isinstance(record.body, dict) else None


def _finish_reason(record: Record) -> str | None:
    return finish_reason_of(record.body)


def finish_reason_of(body: Any) -> str | None:
    """The ``finish_reason`` column's value for a decoded body: v2's, else OpenAI's first choice's."""
    if not isinstance(body, dict):
        return None
    reason = body.get("finish_reason")
    if reason is None:
        choice = _first_choice(body)
        reason = choice.get("finish_reason") if choice is not None else None
    return reason if isinstance(reason, str) else None if reason is None else dumps(reason)


def _input_tokens(record: Record) -> int | None:
    return _as_int(usage(record.body)[0])


def _output_tokens(record: Record) -> int | None:
    return _as_int(usage(record.body)[1])


def _tool_calls(record: Record) -> str | None:
    """The reply's tool calls as JSON text: v2's ``message.tool_calls``, OpenAI's, v1's ``tool_calls``."""
    body = record.body
    if not isinstance(body, dict):
        return None
    message = body.get("message")
    if not isinstance(message, dict):
        choice = _first_choice(body)
        message = choice.get("message") if choice is not None else None
    calls = message.get("tool_calls") if isinstance(message, dict) else body.get("tool_calls")
    return dumps(calls) if calls else None


def _embeddings(kind: str) -> Callable[[Record], Any]:
    def get(record: Record) -> Any:
        body = record.body
        if not isinstance(body, dict):
            return None
        embeddings = body.get("embeddings")
        if isinstance(embeddings, dict):
            return embeddings.get(kind)
        return embeddings if kind == "float" and isinstance(embeddings, list) else None

    get.__name__ = f"embeddings_{kind}"
    return get


def _body(record: Record) -> str | None:
    body = record.body
    if body is None:
        return None
    return body if isinstance(body, str) else dumps(body)


def _request(record: Record) -> str | None:
    return None if record.request is None else dumps(record.request)


def _first_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def as_int(value: Any) -> int | None:
    """A token count as an int: the API writes them as numbers, or in a batch as strings."""
    return _as_int(value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)  # int64 counts as the API writes them in a batch: strings
    return None


# -- CSV --------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """A value as CSV text: a string as itself (a date or a decimal as its text), null empty, a list or
    an object as its JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else dumps(finite(value))[1:-1]  # NaN, Infinity
    text = dumps(value)
    if text[:1] == '"' and not isinstance(value, bytes):  # a date, a decimal: its text, not JSON's
        import json

        return str(json.loads(text))
    return text
