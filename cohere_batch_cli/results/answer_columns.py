"""The columns of typed answers: a JSON Schema's top-level properties, each answer's values read into them.

A chat run with a schema asks for a JSON object; ``results`` writes one
column per top-level property, typed from the schema:

==========================================  =======================================
JSON Schema                                 column
==========================================  =======================================
``string``, a string ``enum`` or ``const``  string
``integer`` (an integer ``enum``)           int64
``number``                                  float64
``boolean``                                 bool
``array`` of ``items``                      list of the items' type
``object`` with ``properties``              struct of them (CSV: dotted columns)
anything else (several types, no items...)  JSON text
==========================================  =======================================

``["T", "null"]`` is ``T`` (every column is nullable), ``anyOf``/``oneOf``
branches of one type are that type, and ``$ref`` to ``#/$defs/...`` or
``#/definitions/...`` is followed. The types are a tree of :class:`AnswerType`,
turned into Arrow types only by :mod:`.parquet` (pyarrow stays unimported for CSV).

Each answer is checked by the run's one compiled validator (:mod:`.answers`):
one that is not JSON, not an object, cut off, or breaking the schema is
*invalid*: its typed values are all null and the validator's reason is the
``invalid_output`` column; the raw text stays in ``answer``. A valid answer's
values are then put in their columns' types (an integer ``3.0`` is ``3``); a
value that still does not fit (a schema whose ``anyOf`` mixes what this
mapping cannot tell apart) makes the answer invalid too, saying where.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from ..errors import UsageError
from .records import dumps

TypeKind = Literal["string", "int", "float", "bool", "list", "struct", "json"]

_SCALARS: dict[str, TypeKind] = {
    "string": "string",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
}
_INT64 = (-(2**63), 2**63)
_NOUN = {
    "string": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "list": "an array",
    "struct": "an object",
}


@dataclass(frozen=True)
class AnswerType:
    """The type of one column (or of an item or field within one)."""

    kind: TypeKind
    item: AnswerType | None = None
    """A list's items."""
    fields: tuple[tuple[str, AnswerType], ...] = ()
    """A struct's fields, in the schema's order."""


JSON_TEXT = AnswerType("json")


def answer_types(schema: Any) -> list[tuple[str, AnswerType]]:
    """The columns of a schema: each top-level property and its type, in the schema's order.

    A schema that is not an object with properties is a usage error (exit 2):
    there would be no column to write.
    """
    if not isinstance(schema, dict):
        raise UsageError("the answer schema is not a JSON object")
    resolved = _Resolver(schema).type_of(schema)
    if resolved.kind != "struct" or not resolved.fields:
        raise UsageError(
            "the answer schema names no properties: a typed column is one top-level property",
            hint='give it {"type": "object", "properties": {...}}',
        )
    return list(resolved.fields)


class _Resolver:
    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self._seen: list[str] = []

    def type_of(self, schema: Any) -> AnswerType:
        if not isinstance(schema, dict):
            return JSON_TEXT
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self._ref(ref)
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                kinds = [self.type_of(b) for b in branches if not _is_null(b)]
                return kinds[0] if kinds and all(k == kinds[0] for k in kinds) else JSON_TEXT
        declared = schema.get("type")
        if isinstance(declared, list):
            types = [t for t in declared if t != "null"]
            declared = types[0] if len(types) == 1 else None
        if declared is None:
            declared = _type_of_values(schema)
        if declared in _SCALARS:
            return AnswerType(_SCALARS[declared])
        if declared == "array":
            items = schema.get("items")
            return AnswerType("list", self.type_of(items)) if isinstance(items, dict) else JSON_TEXT
        if declared == "object" or (declared is None and "properties" in schema):
            properties = schema.get("properties")
            if not isinstance(properties, dict) or not properties:
                return JSON_TEXT
            return AnswerType(
                "struct", fields=tuple((str(k), self.type_of(v)) for k, v in properties.items())
            )
        return JSON_TEXT

    def _ref(self, ref: str) -> AnswerType:
        if ref in self._seen:  # a recursive type has no fixed columns: JSON text
            return JSON_TEXT
        target: Any = self._root
        if not ref.startswith("#/"):
            return JSON_TEXT
        for part in ref[2:].split("/"):
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"))
                if isinstance(target, dict)
                else None
            )
        if target is None:
            return JSON_TEXT
        self._seen.append(ref)
        try:
            return self.type_of(target)
        finally:
            self._seen.pop()


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _type_of_values(schema: dict[str, Any]) -> str | None:
    """The JSON type an ``enum`` or ``const`` holds, when all its values have one."""
    values = schema.get("enum")
    if not isinstance(values, list):
        values = [schema["const"]] if "const" in schema else None
    if not values:
        return None
    names = {_json_name(v) for v in values if v is not None}
    if names == {"integer"}:
        return "integer"
    if names <= {"integer", "number"} and names:
        return "number"
    return names.pop() if len(names) == 1 else None


