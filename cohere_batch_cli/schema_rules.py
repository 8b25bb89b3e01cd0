"""Cohere's documented rules for a structured-output JSON Schema, in one place.

Both sides read them: ``create --from --schema`` refuses a schema that breaks
one before anything is sent (exit 2), the local check of a file warns of the
records whose schema breaks one, and the sandbox fails such a record, as the
service would. It imports only the standard library and orjson.

The rules are those CONTRACT.md ("Structured output") takes from Cohere's
guide, and no others:

- the top level is ``"type": "object"``;
- every object lists at least one field in ``required`` (a schema under
  ``additionalProperties`` is exempt: the guide says ``required`` is not
  enforced inside it);
- ``allOf``, ``oneOf``, ``not``, ``minimum``, ``maximum``, ``minItems``,
  ``maxItems``, ``minLength``, ``maxLength`` and ``uniqueItems`` are not
  supported;
- a ``pattern`` may not use the anchors ``^`` and ``$`` nor the lookaheads
  ``(?=`` and ``(?!``;
- ``format`` is one of ``date-time``, ``date``, ``time`` and ``uuid``.

Nested objects, arrays, ``enum``, ``const``, ``pattern``, ``$ref``/``$defs``,
``anyOf`` and ``additionalProperties`` are supported. Each problem names the
JSON pointer of the part of the schema that breaks a rule (``#`` is the top).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import orjson as _orjson

UNSUPPORTED = (
    "allOf", "oneOf", "not", "minimum", "maximum", "minItems", "maxItems",
    "minLength", "maxLength", "uniqueItems",
)  # fmt: skip
FORMATS = ("date-time", "date", "time", "uuid")

_ONE = (
    "items", "contains", "propertyNames", "if", "then", "else", "additionalItems",
    "unevaluatedItems", "unevaluatedProperties",
)  # fmt: skip
"""Keywords whose value is one subschema (``additionalProperties`` is walked apart)."""
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
"""Keywords whose value maps names to subschemas."""
_LIST = ("prefixItems", "anyOf", "items")
"""Keywords whose value is a list of subschemas (``items`` as draft 7 allowed)."""


def pointer(path: list[str | int] | tuple[str | int, ...]) -> str:
    """A JSON pointer (RFC 6901) of a path: ``["a", 0, "b/c"]`` is ``/a/0/b~1c``; ``[]`` is ``""``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def problems(schema: Any) -> list[str]:
    """Every rule ``schema`` breaks, each ``#/json/pointer: what is wrong``; empty when it is fine."""
    if not isinstance(schema, dict):
        return ["#: the schema must be a JSON object"]
    found = []
    if schema.get("type") != "object":
        found.append('#: the top level must be "type": "object"')
    found.extend(_walk(schema, (), exempt=False))
    return found


def first_problem(schema: Any) -> str | None:
    """The first of :func:`problems`, or None; a schema seen before costs one canonical dump.

    A file's or a table's requests mostly share one schema: its verdict is kept
    by the schema's canonical spelling (keys sorted), so a million records walk
    it once.
    """
    try:
        key = _orjson.dumps(schema, option=_orjson.OPT_SORT_KEYS)
    except TypeError:  # a number past 64 bits, say: no key, walked every time
        found = problems(schema)
        return found[0] if found else None
    return _first_of(key)


@functools.lru_cache(maxsize=256)
def _first_of(canonical: bytes) -> str | None:
    found = problems(json.loads(canonical))
    return found[0] if found else None


def _walk(node: Any, path: tuple[str | int, ...], *, exempt: bool) -> Iterator[str]:
    if not isinstance(node, dict):
        return
    here = "#" + pointer(path)
    for keyword in UNSUPPORTED:
        if keyword in node:
            yield f'{here}/{keyword}: "{keyword}" is not supported'
    kind = node.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object and not exempt:
        required = node.get("required")
        if not isinstance(required, list) or not required:
            yield f'{here}: an object must list at least one field in "required"'
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        bad = pattern_problem(pattern)
        if bad:
            yield f"{here}/pattern: {bad}"
    fmt = node.get("format")
    if fmt is not None and fmt not in FORMATS:
        yield f'{here}/format: "{fmt}" is not supported (only {", ".join(FORMATS)})'
    for keyword in _ONE:
        if isinstance(node.get(keyword), dict):
            yield from _walk(node[keyword], (*path, keyword), exempt=exempt)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _walk(extra, (*path, "additionalProperties"), exempt=True)
    for keyword in _MAP:
        value = node.get(keyword)
        if isinstance(value, dict):
            for name, sub in value.items():
                yield from _walk(sub, (*path, keyword, name), exempt=exempt)
    for keyword in _LIST:
        value = node.get(keyword)
        if isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _walk(sub, (*path, keyword, i), exempt=exempt)


def pattern_problem(pattern: str) -> str | None:
    """Why Cohere refuses ``pattern``: an anchor or a lookahead outside a character class; else None.

    ``[^a-z]`` negates a class and ``\\^`` is a literal caret: both are allowed.
    """
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":  # a ] first in a class is itself
                i += 1
            continue
        elif char in "^$":
            return f'the anchor "{char}" is not supported'
        elif pattern.startswith(("(?=", "(?!"), i):
            return f'the lookahead "{pattern[i : i + 3]}" is not supported'
        i += 1
    return None
