"""A table's rows made into requests: chat from a Jinja2 template rendered once a row, in its sandbox, or embed from a column.

``cbatch create --from TABLE --prompt TEMPLATE`` writes one request a row,
``{"custom_id": ID, "body": {"messages": [system?, user], ...options}}``
(``--embed COLUMN``: ``{"inputs": [{"content": [{"type": "text", "text":
CELL}]}], "input_type": ..., ...}``), to a private temporary JSONL file that is
removed whatever happens; that file then takes exactly the path of ``create
--file`` (the local check, the upload, the create, the watch), so a table is
never sent any other way. A job (``jobs create --from``, ``create --from
--split``) keeps the file in the state folder instead, and splits it as any input.

The rules a user relies on:

- The template is Jinja2 in its ``SandboxedEnvironment`` (a template from a file
  cannot reach Python's internals). Columns are its variables; a column whose
  name is not an identifier is ``row["review text"]``. Jinja2 is imported here
  alone, so commands without ``--from`` never load it.
- A column the template (or ``--embed``) names that the table lacks is refused
  before a row is rendered (exit 2), naming the column and the columns the table has.
- ``--embed``: a cell that holds no text (a null, a number, a list) is refused
  naming the row and the column (exit 5, nothing sent); no option skips such rows,
  which would then be missing from the results and the table they are joined to.
- A null (a Parquet or JSON null; CSV has none: its values are strings) never
  renders as ``None`` nor ``Undefined``: it reaches the template as an undefined
  value that raises on any use (written, ``repr``/``pprint``, ``tojson``, ``row``
  or a list or a dict holding it written whole, an attribute of it), naming the
  row and the column (exit 5, nothing sent), unless the template handles it
  (``x | default("n/a")``, ``x is defined``, ``x is none``: true for a null).
- Any other error of the template on a row's values names the table and the row
  (exit 5, nothing sent).
- Each row's ``custom_id`` is its ``--id-column`` value, else its row number
  (1-based, across the whole table). Two rows with one id are refused naming
  both rows (exit 5, nothing sent), whether or not both rows are sent: the
  local check of the requests sees only the rows sent (:class:`_RowIds`).
- ``--schema FILE`` (a JSON Schema) goes into every body as ``response_format``
  ``{"type": "json_object", "json_schema": ...}`` (the spec's and the SDK's
  key), once it passed Cohere's documented rules (:mod:`..schema_rules`) and
  compiled as the validator that will read the answers (:mod:`..results.answers`):
  a schema that breaks a rule is exit 2, naming the JSON pointer of the part
  at fault, and nothing is sent. Cohere's structured output does not go with
  ``documents`` or ``tools``; a model older than Command R 08-2024 is warned of.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputRejected, LocalWriteError, UsageError
from ..units import counted

if TYPE_CHECKING:
    from jinja2 import Template

    from ..validate import FileReport
    from .reporting import Reporter
    from .request_reuse import RequestMap

ROW = "row"
"""The variable that holds every column of the row, for names that are not identifiers."""

NULL_HINT = 'a template handles a null with {{ x | default("n/a") }} or {% if x is defined %}'
EMBED_NULL_HINT = (
    "--embed sends each row's text as it is: leave the rows without text out of the table first"
)
EMBED_WITH_PROMPT = (
    "--embed and --prompt do not go together: a row is an embed request or a chat request"
)
"""The refusal of a table run given both, the same from the command line and the Python API."""


RENDERED = " (rendered)"
"""What a table run's requests are named by, after the table's path: a file cbatch wrote, not one to give a command."""


@dataclass(frozen=True)
class TableSpec:
    """Every option of a table run, parsed once from a command's flags and passed whole.

    ``create --from``, ``jobs create --from`` and ``estimate --from`` build it
    from one declaration (``cli/_tables.table_options``), as a ``WatchSpec``
    is built for a watch: an option cannot reach one command and be lost on
    another. A row becomes a chat request (``template``: the user message) or
    an embed request (``embed``: the column whose text is embedded), never both.
    """

    table: Path
    template: str | None = None
    where: str = "--prompt"
    """Where the template came from, for its syntax errors: ``--prompt`` or the file's path."""
    system: str | None = None
    id_column: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Body fields beside the row's own: chat's beside ``messages`` (``max_tokens``, ``temperature``,
    ``response_format``), embed's beside ``inputs`` (``input_type``, ``embedding_types``, ``truncate``, ``max_tokens``)."""
    dedupe: bool = True
    """Rows that render the same request are sent once (``--no-dedupe``: each its own)."""
    cache: bool = True
    """Requests the local answer cache answers are not sent (``--no-cache``: all are)."""
    embed: str | None = None
    """``--embed COLUMN``: each row's text in this column is one embed request; None: chat from ``template``."""

    def __post_init__(self) -> None:
        if self.template is not None and self.embed is not None:
            raise UsageError(EMBED_WITH_PROMPT)
        if (self.template is None) == (self.embed is None):
            raise UsageError("a table run is chat (--prompt) or embed (--embed), one of the two")
        if (
            self.system is not None and not self.system.strip()
        ):  # an empty message before each prompt
            raise UsageError("the system message is empty: give its text, or none")
        if "response_format" in self.options:
            clash = sorted({"documents", "tools"} & self.options.keys())
            if clash:
                raise UsageError(
                    f"--schema does not go with {' or '.join(clash)}: Cohere's structured "
                    "output is not supported together with documents or tools"
                )

    @property
    def label(self) -> str:
        """How messages name the requests made from the table (line N of them is row N)."""
        return f"{self.table}{RENDERED}"

    @property
    def dataset_type(self) -> str:
        """The input type of the requests made from the table: chat, or embed with ``--embed``."""
        from ..input_rules import CHAT_V2_INPUT, EMBED_V2_INPUT

        return CHAT_V2_INPUT if self.embed is None else EMBED_V2_INPUT


