"""Results as the input table: every row of the table a run was made from, in its order, answers beside it.

``cbatch results RUN -o OUT`` of a ``create --from TABLE`` run writes TABLE
again with new columns, whatever order the service answered in:

1. every record is placed on its row by :mod:`.order` (by its
   ``custom_id``: the row's ``--id-column`` value, else its number), spilled
   to disk a range of rows at a time, so memory stays flat;
2. the table is read again a chunk at a time (the caller's :class:`InputRows`,
   :mod:`cohere_batch_cli.tasks.tables`), and each chunk is written with the
   answers of its rows, read back range by range in row order.

The columns, after the table's own (docs/tables.md has the contract):
``answer`` (the reply's text; embed runs have none), one typed column per
property of the answer schema and ``invalid_output`` (runs with one),
``status`` (``succeeded``, ``invalid`` for an answer that breaks the schema
(:mod:`.validity`), ``failed``, or ``missing`` for a row no result came back for), ``error``, ``finish_reason``, ``input_tokens``, ``output_tokens``
(embed: ``input_tokens`` and the ``embeddings_<type>`` vectors of
:mod:`.columns`). ``answer_prefix`` goes before every added name; an added
name that is also a column of the table (or twice among the added) is
refused before anything is written.

Parquet keeps a Parquet table's own columns as they were read (Arrow arrays,
untouched); CSV writes a struct's fields as dotted columns and lists as JSON
text; JSONL writes one object a row, its keys the columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter, methodcaller
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from orjson import JSONDecodeError as _JSONDecodeError
from orjson import loads as _loads

from ..errors import InputRejected, OutputOptionError
from .answer_columns import AnswerType, TypedAnswers, flattened
from .columns import Column, Layout, Record, TableOptions, as_int, detect, table_columns
from .columns import fast_decode as _fast_decode
from .columns import finish_reason_of as _finish_reason_of
from .counts import Counts, RowCounts
from .records import dumps, is_failed, reply_text, usage
from .validity import verdict

if TYPE_CHECKING:
    from ..output.progress import ProgressSink
    from .table import TableWriter

PROGRESS_EVERY = 1000
_EXAMPLES = 3


class InputChunk(Protocol):
    """Some rows of the table: ``size`` of them, as dicts, and as an Arrow record batch when read from Parquet."""

    size: int
    arrow: Any

    @property
    def rows(self) -> list[dict[str, Any]]: ...


class InputRows(Protocol):
    """The table read again (:class:`cohere_batch_cli.tasks.tables.TableRows`)."""

    columns: list[str]
    arrow_schema: Any
    """The Arrow schema of a table of Parquet files; None for any other."""
    kind: str
    """``csv``, ``parquet``, ``jsonl`` or ``mixed``."""

    def chunks(self) -> Iterator[Any]: ...
    def ids(self, id_column: str | None) -> Iterator[str | None]: ...


class RowReuse(Protocol):
    """The rows of a run that were not sent (``create --from`` sends each distinct request once).

    :class:`cohere_batch_cli.tasks.table_results.MapReuse` reads them from the
    map the run kept; rows count from 0.
    """

    def reused(self, start: int, stop: int) -> dict[int, int]:
        """Rows in ``[start, stop)`` that asked what an earlier row asked: row -> that row."""
        ...

    def cached(self, rows: list[int]) -> dict[int, str]:
        """Those of ``rows`` the answer cache answered: row -> the reply body (JSON text) the run kept."""
        ...

    def written(self) -> None:
        """The whole table was written (a map that is done with may be pruned later)."""
        ...

    def keep(self, answers: list[tuple[int, str, int, int]]) -> None:
        """Put sent rows' usable answers (row, reply body, input and output tokens) in the answer cache."""
        ...

    def close(self) -> None: ...


PREFIX_HINT = (
    "--answer-prefix P puts P before every column results adds (e.g. --answer-prefix llm_)"
)
"""The way out of added columns that clash with the table's own, in the command line's words."""


