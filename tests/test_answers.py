"""Typed answers: an answer's text checked against its run's JSON Schema (results/answers.py).

The texts are shaped as chat answers come back: pretty-printed or compact JSON,
text outside ASCII, an answer cut by ``max_tokens`` mid-object. What a user sees
of each is the row's value or its ``invalid_output`` reason, so the tests assert
on those strings.
"""

from __future__ import annotations

from typing import Any

import pytest

from cohere_batch_cli.errors import UsageError
from cohere_batch_cli.results.answers import CUT_OFF, compile, pointer
from tests.support.schemas import REVIEW

PRETTY = '{\n  "sentiment": "positive",\n  "score": 0.92,\n  "topics": ["battery", "écran"]\n}'


def test_a_valid_answer_comes_back_parsed() -> None:
    check = compile(REVIEW)
    assert check(PRETTY, "COMPLETE") == {
        "sentiment": "positive",
        "score": 0.92,
        "topics": ["battery", "écran"],
    }
    assert check('{"sentiment":"neutral","score":3,"topics":[]}') == {
        "sentiment": "neutral",
        "score": 3,
        "topics": [],
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            '{"sentiment": "great", "score": 0.9, "topics": []}',
            'breaks the schema at /sentiment: "great" is not one of "positive", "neutral" or "negative"',
        ),
        (
            '{"sentiment": "positive", "score": 0.9, "topics": ["ok", 7]}',
            'breaks the schema at /topics/1: 7 is not of type "string"',
        ),
        (
            '{"sentiment": "positive", "topics": []}',
            'breaks the schema at the top level: "score" is a required property',
        ),
        ("Sure! Here is the JSON you asked for:", "not JSON: Expecting value at column 1"),
        (
            '{"sentiment": "positive", "score": 0.9}\nHope this helps',
            "not JSON: Extra data at line 2 column 1",
        ),
        ('["positive", 0.9]', "not a JSON object: a list"),
        ('"positive"', "not a JSON object: a string"),
        ('{"sentiment": "positive", "score": NaN, "topics": []}', "not JSON: NaN is not JSON"),
    ],
)
def test_an_unusable_answer_says_why_in_one_line(text: str, reason: str) -> None:
    assert compile(REVIEW)(text, "COMPLETE") == reason


def test_an_answer_cut_by_max_tokens_says_so() -> None:
    check = compile(REVIEW)
    cut = '{\n  "sentiment": "negative",\n  "score": 0.1,\n  "topics": ["shipp'
    assert check(cut, "MAX_TOKENS") == CUT_OFF == "cut off at MAX_TOKENS"
    assert check(cut, "COMPLETE").startswith("not JSON: ")
    # An answer that happened to end exactly at the limit is whole, and kept.
    assert check('{"sentiment":"neutral","score":0,"topics":[]}', "MAX_TOKENS") == {
        "sentiment": "neutral",
        "score": 0,
        "topics": [],
    }


def test_json_mode_without_a_schema_takes_any_object() -> None:
    check = compile(None)
    assert check('{"anything": [1, {"deep": null}]}') == {"anything": [1, {"deep": None}]}
    assert check("[1, 2]") == "not a JSON object: a list"
    assert check("{", "MAX_TOKENS") == CUT_OFF


def test_the_contract_subset_is_checked_refs_anyof_const_and_formats() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "$defs": {
            "person": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "born": {"type": "string", "format": "date"},
                    "id": {"type": "string", "format": "uuid"},
                },
                "required": ["name"],
            }
        },
        "properties": {
            "kind": {"const": "ticket"},
            "author": {"$ref": "#/$defs/person"},
            "priority": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
        },
        "required": ["kind", "author", "priority"],
    }
    check = compile(schema)
    good = '{"kind": "ticket", "author": {"name": "Ada", "born": "1815-12-10"}, "priority": null, "code": "OPS-12"}'
    assert isinstance(check(good), dict)
    assert check('{"kind": "bug", "author": {"name": "Ada"}, "priority": 1}') == (
        'breaks the schema at /kind: "ticket" was expected'
    )
    assert check(
        '{"kind": "ticket", "author": {"name": "Ada", "born": "10 Dec"}, "priority": 1}'
    ) == ('breaks the schema at /author/born: "10 Dec" is not a "date"')
    assert (
        check('{"kind": "ticket", "author": {"name": "Ada", "id": "nope"}, "priority": 1}')
        == 'breaks the schema at /author/id: "nope" is not a "uuid"'
    )
    assert check(
        '{"kind": "ticket", "author": {"name": "Ada"}, "priority": 1, "code": "ops-1"}'
    ) == ('breaks the schema at /code: "ops-1" does not match "^[A-Z]{3}-[0-9]+$"')
    reason = check('{"kind": "ticket", "author": {"name": "Ada"}, "priority": "high"}')
    assert isinstance(reason, str)
    assert reason.startswith("breaks the schema at /priority: ")


def test_a_long_reason_is_cut_and_stays_one_line() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
        "required": ["a"],
    }
    text = '{"a": "' + "x\\n" * 500 + '"}'
    reason = compile(schema)(text)
    assert isinstance(reason, str)
    assert "\n" not in reason
    assert len(reason) <= 300
    assert reason.startswith("breaks the schema at /a: ")


def test_the_pointer_escapes_slashes_and_tildes() -> None:
    assert pointer(["a/b", 0, "c~d"]) == "/a~1b/0/c~0d"
    assert pointer([]) == ""
    schema = {
        "type": "object",
        "properties": {"a/b": {"type": "integer"}},
        "required": ["a/b"],
    }
    assert compile(schema)('{"a/b": "1"}') == (
        'breaks the schema at /a~1b: "1" is not of type "integer"'
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "string", "pattern": "(["}}},
            'the JSON Schema cannot be used at #/properties/a/pattern: "([" is not a "regex"',
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/nowhere"}}},
            "the JSON Schema cannot be used: Pointer '/$defs/nowhere' does not exist",
        ),
    ],
)
def test_a_schema_that_cannot_be_compiled_is_a_usage_error(
    schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        compile(schema)
    assert str(caught.value) == message


def test_a_ref_outside_the_schema_is_never_fetched() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/x.json"}}}
    with pytest.raises(UsageError, match="points outside the schema"):
        compile(schema)