@dataclass(frozen=True)
class _Compiled:
    template: Template
    names: frozenset[str]
    """The columns the template names: its free variables and ``row["..."]`` keys."""
    globals: dict[str, Any] = field(default_factory=dict)
    """The template's globals (``range``, ``dict``, ...), copied once."""
    plain: tuple[str, tuple[str, ...]] | None = None
    """For a template that is only text and ``{{ column }}`` (no filter, test, tag or ``row[...]``):
    its text as a ``%`` format with one ``%s`` a column, and those columns in order; else None."""

    def quick(self, row: dict[str, Any]) -> str | None:
        """A plain template (:func:`_plain`) rendered straight from ``row``; None when it needs :meth:`render`.

        Only when every column it names holds a string, a number or a bool:
        a null, a list, a struct or any other value takes the whole path
        (:class:`_Nulls`, then :meth:`render`), whose text or error is then
        the same as ever.
        """
        plain = self.plain
        if plain is None:
            return None
        try:
            got = self._pick(row)
        except KeyError:
            return None
        if not _SCALARS.issuperset(map(type, got)):
            return None
        return plain[0] % got

    @cached_property
    def _pick(self) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
        """The plain template's columns of a row, in its order, as one tuple (``operator.itemgetter``)."""
        from operator import itemgetter

        assert self.plain is not None
        names = self.plain[1]
        if len(names) > 1:
            return itemgetter(*names)
        if names:
            one = itemgetter(names[0])
            return lambda row: (one(row),)
        return lambda row: ()

    def render(self, values: dict[str, Any]) -> str:
        """The template rendered for one row: ``template.render`` without its per-row copy of the globals.

        ``Template.render`` builds each row's context from ``dict(globals,
        **vars)`` and a set of the globals' names, iterating the environment's
        ``ChainMap`` of globals twice a row: a third of the rendering at a
        million rows. Here the globals are copied once, and each row's
        context is made from its own dict.
        """
        if self.plain is not None:
            return _render_plain(self.plain, values)
        template = self.template
        env = template.environment
        context = env.context_class(
            env, {**self.globals, **values, ROW: values}, template.name, template.blocks
        )
        return env.concat(template.root_render_func(context))


def structured_output(text: str, where: str) -> dict[str, Any]:
    """``response_format`` for a JSON Schema's text, once it passed Cohere's rules; else exit 2.

    ``where`` names the schema in messages (``--schema FILE``). The schema is
    compiled as its answers' validator too, so a ``pattern`` that is no regular
    expression or a ``$ref`` to nothing is refused now, not after the batch.
    """
    from ..results.answers import compile as compile_answers
    from ..schema_rules import problems

    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{where}: not JSON: {exc}") from None
    found = problems(schema)
    if found:
        more = f" (and {counted(len(found) - 1, 'more problem')})" if len(found) > 1 else ""
        raise UsageError(f"{where}: {found[0]}{more}")
    try:
        compile_answers(schema)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    _refuse_added_names(schema, where)
    return {"type": "json_object", "json_schema": schema}