def _json_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


class InvalidAnswer(ValueError):
    """An answer that does not fit its columns; its message is the ``invalid_output`` sentence."""


@dataclass(frozen=True)
class TypedAnswers:
    """How each answer of a run is read: its columns, and the run's compiled validator."""

    columns: tuple[tuple[str, AnswerType], ...]
    check: Callable[[str, str | None], Any]
    """:func:`.answers.compile` of the run's schema: the parsed answer, or why it is invalid."""

    @cached_property
    def _plan(self) -> tuple[tuple[str, AnswerType, bool, type], ...]:
        """Each column, its type, whether a valid answer's value needs no converting, and the
        Python type that needs none either (a float for a number column)."""
        return tuple(
            (name, kind, kind in _AS_IS, _EXACT.get(kind.kind, _Never))
            for name, kind in self.columns
        )

    @cached_property
    def _checked(self) -> tuple[tuple[str, type], ...]:
        """The columns whose values may need converting, and the type that needs none."""
        return tuple((name, exact) for name, _kind, as_is, exact in self._plan if not as_is)

    @classmethod
    def of_schema(cls, schema: Any) -> TypedAnswers:
        """The columns and the validator of ``schema``; a schema either refuses is exit 2."""
        from .answers import compile

        return cls(tuple(answer_types(schema)), compile(schema))

    def read(
        self, text: str | None, finish_reason: str | None = None
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The answer's typed values by property, or None and why it is invalid.

        The values are read from the dict with ``get`` and a property's name:
        it may be the parsed answer itself (with any other properties it
        has), when none of its values needs converting.
        """
        if text is None:
            return None, None
        outcome = self.check(text, finish_reason)
        if isinstance(outcome, str):
            return None, outcome
        for name, exact in self._checked:
            value = outcome.get(name)
            if not (value is None or type(value) is exact):
                break
        else:  # every value is already what its column holds: the answer itself is read
            return outcome, None
        plan = self._plan
        try:
            return {
                name: value if as_is or type(value) is exact else convert(value, kind, name)
                for name, kind, as_is, exact in plan
                if (value := outcome.get(name)) is not None
            }, None
        except InvalidAnswer as exc:
            return None, str(exc)


class _Never:
    """No value is of this type: a column whose values are always converted."""


_EXACT: dict[str, type] = {"string": str, "bool": bool, "float": float}
"""A value of exactly this Python type is what its column holds, whatever the validator said."""

_AS_IS = frozenset(
    {
        AnswerType("string"),
        AnswerType("bool"),
        AnswerType("list", AnswerType("string")),
        AnswerType("list", AnswerType("bool")),
    }
)
"""Types whose values, once the validator passed them, are already what their column holds."""


def convert(value: Any, kind: AnswerType, path: str) -> Any:
    """``value`` as its column holds it (JSON text for ``json``); :class:`InvalidAnswer` if it does not fit."""
    if value is None:
        return None
    k = kind.kind
    if k == "json":
        return dumps(value)
    if k == "string" and isinstance(value, str):
        return value
    if k == "bool" and isinstance(value, bool):
        return value
    if k == "int" and not isinstance(value, bool):
        if isinstance(value, int) and _INT64[0] <= value < _INT64[1]:
            return value
        if isinstance(value, float) and value.is_integer() and _INT64[0] <= value < _INT64[1]:
            return int(value)
    if k == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if k == "list" and isinstance(value, list):
        assert kind.item is not None
        return [convert(v, kind.item, f"{path}[{i}]") for i, v in enumerate(value)]
    if k == "struct" and isinstance(value, dict):
        return {name: convert(value.get(name), sub, f"{path}.{name}") for name, sub in kind.fields}
    raise InvalidAnswer(f"{path}: expected {_NOUN[k]}, got {_shown(value)}")


def _shown(value: Any) -> str:
    text = dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def flattened(name: str, kind: AnswerType) -> list[tuple[str, tuple[str, ...], AnswerType]]:
    """CSV's columns for one property: a struct's fields as dotted columns (``address.city``), at any depth."""
    if kind.kind != "struct":
        return [(name, (), kind)]
    out = []
    for field, sub in kind.fields:
        for dotted, path, leaf in flattened(f"{name}.{field}", sub):
            out.append((dotted, (field, *path), leaf))
    return out
