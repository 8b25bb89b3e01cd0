"""Answers to structured requests: a JSON object that follows the request's schema, made from its prompt.

A chat body with ``response_format`` ``{"type": "json_object", "json_schema": S}``
(or ``"schema": S``, the key the v2 guide's examples use) is answered with a
JSON object that follows ``S``; ``json_object`` without a schema with
``{"reply": "<the prompt's first 60 characters>"}``. The answer is a function
of the prompt (the last user message's text) and the schema alone, so the same
request gets the same answer in every batch, and tests can assert on it.

The subset followed is the one CONTRACT.md lists: nested objects (every
required field, and each optional one when a hash of the prompt says so),
arrays (one to three items), ``enum``, ``const``, ``anyOf``, ``$ref`` to
``#`` or ``#/...`` (recursion ends by choosing the branch that stops, past a
depth), ``type`` lists, ``pattern`` (a string built from the regular
expression, checked with Python's ``re``), and the formats ``date-time``,
``date``, ``time`` and ``uuid``. A free string is one to four words of the prompt.

A schema that breaks Cohere's documented rules (:mod:`...schema_rules`), or a
``response_format`` sent with ``documents`` or ``tools``, fails the record: the
message is the sandbox's own wording (docs/sandbox.md), none being recorded
from the service.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
import re
import uuid
from typing import Any

from ..input_rules import structured_output_problem

QUOTE = 60
"""A free string, and JSON mode's ``reply``, quote this many characters of the prompt."""
OPTIONAL_DEPTH = 4
"""Past this depth an optional field, an array's items and a recursive branch are left out."""
MAX_DEPTH = 32
"""A schema that cannot end (a required field that refers to itself) stops here, with null."""


def response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """The body's ``response_format`` when it asks for JSON (``json_object``); else None."""
    value = body.get("response_format")
    if isinstance(value, dict) and value.get("type") == "json_object":
        return value
    return None