def _refuse_added_names(schema: dict[str, Any], where: str) -> None:
    """Refuse (exit 2) a top-level property named like a column ``results`` adds beside it.

    Each property is a column of the table out, beside ``answer``, ``status``...:
    one of the same name could never be written (``--answer-prefix`` prefixes
    both), so it is refused now, before the batch is paid for, not by ``results``.
    """
    from ..results.table_out import META

    added = ("answer", "invalid_output", *META)
    properties = schema.get("properties")
    clashing = [name for name in added if isinstance(properties, dict) and name in properties]
    if clashing:
        raise UsageError(
            f'{where}: #/properties/{clashing[0]}: "{clashing[0]}" is the name of a column results '
            f"adds beside the answer ({', '.join(added)}); rename the property in the schema"
        )


EMBED_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
"""bodies.yaml's ``EmbedInputType`` for text (``image`` is for images); the first is the default."""
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
"""bodies.yaml's ``EmbeddingType``."""
TRUNCATE = ("NONE", "START", "END")


def chat_options(
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    p: float | None = None,
    k: int | None = None,
    seed: int | None = None,
    frequency_penalty: float | None = None,
    presence_penalty: float | None = None,
    stop_sequences: Sequence[str] = (),
    safety_mode: str | None = None,
    thinking: str | None = None,
    thinking_budget: int | None = None,
    priority: int | None = None,
    schema: str | None = None,
    schema_where: str = "--schema",
) -> dict[str, Any]:
    """The chat fields every body of a table run carries beside ``messages``, from the options given.

    The one place they are made, for the command line and the Python API, so
    a value is refused in the same words from either: each is checked against
    bodies.yaml's type and range (:mod:`..generation_options`), exit 2.
    ``thinking_budget`` is ``thinking``'s ``token_budget``, and so thinking
    enabled (with ``thinking="disabled"`` it is refused). ``schema`` (a JSON
    Schema's text, named ``schema_where`` in messages) goes through
    :func:`structured_output`, Cohere's rules and the answers' validator.
    """
    from ..generation_options import MAX_STOP_SEQUENCES, SAFETY_MODES, THINKING

    options: dict[str, Any] = {}
    given = {
        "max_tokens": max_tokens, "temperature": temperature, "p": p, "k": k, "seed": seed,
        "frequency_penalty": frequency_penalty, "presence_penalty": presence_penalty,
    }  # fmt: skip
    for name, value in given.items():
        if value is not None:
            options[name] = _bounded(name, value)
    if isinstance(stop_sequences, str):
        stop_sequences = (stop_sequences,)
    if stop_sequences:
        stops = list(dict.fromkeys(stop_sequences))
        if not all(isinstance(stop, str) and stop for stop in stops):
            raise UsageError("a stop sequence must be text, and not empty")
        if len(stops) > MAX_STOP_SEQUENCES:
            raise UsageError(
                f"{len(stops)} stop sequences given; the API takes at most {MAX_STOP_SEQUENCES}"
            )
        options["stop_sequences"] = stops
    if safety_mode is not None:
        if safety_mode not in SAFETY_MODES:
            raise UsageError(f"safety mode {safety_mode!r} is not one of {', '.join(SAFETY_MODES)}")
        options["safety_mode"] = safety_mode
    if thinking is not None and thinking not in THINKING:
        raise UsageError(f"thinking {thinking!r} is not one of {', '.join(THINKING)}")
    if thinking_budget is not None:
        if thinking == "disabled":
            raise UsageError("a thinking budget goes with thinking enabled, not disabled")
        options["thinking"] = {
            "type": "enabled",
            "token_budget": _bounded("thinking_budget", thinking_budget),
        }
    elif thinking is not None:
        options["thinking"] = {"type": thinking}
    if priority is not None:
        options["priority"] = _bounded("priority", priority)
    if schema is not None:
        options["response_format"] = structured_output(schema, schema_where)
    return options


def _bounded(name: str, value: Any) -> int | float:
    """``value`` of the option ``name``, once it is of its type and within its bounds; else exit 2."""
    from ..generation_options import BOUNDS, NUMBERS

    least, most = BOUNDS[name]
    number = name in NUMBERS
    if isinstance(value, bool) or not isinstance(value, (int, float) if number else int):
        raise UsageError(f"{name} must be {'a number' if number else 'an integer'}, not {value!r}")
    if not (value >= least and (most is None or value <= most)):  # a NaN is neither
        within = f"{least} or more" if most is None else f"from {least} to {most}"
        raise UsageError(f"{name} must be {within}, not {value!r}")
    return float(value) if number else value