@dataclass(frozen=True)
class InputTable:
    """The table results are written into: its rows, how its ids were made, the added columns' words."""

    rows: InputRows
    label: str
    """How messages name it (its path)."""
    id_column: str | None
    """``--id-column`` of the run; None: each row's ``custom_id`` is its number from 1."""
    answer_prefix: str = ""
    typed: TypedAnswers | None = None
    """The answer schema's columns, for a run with one."""
    reuse: RowReuse | None = None
    """The rows not sent (duplicates, cache hits), for a run that sent each request once."""
    prefix_hint: str = PREFIX_HINT
    """How to put a prefix before the added columns, in the words of whoever meets a clash:
    a command's flag, or a program's argument (the Python API's ``answer_prefix``)."""


META = ("status", "error", "finish_reason", "input_tokens", "output_tokens", "cached")
"""The columns beside the answer, for chat; embed has ``status``, ``error``, ``input_tokens`` and ``cached``.

``cached`` is true for a row whose answer came without a request of its own
(the answer cache's, or an earlier row's that asked the same); its token
counts are then 0, the tokens billed for it: the row that was sent carries
the bill, so a token column sums to what the run cost.
"""


def added_names(table: InputTable, layout: Layout | None = None, fmt: str = "parquet") -> list[str]:
    """The names of the columns added to the table, prefixed, in order (chat unless ``layout`` says otherwise)."""
    return [c.name for c in _added(table, layout or Layout("chat"), fmt)]


def refuse_collisions(table: InputTable, names: Sequence[str]) -> None:
    """Refuse (exit 2) added names that are columns of the table, or given twice among the added."""
    own = set(table.rows.columns)
    clashing = [n for n in names if n in own]
    seen: set[str] = set()
    twice: list[str] = []
    for name in names:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    if clashing:
        listed = ", ".join(clashing)
        raise OutputOptionError(
            f"{table.label} has column{'s' if len(clashing) > 1 else ''} {listed} already: "
            "the answers would take their place",
            hint=table.prefix_hint,
        )
    if twice:
        raise OutputOptionError(
            f"the answer schema's propert{'ies' if len(twice) > 1 else 'y'} {', '.join(twice)} "
            "would be written over the column of the same name that results adds",
            hint="rename the property in the schema (a prefix is put before both)",
        )


class Answered(Record):
    """One row's result: its record (or none: ``missing``), and its typed answer when the run has a schema.

    Everything the added columns show is read here, once, into attributes the
    columns take with C-level getters (:func:`_column_values`): the row's
    ``status``, the reply's text, finish reason and token counts, the typed
    values. A chat reply of the usual shape is read by :func:`_reply_of` in
    one pass; any other by the general readers of :mod:`.records`.
    """

    __slots__ = (
        "_usage", "cached", "cached_flag", "finish_reason", "input_tokens", "invalid", "missing",
        "not_json", "output_tokens", "status", "text", "typed",
    )  # fmt: skip

    def __init__(
        self,
        raw: dict[str, Any] | None,
        typed: TypedAnswers | None,
        *,
        cached: bool = False,
        keep_body: bool = True,
    ) -> None:
        """``keep_body`` False: the record and its decoded body are let go once read.

        A chat row's columns are all read here; a chunk of rows holding on to
        their bodies until the chunk was written cost a sixth of the write
        (freed a chunk later, their memory no longer in the processor's cache).
        An embed row keeps its body: its vector columns read it.
        """
        self.request = None
        self._view = None
        self.cached = cached
        """Answered without a request of its own (a duplicate row, a cache hit): nothing billed for it."""
        self.typed: dict[str, Any] | None = None
        self.invalid: str | None = None
        self._usage: tuple[int | None, int | None] = (None, None)
        if raw is None:
            self.raw = {}
            self.custom_id = self.error = self.body = self.text = self.finish_reason = None
            self.missing = True
            self.failed = self.not_json = False
            self.cached_flag = None
            self.input_tokens = self.output_tokens = None
            self.status = "missing"
            return
        self.raw = raw
        self.missing = False
        self.cached_flag = cached
        self.custom_id = raw.get("custom_id")
        error = raw.get("error")
        failed = self.failed = error is not None and error != "" and error != {}
        self.error = (
            (error if error is None or isinstance(error, str) else dumps(error)) if failed else None
        )
        value = raw.get("body")
        body: Any = None
        if type(value) is str and value[:1] == "{":  # the usual body: JSON text of an object
            try:
                body = _loads(value)
            except _JSONDecodeError:
                body = _fast_decode(value)
        else:
            body = _fast_decode(value)
        self.body = body
        self.not_json = isinstance(value, (str, bytes, bytearray)) and isinstance(body, str)
        tokens: tuple[int | None, int | None] = (None, None)
        text = reason = None
        if type(body) is dict:
            text, reason, tokens = _reply_of(body)
        self.text = text
        """The reply's text, read once for ``answer`` and the typed columns alike."""
        self.finish_reason = reason
        self._usage = tokens
        self.input_tokens = 0 if cached else tokens[0]
        """The ``input_tokens`` column: 0 for a cached row (the row that was sent carries the bill)."""
        self.output_tokens = 0 if cached else tokens[1]
        if typed is not None and not failed:
            self.typed, self.invalid = verdict(typed, body, text)
        self.status = "failed" if failed else "succeeded" if self.invalid is None else "invalid"
        if not keep_body:
            self.raw = {}
            self.body = None

    @property
    def tokens(self) -> tuple[int | None, int | None]:
        """(input, output) tokens as the body gives them, read once in ``__init__``."""
        return self._usage

    @property
    def succeeded(self) -> bool:
        return not self.missing and not self.failed and self.invalid is None


