"""What a run is made from, and how a job is cut: values a program builds once and passes whole.

``client.create(source)`` takes a path (a JSONL file of requests, ``cbatch
create --file``) or one of these: a :class:`PromptTable` (``--from T --prompt``),
an :class:`EmbedTable` (``--from T --embed``) or a :class:`Dataset` (``--dataset``);
``client.create_job(source, split=...)`` a path or a table and a :class:`Split`.
A table's options are fields of its value instead of keyword arguments of
every call, so an option cannot reach ``create`` and be forgotten by
``create_job``, and a chat option cannot be given to an embed run: the type
has no such field.

Each value is checked when it is built, by the builders the command line
uses (:func:`~cohere_batch_cli.tasks.table_prompts.chat_options`,
:func:`~cohere_batch_cli.tasks.table_prompts.embed_options`,
:class:`~cohere_batch_cli.tasks.table_prompts.TableSpec`): the same refusals
(:class:`~cohere_batch_cli.errors.UsageError`, exit code 2) with the same
words, raised at the line that built the value. What needs the client
(the table's rows, the model, the dataset limit) is checked by the call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..tasks.table_prompts import TableSpec


@dataclass(frozen=True)
class PromptTable:
    """A table whose rows become chat requests: ``cbatch create --from PATH --prompt PROMPT``.

    ``path`` is a CSV, Parquet or JSONL-of-objects file, or a folder of them;
    ``prompt`` a Jinja2 template of its columns (``{{ text }}``,
    ``{{ row["review text"] }}``), each row's user message. ``system`` is a
    system message before every prompt (as written, not a template);
    ``schema`` a JSON Schema every answer must follow (checked against
    Cohere's rules now); ``id_column`` the column of each row's ``custom_id``
    (default: its row number, from 1). The generation options go into every
    request as the body's fields of the same name, each bounded as the API
    bounds it (``--max-tokens``, ``--temperature``... on the command line):
    ``max_tokens``, ``temperature`` (0 to 1), ``p`` (0.01 to 0.99), ``k`` (0
    to 500), ``seed``, ``frequency_penalty`` and ``presence_penalty`` (0 to
    1), ``stop_sequences`` (at most 5), ``safety_mode`` (``CONTEXTUAL``,
    ``STRICT`` or ``OFF``), ``thinking`` (``enabled`` or ``disabled``) and
    ``thinking_budget`` (thinking enabled, with at most that many tokens),
    ``priority`` (0, the first served, to 999). Rows that render the same
    request are sent once and answers this machine already holds are not
    asked again, unless ``dedupe=False`` (sampling at a temperature above 0:
    ``--no-dedupe``) or ``cache=False`` (``--no-cache``).
    """

    path: str | os.PathLike[str]
    prompt: str
    _: KW_ONLY
    system: str | None = None
    schema: Mapping[str, Any] | None = field(default=None, hash=False)
    id_column: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    p: float | None = None
    k: int | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop_sequences: Sequence[str] = ()
    safety_mode: str | None = None
    thinking: str | None = None
    thinking_budget: int | None = None
    priority: int | None = None
    dedupe: bool = True
    cache: bool = True
    _spec: TableSpec = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        import json

        from ..tasks.table_prompts import TableSpec, chat_options, compile_template

        stops = self.stop_sequences
        stops = (stops,) if isinstance(stops, str) else tuple(stops)
        object.__setattr__(self, "stop_sequences", stops)  # a tuple: the value stays hashable
        compile_template(self.prompt, "the prompt argument")  # a syntax error, now: not at create
        schema = self.schema
        if schema is not None and not isinstance(schema, Mapping):  # a path, or the schema's text
            raise UsageError(
                f"the schema argument is the JSON Schema itself, a dict, not a {type(schema).__name__}; "
                "json.loads(Path(FILE).read_text()) reads one from a file"
            )
        options = chat_options(
            max_tokens=self.max_tokens, temperature=self.temperature, p=self.p, k=self.k,
            seed=self.seed, frequency_penalty=self.frequency_penalty,
            presence_penalty=self.presence_penalty, stop_sequences=stops,
            safety_mode=self.safety_mode, thinking=self.thinking,
            thinking_budget=self.thinking_budget, priority=self.priority,
            schema=None if schema is None else json.dumps(schema), schema_where="the schema argument",
        )  # fmt: skip
        spec = TableSpec(
            table=_path(self.path), template=self.prompt, where="the prompt argument",
            system=self.system, id_column=self.id_column, options=options,
            dedupe=self.dedupe, cache=self.cache,
        )  # fmt: skip
        object.__setattr__(self, "_spec", spec)


@dataclass(frozen=True)
class EmbedTable:
    """A table whose rows become embed requests: ``cbatch create --from PATH --embed COLUMN``.

    Each row's text in ``column`` is one request, with ``input_type``
    (default ``search_document``), ``types``, the embedding types asked for
    (``("float", "int8")``...; default the API's, float), ``truncate``
    (``NONE``, ``START`` or ``END``: what the API cuts from a text over the
    model's limit) and ``max_tokens`` (embed at most that many tokens of each
    text). ``id_column``, ``dedupe`` and ``cache`` are :class:`PromptTable`'s.
    The results hold a vector a row, one column per type (``embeddings_float``...).
    """

    path: str | os.PathLike[str]
    column: str
    _: KW_ONLY
    input_type: str | None = None
    types: Sequence[str] = ()
    truncate: str | None = None
    max_tokens: int | None = None
    id_column: str | None = None
    dedupe: bool = True
    cache: bool = True
    _spec: TableSpec = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        from ..tasks.table_prompts import TableSpec, embed_options

        _positive(self.max_tokens, "max_tokens")
        types = (self.types,) if isinstance(self.types, str) else tuple(self.types)
        object.__setattr__(self, "types", types)  # a tuple: the value stays frozen and hashable
        options = embed_options(
            input_type=self.input_type,
            embedding_types=types,
            truncate=self.truncate,
            max_tokens=self.max_tokens,
        )
        spec = TableSpec(
            table=_path(self.path), embed=self.column, id_column=self.id_column, options=options,
            dedupe=self.dedupe, cache=self.cache,
        )  # fmt: skip
        object.__setattr__(self, "_spec", spec)


@dataclass(frozen=True)
class Dataset:
    """An input dataset already on the API and validated: ``cbatch create --dataset REF``.

    ``ref`` is its id, a unique prefix of one, or its exact name, resolved as
    the command resolves it (the match is logged). Nothing is uploaded, so a
    dataset takes no idempotency key: it is one call that makes one batch.
    """

    ref: str

    def __post_init__(self) -> None:
        if not self.ref.strip():
            raise UsageError("a dataset's ref is empty; give its id, a unique prefix or its name")


@dataclass(frozen=True)
class Split:
    """How a job is cut: ``cbatch jobs create --max-records-per-batch N --max-bytes-per-batch SIZE``.

    Each part holds at most ``max_records`` records and ``max_bytes`` bytes
    (an int, or a size such as ``"800MB"``; default, and at most: the dataset
    limit, 1.5 GB). ``Split()`` cuts by the dataset limit alone.
    """

    _: KW_ONLY
    max_records: int | None = None
    max_bytes: int | str | None = None

    def __post_init__(self) -> None:
        from ..units import parse_size

        _positive(self.max_records, "max_records")
        if self.max_bytes is not None:
            try:
                object.__setattr__(self, "max_bytes", parse_size(self.max_bytes))
            except ValueError as exc:
                raise UsageError(f"max_bytes: {exc}") from None


Table = PromptTable | EmbedTable
"""A table run's value: chat from a prompt, or embed from a column."""


def table_spec(table: Table) -> TableSpec:
    """The one :class:`~cohere_batch_cli.tasks.table_prompts.TableSpec` a table value was built into."""
    return table._spec


def split_bytes(split: Split) -> int | None:
    """A split's ``max_bytes`` in bytes (a size given as text was parsed when the split was built)."""
    assert not isinstance(split.max_bytes, str)
    return split.max_bytes


def _path(value: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(value))


def _positive(value: int | None, name: str) -> None:
    if value is not None and (isinstance(value, bool) or value < 1):
        raise UsageError(f"{name} must be 1 or more, not {value!r}")