def embed_options(
    *,
    input_type: str | None = None,
    embedding_types: Sequence[str] = (),
    truncate: str | None = None,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """The embed fields every body of an ``--embed`` run carries beside ``inputs``; a value outside bodies.yaml's is exit 2.

    ``input_type`` is always set (the API requires it for Embed v3 and later):
    ``search_document`` unless given, a corpus being what a table mostly holds.
    """
    kind = input_type or EMBED_INPUT_TYPES[0]
    if kind not in EMBED_INPUT_TYPES:
        raise UsageError(f"input type {kind!r} is not one of {', '.join(EMBED_INPUT_TYPES)}")
    options: dict[str, Any] = {"input_type": kind}
    if embedding_types:
        unknown = sorted({t for t in embedding_types if t not in EMBEDDING_TYPES})
        if unknown:
            raise UsageError(
                f"--embed-types: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not an "
                f"embedding type; give {', '.join(EMBEDDING_TYPES)}"
            )
        options["embedding_types"] = list(dict.fromkeys(embedding_types))
    if truncate is not None:
        if truncate not in TRUNCATE:
            raise UsageError(f"truncate {truncate!r} is not one of {', '.join(TRUNCATE)}")
        options["truncate"] = truncate
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    return options


def _no_id(path: Path, number: int, column: str, given: object) -> str:
    """Why row ``number``'s id column gives it no ``custom_id``: null, empty, or not a single value.

    A list or a struct would be sent as its Python spelling (``['x', 'y']``), and
    an empty (or blank) id is refused by the check only when its row is sent (a row that
    asks what an earlier one asked is not): each is refused here, for every row.
    """
    what = (
        "is null" if given is None else "is empty" if given == ""
        else "holds only white space" if isinstance(given, str)
        else f"holds a {'list' if isinstance(given, list) else 'struct' if isinstance(given, dict) else 'binary value'}, not an id"
    )  # fmt: skip
    return f"{path}: row {number}: its id column '{column}' {what} (nothing was sent)"


def compile_template(source: str, where: str) -> _Compiled:
    """The template, compiled in Jinja2's sandbox, and the columns it names; a syntax error is exit 2."""
    from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
    from jinja2.sandbox import SandboxedEnvironment

    if not source.strip():  # every row would ask the model nothing
        raise UsageError(
            f"{where} is empty: give a template of the table's columns, such as 'Classify: {{{{ text }}}}'"
        )
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.tests["none"] = _null_types().is_null
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}
    try:
        tree = env.parse(source)
        template = env.from_string(tree)
    except TemplateSyntaxError as exc:
        raise UsageError(f"{where}: line {exc.lineno}: {exc.message}") from None
    names = set(meta.find_undeclared_variables(tree)) - set(env.globals)
    for item in tree.find_all(nodes.Getitem):
        if (
            isinstance(item.node, nodes.Name)
            and item.node.name == ROW
            and isinstance(item.arg, nodes.Const)
            and isinstance(item.arg.value, str)
        ):
            names.add(item.arg.value)
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name == ROW:
            names.add(attr.attr)
    names.discard(ROW)
    return _Compiled(template, frozenset(names), dict(template.globals), _plain(tree, env.globals))


def _plain(tree: Any, globals_: Any) -> tuple[str, tuple[str, ...]] | None:
    """A template of text and bare ``{{ column }}`` alone, as a ``%`` format and its columns; else None.

    Jinja2 compiles ``{{ x }}`` in such a template to ``str(x)`` (no finalize,
    no autoescape), which ``"%s" % x`` is too: so the fast path writes the
    same text, and a null (an undefined value) or a list or a struct holding
    one raises the same error from its ``__str__``. What it skips is the
    per-row context Jinja2 builds and the generator it runs: most of the
    rendering's cost for the common template (``Review: {{ review }}``).
    """
    from jinja2 import nodes

    if not all(isinstance(node, nodes.Output) for node in tree.body):
        return None
    parts: list[str] = []
    names: list[str] = []
    for output in tree.body:
        for node in output.nodes:
            if isinstance(node, nodes.TemplateData):
                parts.append(node.data.replace("%", "%%"))
            elif (
                type(node) is nodes.Name
                and node.ctx == "load"
                and node.name != ROW
                and node.name not in globals_
            ):
                parts.append("%s")
                names.append(node.name)
            else:
                return None
    return "".join(parts), tuple(names)


