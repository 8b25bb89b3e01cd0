"""Typed answers: a chat answer's text parsed and checked against its run's JSON Schema.

The signature other modules rely on (the table writer calls it once an answer)::

    from cohere_batch_cli.results.answers import compile

    check = compile(schema)            # schema: the run's JSON Schema (a dict), or None for
                                       # json_object without one; raises UsageError (exit 2)
                                       # when the schema cannot be compiled
    outcome = check(text, finish_reason)
        # -> dict[str, Any]: the parsed answer, which follows the schema
        # -> str: why it is not usable, the row's invalid_output; one line, starting with one of
        #      "cut off at MAX_TOKENS"            finish_reason MAX_TOKENS and the text unusable
        #      "not JSON: ..."                    the text does not parse
        #      "not a JSON object: ..."           it parses, but to a list, a string, a number
        #      "breaks the schema at /a/0: ..."   its first error, at that JSON pointer
        #      "breaks the schema at the top level: ..."

A structured answer's top level is always an object (Cohere's first schema
rule; JSON mode without a schema gives an object too), so a ``dict`` and a
``str`` never mean the same thing: ``isinstance(outcome, str)`` is the test.

Why jsonschema-rs: measured on a three-property schema (an enum, a number, a
list of strings), parse included, it takes 0.59 µs an answer, fastjsonschema
1.57 µs and python-jsonschema 29 µs (orjson's parse alone is 0.30 µs); a
breaking answer and its first error take 3.0 µs and 3.3 µs. It compiles a
schema in 26 µs (fastjsonschema generates and ``exec``s Python, 1.1 ms), reads
``$defs`` as draft 2020-12 does, and never runs code made from a schema, so
a schema read back from a requests file of unknown origin is safe to compile.
It is imported here, when a schema run's answers are read, never at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson as _orjson

from ..errors import UsageError
from ..schema_rules import pointer

__all__ = ["CUT_OFF", "AnswerValidator", "Outcome", "compile", "pointer"]

Outcome = dict[str, Any] | str
"""The parsed answer (a dict), or the reason it is invalid (a str)."""

CUT_OFF = "cut off at MAX_TOKENS"
MAX_REASON_CHARS = 300
"""A reason past this many characters is cut (ending in …): a message may quote the whole answer."""


class AnswerValidator:
    """One schema, compiled once; calling it checks one answer's text (see the module's docstring)."""

    __slots__ = ("_validator",)

    def __init__(self, validator: Any) -> None:
        self._validator = validator

    def __call__(self, text: str, finish_reason: str | None = None) -> Outcome:
        """The parsed answer when it follows the schema, else the one-line reason it does not."""
        try:
            value = _orjson.loads(text)
        except _orjson.JSONDecodeError:
            value = _parse_slowly(text)
            if isinstance(value, _NotJson):
                return CUT_OFF if finish_reason == "MAX_TOKENS" else f"not JSON: {value.reason}"
        if not isinstance(value, dict):
            if finish_reason == "MAX_TOKENS":
                return CUT_OFF
            return f"not a JSON object: {_kind(value)}"
        validator = self._validator
        if validator is None or validator.is_valid(value):
            return value
        if finish_reason == "MAX_TOKENS":
            return CUT_OFF
        return _first_error(validator, value)


class _NotJson:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse_slowly(text: str) -> Any:
    """What orjson refused, read again by the standard library, whose verdict and messages rule.

    orjson refuses a few JSON texts the standard library reads (a lone
    surrogate escape, an integer past 64 bits); NaN and Infinity stay refused.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        return _NotJson("nested too deeply")
    except ValueError as exc:
        msg = getattr(exc, "msg", None)
        col = getattr(exc, "colno", None)
        line = getattr(exc, "lineno", None)
        if msg and col:
            where = f"line {line} column {col}" if line and line > 1 else f"column {col}"
            return _NotJson(f"{msg} at {where}")
        return _NotJson(_one_line(str(exc)))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "null"
    return "a number"


def _first_error(validator: Any, value: dict[str, Any]) -> str:
    error = next(iter(validator.iter_errors(value)), None)
    if error is None:  # pragma: no cover - is_valid said there is one
        return "breaks the schema"
    where = pointer(list(error.instance_path)) or "the top level"
    return _one_line(f"breaks the schema at {where}: {error.message}")


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_REASON_CHARS:
        return text[: MAX_REASON_CHARS - 1] + "…"
    return text


def _no_remote(uri: str) -> Any:
    """A ``$ref`` outside the schema is never fetched: the service sees the schema alone."""
    raise ValueError(f"$ref {uri} points outside the schema")


def compile(schema: Mapping[str, Any] | None) -> AnswerValidator:
    """A validator for answers to requests that carried ``schema`` (None: JSON mode, any object).

    Formats are checked (Cohere's subset: ``date-time``, ``date``, ``time``,
    ``uuid``); a schema jsonschema-rs cannot compile (a bad ``pattern``, a
    ``$ref`` to nothing) is a :class:`UsageError` naming why.
    """
    if schema is None:
        return AnswerValidator(None)
    import jsonschema_rs

    try:
        validator = jsonschema_rs.validator_for(
            dict(schema), validate_formats=True, retriever=_no_remote
        )
    except (ValueError, jsonschema_rs.ReferencingError) as exc:
        raise UsageError(f"the JSON Schema cannot be used{_unusable(exc)}") from None
    return AnswerValidator(validator)


_TYPES = "array, boolean, integer, null, number, object, string"


def _unusable(exc: Exception) -> str:
    """Where the schema fails the JSON Schema meta-schema, as a JSON pointer (``#``: the top), and why.

    The meta-schema's own words name its keywords (``not valid under any of the
    schemas listed in the 'anyOf' keyword`` for a ``"type": "strng"``): a bad
    type is said as such, and the pointer says which part to look at.
    """
    path = list(getattr(exc, "instance_path", None) or [])
    reason = getattr(exc, "message", None) or str(exc).split("\n")[0]
    if path and path[-1] == "type":
        import json

        reason = (
            f"{json.dumps(getattr(exc, 'instance', None))} is not a JSON Schema type ({_TYPES})"
        )
    where = f" at #{pointer(path)}" if path else ""
    return f"{where}: {_one_line(reason)}"