def _reply_of(body: dict[str, Any]) -> tuple[str, str | None, tuple[int | None, int | None]]:
    """A reply's text, finish reason and (input, output) tokens, as the columns show them.

    The usual chat reply (one text part, a finish reason, billed units) is read
    in one pass; any other shape by :func:`.records.reply_text`, the
    ``finish_reason`` column's reader and :func:`.records.usage`, which the
    usual shape gives the same answers as.
    """
    message = body.get("message")
    holder = body.get("usage")
    if type(message) is dict and type(holder) is dict:
        content = message.get("content")
        units = holder.get("billed_units")
        if type(content) is list and len(content) == 1 and type(units) is dict:
            part = content[0]
            reason = body.get("finish_reason")
            tin = units.get("input_tokens")
            tout = units.get("output_tokens")
            if (
                type(part) is dict
                and part.get("type") == "text"
                and type(text := part.get("text")) is str
                and type(reason) is str
                and type(tin) is int
                and type(tout) is int
            ):
                return text, reason, (tin, tout)
    given = usage(body)
    return reply_text(body), _finish_reason_of(body), (as_int(given[0]), as_int(given[1]))


_answer: Callable[[Answered], str | None] = attrgetter("text")
_input_tokens: Callable[[Answered], int | None] = attrgetter("input_tokens")
_output_tokens: Callable[[Answered], int | None] = attrgetter("output_tokens")
_error: Callable[[Answered], str | None] = attrgetter("error")
_status: Callable[[Answered], str] = attrgetter("status")
_cached: Callable[[Answered], bool | None] = attrgetter("cached_flag")
_finish: Callable[[Answered], str | None] = attrgetter("finish_reason")

_OWN_GETTERS: dict[str, Callable[[Answered], Any]] = {
    "status": _status,
    "input_tokens": _input_tokens,
    "output_tokens": _output_tokens,
    "error": _error,
    "finish_reason": _finish,
}


_invalid: Callable[[Answered], str | None] = attrgetter("invalid")
_failed: Callable[[Answered], bool] = attrgetter("failed")
_not_json: Callable[[Answered], bool] = attrgetter("not_json")
_typed_of: Callable[[Answered], dict[str, Any] | None] = attrgetter("typed")


class _Typed:
    """A typed column's value: the answer's property ``name`` (CSV: a field at ``path`` within it)."""

    __slots__ = ("name", "path")

    def __init__(self, name: str, path: tuple[str, ...] = ()) -> None:
        self.name = name
        self.path = path

    def __call__(self, answer: Answered) -> Any:
        value = answer.typed.get(self.name) if answer.typed is not None else None
        for key in self.path:
            value = value.get(key) if isinstance(value, dict) else None
        return value


def _typed(name: str, path: tuple[str, ...] = ()) -> Callable[[Answered], Any]:
    return _Typed(name, path)


def _column_values(get: Callable[[Answered], Any], answers: list[Answered]) -> list[Any]:
    """One added column's values for a chunk's rows, read column by column.

    A whole column at a time, with C-level getters (``attrgetter``) mapped over
    the rows where there is one: a Python call per row and column was most of
    what writing a chunk cost.
    """
    if type(get) is _Typed and not get.path:
        name = get.name
        return [t.get(name) if (t := a.typed) is not None else None for a in answers]
    return list(map(get, answers))