_SCALARS = frozenset({str, int, float, bool})
"""The values :meth:`_Compiled.quick` writes itself: ``str()`` of each is what Jinja2 writes."""


def _render_plain(plain: tuple[str, tuple[str, ...]], values: dict[str, Any]) -> str:
    """A plain template (:func:`_plain`) rendered: each ``%s`` is ``str()`` of its column's value."""
    text, names = plain
    return text % tuple([values[name] for name in names])


@dataclass(frozen=True)
class _NullTypes:
    """The classes a null reaches a template as (:class:`_Nulls`), made once, Jinja2 being imported lazily."""

    error: type[Exception]
    """The error a null raises on use: an ``UndefinedError`` whose message names its row and column."""
    null: type[Any]
    list: type[list[Any]]
    dict: type[dict[str, Any]]

    def is_null(self, value: Any) -> bool:
        """Jinja2's ``none`` test for a table's values: true for ``None`` and a null (an undefined one)."""
        return value is None or isinstance(value, self.null)


@cache
def _null_types() -> _NullTypes:
    from jinja2 import StrictUndefined
    from jinja2.exceptions import UndefinedError

    class NullError(UndefinedError):
        """A null used: its message names the row and the column."""

    class Null(StrictUndefined):
        """A null: undefined, so any use raises with the message its hint holds, ``repr`` too.

        ``repr`` is what ``pprint`` writes and what a list or a dict holding it
        writes it as: Jinja2's undefined values write ``Undefined`` there.
        """

        __slots__ = ()

        def __repr__(self) -> str:
            self._fail_with_undefined_error()

    class NullList(list):  # type: ignore[type-arg]
        def __repr__(self) -> str:
            _first_null(self)
            return list.__repr__(self)  # pragma: no cover - a null always raises above

        __str__ = __repr__

    class NullDict(dict):  # type: ignore[type-arg]
        def __repr__(self) -> str:
            _first_null(self.values())
            return dict.__repr__(self)  # pragma: no cover - a null always raises above

        __str__ = __repr__

    # Jinja2 names a value's type in its messages ("'dict object' has no attribute 'x'"): a plain one's.
    for kind, name in ((NullList, "list"), (NullDict, "dict")):
        kind.__module__, kind.__name__, kind.__qualname__ = "builtins", name, name

    def _first_null(items: Any) -> None:
        for item in items:
            if isinstance(item, Null | NullList | NullDict):
                repr(item)

    return _NullTypes(NullError, Null, NullList, NullDict)