def schema_of(fmt: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema of a ``json_object`` format: ``json_schema``, else ``schema``; None without one."""
    for key in ("json_schema", "schema"):
        if isinstance(fmt.get(key), dict):
            return fmt[key]
    return None


def refusal(body: dict[str, Any]) -> str | None:
    """Why the request fails, in the sandbox's own words; None when it is answered."""
    problem = structured_output_problem(body)
    return f"invalid request: {problem}" if problem is not None else None


def answer(body: dict[str, Any], prompt: str, *, broken: bool = False) -> str:
    """The answer's text: JSON that follows the schema (``broken``: that does not)."""
    return answers(body, prompt)[1 if broken else 0]


def answers(body: dict[str, Any], prompt: str) -> tuple[str, str]:
    """The answer's text, and the same answer broken: made once, for the facts that count both.

    The broken one leaves out the schema's first required field, which breaks
    every schema within the rules; JSON mode's is a list, as it promises an object.
    """
    fmt = response_format(body) or {}
    schema = schema_of(fmt)
    if schema is None:
        return _text({"reply": prompt[:QUOTE]}), _text([prompt[:QUOTE]])
    value = _Maker(schema, _canonical(schema), prompt).value(schema, 0)
    text = _text(value)
    required = schema.get("required")
    if isinstance(value, dict) and isinstance(required, list) and required:
        value.pop(required[0], None)
        return text, _text(value)
    return text, _text([value])


def _canonical(schema: dict[str, Any]) -> str:
    """One spelling of a schema, whatever its key order: with the prompt, it seeds the answer."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _text(value: Any) -> str:
    """Compact but readable JSON with nothing after its last brace: any prefix of it is not JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


class _Maker:
    """One answer's values, drawn in a fixed walk from a generator seeded by the prompt and schema."""

    def __init__(self, root: dict[str, Any], canonical: str, prompt: str) -> None:
        self.root = root
        self.quote = prompt[:QUOTE]
        self.words = prompt.split()[:QUOTE] or ["sandbox"]
        seed = hashlib.blake2b(f"{prompt}\x1f{canonical}".encode(), digest_size=8).digest()
        self.rng = random.Random(int.from_bytes(seed, "big"))

    def value(self, node: Any, depth: int) -> Any:
        if depth > MAX_DEPTH or not isinstance(node, dict):
            return None if depth > MAX_DEPTH else self.quote
        if isinstance(node.get("$ref"), str):
            target = self._resolve(node["$ref"])
            return self.value(target, depth + 1) if target is not None else self.quote
        if "const" in node:
            return node["const"]
        enum = node.get("enum")
        if isinstance(enum, list) and enum:
            return enum[self.rng.randrange(len(enum))]
        branches = node.get("anyOf")
        if isinstance(branches, list) and branches:
            return self.value(self._branch(branches, depth), depth + 1)
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if isinstance(k, str)] or ["string"]
            kind = "null" if depth >= OPTIONAL_DEPTH and "null" in kinds else self.rng.choice(kinds)
        if kind is None:
            kind = "object" if "properties" in node else "array" if "items" in node else "string"
        return self._typed(kind, node, depth)

    def _typed(self, kind: str, node: dict[str, Any], depth: int) -> Any:
        if kind == "object":
            return self._object(node, depth)
        if kind == "array":
            count = 0 if depth >= OPTIONAL_DEPTH else self.rng.randint(1, 3)
            return [self.value(node.get("items", {}), depth + 1) for _ in range(count)]
        if kind == "integer":
            return self.rng.randint(0, 100)
        if kind == "number":
            return round(self.rng.uniform(0, 100), 2)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(node)

    def _object(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = node.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = node.get("required")
        required = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            keep = self.rng.random() < 0.5  # drawn for every field, so the walk stays fixed
            if name in required or (keep and depth < OPTIONAL_DEPTH):
                out[name] = self.value(sub, depth + 1)
        extra = node.get("additionalProperties")
        for name in required:
            if name not in out:
                out[name] = self.value(extra if isinstance(extra, dict) else {}, depth + 1)
        return out

    def _string(self, node: dict[str, Any]) -> str:
        rng = self.rng
        fmt = node.get("format")
        if fmt in ("date-time", "date", "time"):
            day = f"{rng.randint(2020, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
            return f"{day}T{clock}" if fmt == "date-time" else day if fmt == "date" else clock
        if fmt == "uuid":
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            made = from_pattern(pattern, rng)
            if made is not None:
                return made
        start = rng.randrange(len(self.words))
        return " ".join(self.words[start : start + rng.randint(1, 4)])

    def _branch(self, branches: list[Any], depth: int) -> Any:
        if depth >= OPTIONAL_DEPTH:
            ending = [b for b in branches if not _refers(b)]
            if ending:
                return ending[0]
        return branches[self.rng.randrange(len(branches))]

    def _resolve(self, ref: str) -> Any:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            return None
        node: Any = self.root
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return None
        return node


def _refers(node: Any) -> bool:
    """Whether a branch can go deeper: a ``$ref``, an object or an array."""
    if not isinstance(node, dict):
        return False
    return "$ref" in node or node.get("type") in ("object", "array") or "properties" in node


# -- a string a regular expression matches --------------------------------------------------------

_CATEGORY = {
    "CATEGORY_DIGIT": "0123456789",
    "CATEGORY_NOT_DIGIT": "abcxyz",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "abc123",
    "CATEGORY_WORD": "abc_123",
    "CATEGORY_NOT_WORD": "-. ",
}
_CATEGORY_MATCH = {
    "CATEGORY_DIGIT": re.compile(r"\d"),
    "CATEGORY_NOT_DIGIT": re.compile(r"\D"),
    "CATEGORY_SPACE": re.compile(r"\s"),
    "CATEGORY_NOT_SPACE": re.compile(r"\S"),
    "CATEGORY_WORD": re.compile(r"\w"),
    "CATEGORY_NOT_WORD": re.compile(r"\W"),
}
_FALLBACK_CHARS = "a0Z_-. x9"
"""Tried in turn for a negated class (``[^...]``): the first the pattern then matches is kept."""


class _CannotMake(Exception):
    pass


def from_pattern(pattern: str, rng: random.Random) -> str | None:
    """A string ``pattern`` matches (a search, as JSON Schema's ``pattern``), or None when none is made.

    Built from the pattern's parse by Python's own parser: literals, classes,
    ``\\d \\w \\s``, ``.``, groups, alternatives and repeats (a bounded repeat
    drawn within its bounds, an open one at most three past its minimum).
    Back-references and lookarounds are not followed; the result is checked
    with ``re`` and dropped if it does not match.
    """
    parser = _parser()
    try:
        parsed = parser.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    out: list[str] = []
    try:
        _emit(list(parsed), rng, out)
    except (_CannotMake, RecursionError):
        return None
    made = "".join(out)
    try:
        return made if re.search(pattern, made) else None
    except re.error:
        return None


def _parser() -> Any:
    try:
        return importlib.import_module("re._parser")  # Python 3.11 and later
    except ImportError:  # pragma: no cover - Python 3.10
        return importlib.import_module("sre_parse")


def _emit(items: list[Any], rng: random.Random, out: list[str]) -> None:
    for op, arg in items:
        name = _name(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("a" if arg != ord("a") else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_one_of_class(arg, rng))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            top = min(high, low + 3)
            for _ in range(rng.randint(low, max(low, top))):
                _emit(list(sub), rng, out)
        elif name == "SUBPATTERN":
            _emit(list(arg[-1]), rng, out)
        elif name == "ATOMIC_GROUP":
            _emit(list(arg), rng, out)
        elif name == "BRANCH":
            alternatives = arg[1]
            _emit(list(alternatives[rng.randrange(len(alternatives))]), rng, out)
        elif name == "CATEGORY":
            out.append(rng.choice(_CATEGORY.get(_name(arg), "a")))
        elif name == "AT":
            continue  # \b and the like: the final check with re decides
        else:
            raise _CannotMake(name)


def _one_of_class(items: list[Any], rng: random.Random) -> str:
    if items and _name(items[0][0]) == "NEGATE":
        rest = items[1:]
        for char in _FALLBACK_CHARS:
            if not _in_class(rest, char):
                return char
        raise _CannotMake("NEGATE")
    op, arg = items[rng.randrange(len(items))]
    name = _name(op)
    if name == "LITERAL":
        return chr(arg)
    if name == "RANGE":
        return chr(rng.randint(arg[0], arg[1]))
    if name == "CATEGORY":
        return rng.choice(_CATEGORY.get(_name(arg), "a"))
    raise _CannotMake(name)


def _in_class(items: list[Any], char: str) -> bool:
    code = ord(char)
    for op, arg in items:
        name = _name(op)
        if name == "LITERAL" and arg == code:
            return True
        if name == "RANGE" and arg[0] <= code <= arg[1]:
            return True
        if name == "CATEGORY":
            match = _CATEGORY_MATCH.get(_name(arg))
            if match is None or match.fullmatch(char):
                return True
    return False


def _name(constant: Any) -> str:
    """An opcode's name from Python's regular-expression parser (``LITERAL``, ``IN``, ...)."""
    return str(getattr(constant, "name", constant))
