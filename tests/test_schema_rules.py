"""Cohere's schema rules (schema_rules.py): what is refused, where it is named, and what is let through.

``create --schema`` and the sandbox both read these rules; the CLI's refusals are
tested end to end in test_typed_answers.py, the sandbox's in
tests/sandbox/test_structured_answers.py. These cases are the edges of the rules.
"""

from __future__ import annotations

from typing import Any

import pytest

from cohere_batch_cli.schema_rules import pattern_problem, problems


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": sorted(properties)}


@pytest.mark.parametrize(
    "pattern",
    ["[A-Z]{3}-[0-9]+", "[^a-z]+", "a\\^b\\$", "[]a]x", "[^]a]", "(?:ab)+", "(?<=x)y", "[$^]"],
)
def test_patterns_without_anchors_or_lookaheads_pass(pattern: str) -> None:
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("^abc", 'the anchor "^" is not supported'),
        ("abc$", 'the anchor "$" is not supported'),
        ("[a-z]+(?=x)", 'the lookahead "(?=" is not supported'),
        ("(?!x)[a-z]", 'the lookahead "(?!" is not supported'),
        ("[^a]^", 'the anchor "^" is not supported'),
    ],
)
def test_anchors_and_lookaheads_are_refused(pattern: str, says: str) -> None:
    assert pattern_problem(pattern) == says


def test_a_schema_within_the_rules_has_no_problem() -> None:
    schema = {
        "type": "object",
        "$defs": {"tag": {"type": "string", "enum": ["a", "b"]}},
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "when": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
            "kind": {"const": "x"},
            "either": {"anyOf": [obj(n={"type": "integer"}), {"type": "null"}]},
            "counts": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "required": ["a"],
            },
            "free": {
                "type": "object",
                "additionalProperties": {"type": "object"},
                "required": ["k"],
            },
        },
        "required": ["id"],
    }
    assert problems(schema) == []


def test_every_problem_is_named_by_its_pointer_with_names_escaped() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a/b": {"type": "string", "maxLength": 5},
            "list": {"type": "array", "items": [{"type": "object"}]},
            "one": {"anyOf": [{"type": "integer", "maximum": 3}]},
        },
        "$defs": {"x~y": {"type": "object", "properties": {}}},
        "required": ["a/b"],
    }
    assert problems(schema) == [
        '#/properties/a~1b/maxLength: "maxLength" is not supported',
        '#/properties/list/items/0: an object must list at least one field in "required"',
        '#/properties/one/anyOf/0/maximum: "maximum" is not supported',
        '#/$defs/x~0y: an object must list at least one field in "required"',
    ]


def test_the_top_level_must_be_an_object_schema() -> None:
    assert problems([]) == ["#: the schema must be a JSON object"]
    assert problems({"type": ["object", "null"], "required": ["a"]}) == [
        '#: the top level must be "type": "object"'
    ]
    assert problems({"type": "object", "required": []}) == [
        '#: an object must list at least one field in "required"'
    ]