def _json_default(value: Any) -> Any:
    """``tojson``'s answer to a value JSON has no form for: a null (or another undefined value) raises its own error."""
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _Nulls:
    """How a row's values reach the template: a null, at the top or inside a list or a struct, raises on use.

    A top-level null is an undefined value; a list or a struct that holds one
    (at any depth) keeps its other values usable (``length``, a loop over the
    others) but raises, naming the row and the column, when it is written out
    whole, and so does each null in it, and ``row`` written whole: Python's
    ``None`` is never written, nor Jinja2's ``Undefined``.
    """

    def __init__(self) -> None:
        types = _null_types()
        self.error = types.error
        self._null, self._list, self._dict = types.null, types.list, types.dict
        self._wrapped = (types.null, types.list, types.dict)

    def value(self, value: Any, where: str, column: str) -> Any:
        """``value`` as the template sees it: itself, unless a null is in it."""
        if value is None:
            message = f"{where}: column '{column}' is null"
            return self._null(hint=message, name=column, exc=self.error)
        if isinstance(value, list | dict):
            return self._nested(value, f"{where}: column '{column}' holds a null", column)
        return value

    def row(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values of a row that holds a null, as ``row`` is in the template: it raises when written whole."""
        return self._dict(values)

    def _nested(self, value: Any, message: str, column: str) -> Any:
        if value is None:
            return self._null(hint=message, name=column, exc=self.error)
        if isinstance(value, list):
            items = [self._nested(item, message, column) for item in value]
            if any(isinstance(i, self._wrapped) for i in items):
                return self._list(items)
            return value
        if isinstance(value, dict):
            fields = {k: self._nested(v, message, column) for k, v in value.items()}
            if any(isinstance(v, self._wrapped) for v in fields.values()):
                return self._dict(fields)
            return value
        return value


def _refuse_missing(path: Path, columns: list[str], needed: set[str]) -> None:
    missing = sorted(needed - set(columns))
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        plural = "s" if len(missing) > 1 else ""
        hint = 'a column whose name is not an identifier is row["its name"]'
        if path.suffix.lower() == ".csv" and len(columns) == 1:
            sign = next((c for c in (";", "\t", "|") if c in columns[0]), None)
            if sign is not None:  # a whole header read as one name: another separator than ','
                hint = f"its header is one column holding {sign!r}: cbatch reads CSV separated by commas"
        raise UsageError(
            f"{path} has no column{plural} {names}; its columns: {', '.join(columns) or '(none)'}",
            hint=hint,
        )


class _ChatRows:
    """A row's chat body: the template rendered with the row's columns, a null raising on any use."""

    def __init__(self, run: TableSpec) -> None:
        assert run.template is not None
        self._compiled = compile_template(run.template, run.where)
        self._nulls = _Nulls()
        self._system = run.system
        self._options = run.options
        self._null = self._nulls.error
        self.names = self._compiled.names
        from ..state.answer_cache import CanonicalFrame

        self._canonical = CanonicalFrame(self._shape)

    def body(
        self, row: dict[str, Any], columns: list[str], known: set[str], path: str, number: int
    ) -> dict[str, Any]:
        """``row`` (number ``number`` of the table, in the file ``path`` whose columns are ``columns``) as a body."""
        return self._shape(self._prompt(row, columns, known, path, number))

    def canonical(
        self, row: dict[str, Any], columns: list[str], known: set[str], path: str, number: int
    ) -> bytes:
        """:meth:`body` as its canonical JSON (:func:`~cohere_batch_cli.state.answer_cache.canonical`)."""
        return self._canonical(self._prompt(row, columns, known, path, number))

    def _shape(self, prompt: str) -> dict[str, Any]:
        """The body of one rendered prompt: the system prompt, the prompt, the options."""
        messages = [{"role": "user", "content": prompt}]
        if self._system is not None:
            messages.insert(0, {"role": "system", "content": self._system})
        return {"messages": messages, **self._options}

    def _prompt(
        self, row: dict[str, Any], columns: list[str], known: set[str], path: str, number: int
    ) -> str:
        prompt = self._compiled.quick(row)
        if prompt is None:
            prompt = self._render(row, columns, known, path, number)
        return prompt

    def _render(
        self, row: dict[str, Any], columns: list[str], known: set[str], path: str, number: int
    ) -> str:
        """The template rendered through Jinja2, each null, list and struct of the row through :class:`_Nulls`."""
        nulls = self._nulls
        values: dict[str, Any] = {}
        held = False  # a null is in the row: ``row`` written whole raises too
        # The table's columns, then any a JSONL row adds; a plain value as it is (most
        # are strings), a null or a list or struct through _Nulls (its place named).
        for column in columns if known.issuperset(row) else (*columns, *row):
            if column in values:
                continue
            value = row.get(column)
            if value is None or isinstance(value, list | dict):
                given, value = value, nulls.value(value, f"{path}: row {number}", column)
                held = held or value is not given
            values[column] = value
        try:
            return self._compiled.render(nulls.row(values) if held else values)
        except self._null as exc:
            raise InputRejected(f"{exc} (nothing was sent)", hint=NULL_HINT) from None
        except Exception as exc:  # anything a template does wrong with a row: that row, named
            hint = None
            if isinstance(exc, TypeError) and path.lower().endswith(".csv"):
                hint = (
                    "a CSV's values are text: {{ x | int }} or {{ x | float }} makes one a number"
                )
            raise InputRejected(
                f"{path}: row {number}: the template failed: {exc} (nothing was sent)", hint=hint
            ) from None


class _EmbedRows:
    """A row's embed body: the text of its ``--embed`` column, as one input of text.

    The body is ``{"inputs": [{"content": [{"type": "text", "text": ...}]}], ...}``,
    the shape Cohere's embed batches take (CONTRACT.md, "Embed batches"). A
    null, or a value that is not text (a number, a list), is refused naming the
    row and the column, as a null a template uses is: nothing is sent.
    """

    def __init__(self, run: TableSpec) -> None:
        assert run.embed is not None
        self._column = run.embed
        self._options = run.options
        self.names = frozenset({run.embed})
        from ..state.answer_cache import CanonicalFrame

        self._canonical = CanonicalFrame(self._shape)

    def body(
        self, row: dict[str, Any], columns: list[str], known: set[str], path: str, number: int
    ) -> dict[str, Any]:
        """``row`` (number ``number`` of the table, in the file ``path``) as a body."""
        return self._shape(self._text(row, path, number))

    def canonical(
        self, row: dict[str, Any], columns: list[str], known: set[str], path: str, number: int
    ) -> bytes:
        """:meth:`body` as its canonical JSON (:func:`~cohere_batch_cli.state.answer_cache.canonical`)."""
        return self._canonical(self._text(row, path, number))

    def _shape(self, text: str) -> dict[str, Any]:
        return {"inputs": [{"content": [{"type": "text", "text": text}]}], **self._options}

    def _text(self, row: dict[str, Any], path: str, number: int) -> str:
        text = row.get(self._column)
        if not isinstance(text, str):
            what = "is null" if text is None else f"holds {type(text).__name__}, not text"
            raise InputRejected(
                f"{path}: row {number}: column '{self._column}' {what} (nothing was sent)",
                hint=EMBED_NULL_HINT,
            )
        return text


class _RowIds:
    """Every row's ``--id-column`` value, refused when two rows have one, in flat memory.

    The local check of the requests (:class:`~cohere_batch_cli.validate.CheckedWriter`)
    sees only the rows that are sent: a row that asks what an earlier row asked
    is not, so its id was never compared, and ``results`` could not tell the two
    rows apart. Each row's id is noted here as it is read, as the check notes a
    file's (:func:`~cohere_batch_cli.input_rules.id_digest` into a
    :class:`~cohere_batch_cli.state.spill.SeenIds`: a dict up to its bound, then
    pages on disk), and a repeat is refused in the check's words, naming both
    rows. A table without ``--id-column`` needs none of it: its ids are its row numbers.
    """

    def __init__(self, table: Path, column: str) -> None:
        from ..input_rules import id_digest
        from ..state.spill import SeenIds

        self._table = table
        self.column = column
        """The ``--id-column``."""
        self._digest = id_digest
        self._seen = SeenIds()

    def add(self, custom_id: str, path: Path, number: int) -> None:
        """Note row ``number``'s id (the row is in ``path``); refuse it when an earlier row's is the same."""
        first = self._seen.add(self._digest(custom_id), number)
        if first is not None:
            raise InputRejected(_repeated(path, number, custom_id, first))

    def finish(self) -> None:
        """Refuse the earliest repeat among the ids spilled to disk, found once every row was read."""
        repeat = min(self._seen.spilled_repeats(), default=None)
        if repeat is not None:
            number, first = repeat
            path, custom_id = _id_of_row(self._table, self.column, number)
            raise InputRejected(_repeated(path, number, custom_id, first))

    def close(self) -> None:
        self._seen.close()


def _repeated(path: Path, number: int, custom_id: str, first: int) -> str:
    from ..input_rules import duplicate_message

    return f"{path}: row {number}: {duplicate_message(custom_id, first, 'row')} (nothing was sent)"


def _id_of_row(table: Path, column: str, number: int) -> tuple[Path, str]:
    """The file row ``number`` is in and its id: the table read again up to it, for the one repeat named."""
    from .tables import open_table_file, table_shape

    seen = 0
    for file in table_shape(table).files:
        with open_table_file(file) as reader:
            for row in reader.rows():
                seen += 1
                if seen == number:
                    return file.path, str(row.get(column))
    return table, "?"


_HANDED = 512
"""Rows rendered before their requests are handed on together (:meth:`.RequestMap.add`)."""


def render_requests(
    run: TableSpec, out: Any, reporter: Reporter, requests: RequestMap | None = None
) -> int:
    """Write one request a row of ``run.table`` to the binary stream ``out`` (whole lines a write); the number of rows.

    With ``requests`` (:mod:`.request_reuse`), each row's request goes through
    it: written once for rows that render alike, not at all when cached.
    """
    from .tables import open_table_file, table_shape

    rows = _EmbedRows(run) if run.embed is not None else _ChatRows(run)
    needed = set(rows.names)
    if run.id_column is not None:
        needed.add(run.id_column)
    number = 0
    ids: list[str] = []
    texts: list[bytes] = []  # the requests not yet handed to ``requests``, a few hundred at a time
    row_ids = None if run.id_column is None else _RowIds(run.table, run.id_column)
    try:
        for file in table_shape(run.table).files:  # files that disagree are refused before any row
            with open_table_file(file) as reader:
                _refuse_missing(file.path, reader.columns, needed)
                columns = reader.columns
                known = set(columns)
                path = str(file.path)
                for row in reader.rows():
                    number += 1
                    if row_ids is None:
                        custom_id = str(number)
                    else:
                        given = row.get(row_ids.column)
                        if (
                            given is None
                            or isinstance(given, (list, dict, bytes))
                            or (isinstance(given, str) and not given.strip())
                        ):
                            raise InputRejected(_no_id(file.path, number, row_ids.column, given))
                        custom_id = str(given)
                        row_ids.add(custom_id, file.path, number)
                    if requests is not None:
                        ids.append(custom_id)
                        texts.append(rows.canonical(row, columns, known, path, number))
                        if len(texts) == _HANDED:
                            requests.add(ids, texts)
                            ids, texts = [], []
                        continue
                    request = {
                        "custom_id": custom_id,
                        "body": rows.body(row, columns, known, path, number),
                    }
                    line = json.dumps(request, ensure_ascii=False, separators=(",", ":")) + "\n"
                    out.write(line.encode())
        if row_ids is not None:
            row_ids.finish()
    finally:
        if row_ids is not None:
            row_ids.close()
    if texts:
        assert requests is not None
        requests.add(ids, texts)
    if number == 0:
        raise InputRejected(f"{run.table} has no rows: nothing to send")
    if requests is None:
        reporter.info(f"{run.table}: {counted(number, 'row')} rendered into requests")
        return number
    from .request_reuse import saved_line, summary_line

    summary = requests.finish()
    reporter.info(summary_line(run.table, summary, reporter))
    for note in summary.notes:
        reporter.info(note)
    saved = saved_line(summary)
    if saved is not None:
        reporter.info(saved)
    return number


@dataclass(frozen=True)
class Rendered:
    """A table's requests: the file, and its local check when it was checked as it was written."""

    path: Path
    checked: FileReport | None = None