def _typed_values(columns: list[Column], answers: list[Answered]) -> list[list[Any]]:
    """Every added column's values for a chunk's rows: the typed ones read from each row's answer at once."""
    typed = list(map(_typed_of, answers))
    every = None not in typed
    return [
        list(map(methodcaller("get", c.get.name), typed))
        if every and type(c.get) is _Typed and not c.get.path
        else _column_values(c.get, answers)
        for c in columns
    ]


def _added(table: InputTable, layout: Layout, fmt: str) -> list[Column]:
    """The added columns, prefixed: answer (or typed ones), then status and the rest of :data:`META`."""
    p = table.answer_prefix
    defaults = {c.name: c for c in table_columns(layout, TableOptions(), joined=False)}
    columns: list[Column] = []
    if layout.kind == "chat":
        columns.append(Column(p + "answer", "string", _answer))  # type: ignore[arg-type]
        if table.typed is not None:
            for name, kind in table.typed.columns:
                columns.extend(_typed_columns(p + name, name, kind, fmt))
            columns.append(Column(p + "invalid_output", "string", _invalid))  # type: ignore[arg-type]
        meta = list(META)
    else:
        meta = ["status", "error", "input_tokens", "cached"]
        meta += [n for n in defaults if n.startswith("embeddings_")]
    for name in meta:
        if name == "cached":
            columns.append(Column(p + name, "typed", _cached, AnswerType("bool")))  # type: ignore[arg-type]
        elif name in _OWN_GETTERS:
            columns.append(
                Column(p + name, defaults[name].type, _OWN_GETTERS[name])  # type: ignore[arg-type]
            )
        else:
            column = defaults[name]
            columns.append(Column(p + name, column.type, column.get))
    return columns


def _typed_columns(shown: str, name: str, kind: AnswerType, fmt: str) -> list[Column]:
    if fmt != "csv":
        return [Column(shown, "typed", _typed(name), kind)]  # type: ignore[arg-type]
    return [
        Column(
            shown + dotted[len(name) :],
            "typed",
            _typed(name, path),  # type: ignore[arg-type]
            leaf,
        )
        for dotted, path, leaf in flattened(name, kind)
    ]


def _input_columns(rows: InputRows, fmt: str) -> list[Column]:
    """The table's own columns: Parquet keeps a Parquet table's types, CSV's are text, JSONL's inferred."""

    def unused(record: Record) -> None:  # the values come from the table's chunks, not from records
        return None

    if rows.arrow_schema is not None and fmt == "parquet":
        return [Column(f.name, "arrow", unused, f.type) for f in rows.arrow_schema]
    kind = "string" if rows.kind == "csv" else "inferred"
    return [Column(name, kind, unused) for name in rows.columns]  # type: ignore[arg-type]