@contextmanager
def requests_from_table(
    run: TableSpec,
    reporter: Reporter,
    requests: RequestMap | None = None,
    *,
    model: str | None = None,
    keep_as: Path | None = None,
    check: bool = False,
) -> Iterator[Rendered]:
    """A private temporary JSONL of the table's requests, complete before it is yielded, removed after.

    With ``keep_as`` (a job's requests, read again by each part, a resume and
    a retry), the file is written beside it under a temporary name, synced,
    renamed to it once complete, and kept. With a schema, a ``model`` older
    than Command R 08-2024 is warned of first. ``check``: each line is checked
    as it is written (:class:`~cohere_batch_cli.validate.CheckedWriter`), the
    check ``create --file`` makes of a file, so the send need not read the
    file again for it (a job's split reads and checks its input itself).
    """
    from ..validate import CheckedWriter

    if model is not None and "response_format" in run.options:
        from .models import predates_json_schema

        if predates_json_schema(model):
            reporter.warn(
                f"model {model!r} is older than Command R 08-2024, the oldest that Cohere "
                "documents for --schema (response_format json_schema): its answers may not follow it"
            )
    try:
        folder = None if keep_as is None else keep_as.parent
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".cbatch-table-", suffix=".jsonl", dir=folder)
    except OSError as exc:
        raise LocalWriteError(
            f"cannot write the requests of {run.table}: {exc.strerror or exc}"
        ) from None
    path = Path(name)
    keep = False
    checked = None
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:  # a system call a MiB
            sink = CheckedWriter(out, path, run.dataset_type) if check else None
            try:
                if requests is not None:
                    requests.start(out if sink is None else sink)
                render_requests(run, out if sink is None else sink, reporter, requests)
                if sink is not None:
                    checked = sink.finish()
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                    raise
                raise LocalWriteError(
                    f"cannot write the requests of {run.table} to {path}: {exc.strerror or exc}"
                ) from None
            finally:
                if sink is not None:
                    sink.close()
            if keep_as is not None:
                out.flush()
                os.fsync(out.fileno())
        if keep_as is not None:
            os.replace(path, keep_as)
            path = keep_as
            keep = True
            if checked is not None:
                checked.path = path
        yield Rendered(path, checked)
    finally:
        if not keep:
            with suppress(OSError):
                path.unlink()