@contextmanager
def _old_objects_frozen() -> Iterator[None]:
    """Spare the garbage collector's full passes the objects that were there before the write.

    Each chunk's rows live long enough to reach the oldest generation, and
    every quarter's growth of it starts a full pass over every object the
    process holds (pyarrow's, pandas', the modules'): at 100,000 rows those
    passes took a fifth of the write. Frozen, the old objects are left out of
    them; what the write makes is still collected as before, and
    :func:`gc.unfreeze` hands the old ones back when it ends. The youngest
    generation is collected every 100,000 allocations rather than 700 while it
    runs (fewer passes find a chunk's rows alive, so fewer reach the oldest;
    20,000 took 7 % more time a record, 500,000 no less, docs/performance.md,
    T2); the process's own thresholds come back with the old objects.
    """
    import gc

    thresholds = gc.get_threshold()
    gc.freeze()
    if thresholds[0]:  # 0: automatic collection is off in this process, and stays off
        gc.set_threshold(max(thresholds[0], 100_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@_old_objects_frozen()
def write_table_out(
    records: Any,
    out: IO[bytes],
    *,
    fmt: Literal["jsonl", "csv", "parquet"],
    failed_only: bool,
    sink: ProgressSink,
    options: TableOptions,
    spool_dir: Path,
) -> Counts:
    """Write ``options.input_table`` with each row's answer; count every record, and the rows written."""
    from .order import in_table_order

    table = options.input_table
    assert table is not None
    counts = Counts()
    first: list[dict[str, Any]] = []

    def counted() -> Iterator[dict[str, Any]]:
        """The records, counted a thousand at a time (progress advances as often)."""
        source = iter(records)
        for batch in iter(lambda: list(islice(source, PROGRESS_EVERY)), []):
            counts.total += len(batch)
            counts.failed += sum(map(is_failed, batch))
            sink.advance(records=len(batch))
            yield from batch

    ids = table.rows.ids(table.id_column) if table.id_column is not None else None
    placed = in_table_order(counted(), ids, spool_dir, first=first, lookups=table.reuse is not None)
    try:
        answers = iter(placed)
        upcoming = next(answers, None)  # every record is placed before the first comes back
        layout = detect([Record(r) for r in first], options.kind)
        added = _added(table, layout, fmt)
        refuse_collisions(table, [c.name for c in added])
        own_columns = _input_columns(table.rows, fmt)
        writer = _writer(fmt, out, own_columns + added, spool_dir)
    except BaseException:  # nothing written yet: let go of the scratch table and the map
        placed.close()
        if table.reuse is not None:
            table.reuse.close()
        raise
    position = missing = invalid = failed = shared_rows = 0
    reuse = table.reuse
    typed = table.typed
    keep_body = layout.kind != "chat"  # a chat row's columns are all read by Answered
    try:
        for chunk in table.rows.chunks():
            stop = position + chunk.size
            own: dict[int, dict[str, Any]] = {}
            while upcoming is not None and upcoming[0] < stop:  # one record a row, rows in order
                own[upcoming[0]] = upcoming[1]
                upcoming = next(answers, None)
            shared = _shared(reuse, placed, own, position, stop)
            answered = []
            to_keep = []
            if reuse is None and len(own) == stop - position:  # each row its own record, in order
                answered = [Answered(raw, typed, keep_body=keep_body) for raw in own.values()]
            for row in range(position, stop) if not answered else ():
                raw = own.get(row)
                if raw is not None:
                    answer = Answered(raw, typed, keep_body=keep_body)
                    if reuse is not None and answer.succeeded and isinstance(raw.get("body"), str):
                        to_keep.append((row, raw["body"], *_tokens(answer)))
                elif (raw := shared.get(row)) is not None:
                    answer = Answered(raw, typed, cached=True, keep_body=keep_body)
                    shared_rows += 1
                else:
                    answer = Answered(None, None)
                    missing += 1
                answered.append(answer)
            failed += sum(map(_failed, answered))
            invalid += len(answered) - list(map(_invalid, answered)).count(None)
            counts.not_json += sum(map(_not_json, answered))
            if reuse is not None and to_keep:
                reuse.keep(to_keep)
            position = stop
            keep = [not a.succeeded for a in answered] if failed_only else None
            if keep is not None and not any(keep):
                continue
            values = _own_values(chunk, own_columns, fmt, keep)
            kept = (
                answered if keep is None else [a for a, k in zip(answered, keep, strict=True) if k]
            )
            values += _typed_values(added, kept)
            counts.written += len(kept)
            writer.write(values)
        beyond = 0
        while upcoming is not None:  # ids past the table's last row
            beyond += 1
            upcoming = next(answers, None)
        _refuse_unmatched(table, placed, beyond, counts.total)
        writer.close()
        if reuse is not None:
            reuse.written()
    except BaseException:
        writer.abandon()
        raise
    finally:
        placed.close()
        if reuse is not None:
            reuse.close()
    counts.warnings.extend(_warnings(table, placed, beyond, missing, invalid, writer))
    counts.rows = RowCounts(
        table.label, counts.written, position, position - missing - invalid - failed, invalid, failed,
        missing, shared_rows,
    )  # fmt: skip
    return counts


def _refuse_unmatched(table: InputTable, placed: Any, beyond: int, total: int) -> None:
    """No result named a row: the table is not the run's (or its rows were named otherwise), nothing is written."""
    if not total or placed.without_row_count + beyond < total:
        return
    shown = ", ".join(placed.without_row) or "ids past its last row"
    named = "their row numbers" if table.id_column is None else f"column '{table.id_column}'"
    raise InputRejected(
        f"none of the {total:,} results names a row of {table.label} ({shown}; its rows are named "
        f"by {named}): it is not the table the run was made from; nothing was written",
        hint="give --join the table the run was made from",
    )


def _shared(
    reuse: RowReuse | None, placed: Any, own: dict[int, Any], start: int, stop: int
) -> dict[int, dict[str, Any]]:
    """The answers of the rows in ``[start, stop)`` that were not sent: their first row's, or the cache's.

    A row's first row may itself have been answered by the cache (a run after
    the cache was filled): its answer is then the cache's too.
    """
    if reuse is None or len(own) == stop - start:
        return {}
    reused = {row: rep for row, rep in reuse.reused(start, stop).items() if row not in own}
    firsts = set(reused.values())
    found = placed.records_at(sorted(firsts))
    others = [row for row in range(start, stop) if row not in own and row not in reused]
    bodies = reuse.cached(sorted((firsts - found.keys()) | set(others)))
    answers = {row: {"body": body, "error": None} for row, body in bodies.items()}
    answers.update(found)
    shared = {row: answers[rep] for row, rep in reused.items() if rep in answers}
    shared.update((row, answers[row]) for row in others if row in answers)
    return shared


def _tokens(answer: Answered) -> tuple[int, int]:
    tin, tout = answer.tokens
    return tin or 0, tout or 0


def _own_values(chunk: Any, own: list[Column], fmt: str, keep: list[bool] | None) -> list[Any]:
    """The table's own columns of a chunk: Arrow arrays as read (Parquet into Parquet), else values."""
    if fmt == "parquet" and chunk.arrow is not None and own and own[0].type == "arrow":
        batch = chunk.arrow
        if keep is not None:
            import pyarrow as pa

            batch = batch.filter(pa.array(keep, type=pa.bool_()))
        return [batch.column(i) for i in range(len(own))]
    rows = chunk.rows
    if keep is not None:
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
    return [[row.get(c.name) for row in rows] for c in own]


def _warnings(
    table: InputTable, placed: Any, beyond: int, missing: int, invalid: int, writer: TableWriter
) -> list[str]:
    out = []
    if missing:
        out.append(
            f"{missing:,} row{'' if missing == 1 else 's'} of {table.label} "
            f"{'has' if missing == 1 else 'have'} no result (status missing)"
        )
    without = placed.without_row_count + beyond
    if without:
        shown = ", ".join(placed.without_row) if placed.without_row else "ids past its last row"
        out.append(
            f"{without:,} result{'' if without == 1 else 's'} name{'s' if without == 1 else ''} "
            f"no row of {table.label} ({shown}): left out"
        )
    if invalid:
        out.append(
            f"{invalid:,} answer{'' if invalid == 1 else 's'} "
            f"{'does' if invalid == 1 else 'do'} not fit the answer schema (see invalid_output)"
        )
    for name, n in writer.bad.items():
        out.append(
            f"{n:,} value{'' if n == 1 else 's'} of column {name} did not fit its type and "
            f"{'was' if n == 1 else 'were'} written as null"
        )
    return out


def _writer(fmt: str, out: IO[bytes], columns: list[Column], spool_dir: Path) -> TableWriter:
    if fmt == "parquet":
        from .parquet import ParquetTable

        return ParquetTable(out, columns, spool_dir)
    if fmt == "csv":
        from .table import CsvTable

        return CsvTable(out, columns)
    return JsonlTable(out, columns)


class JsonlTable:
    """JSONL: one object a row, its keys the columns in order, each chunk written in one call."""

    def __init__(self, out: IO[bytes], columns: Sequence[Column]) -> None:
        from collections import Counter

        self._out = out
        self._names = [c.name for c in columns]
        self.bad: Counter[str] = Counter()  # JSON holds every value

    def write(self, values: list[list[Any]]) -> None:
        names = self._names
        lines = [dumps(dict(zip(names, row, strict=True))) for row in zip(*values, strict=True)]
        if lines:
            self._out.write(("\n".join(lines) + "\n").encode("utf-8"))

    def close(self) -> None:
        """Every row went out with its chunk."""

    def abandon(self) -> None:
        """Nothing is buffered: the atomic write removes what was written."""
