"""Structured requests: the sandbox answers with a JSON object that follows the request's schema.

Schemas are drawn by hypothesis within the subset CONTRACT.md lists (nested
objects, arrays, enum, const, anyOf, $ref, pattern, the four formats), sent in
one batch over loopback, and every answer is read back from the output dataset
and checked with the validator ``cbatch results`` uses (results/answers.py).
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohere_batch_cli.results.answers import CUT_OFF, compile
from cohere_batch_cli.sandbox import structured, tokenizer
from cohere_batch_cli.schema_rules import problems
from tests.support.schemas import REVIEW

NAMES = st.text(string.ascii_lowercase + "_ /~", min_size=1, max_size=8)
PATTERNS = st.sampled_from(
    [
        "[A-Z]{3}-[0-9]+",
        "\\d{4}",
        "(foo|bar)baz",
        "[^a-z]+x",
        "[a-z]+@[a-z]+\\.com",
        "v[0-9]\\.[0-9]",
    ]
)


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.sampled_from(
            [{"type": t} for t in ("string", "integer", "number", "boolean", "null")]
            + [{"type": "string", "format": f} for f in ("date-time", "date", "time", "uuid")]
            + [{"type": ["string", "null"]}, {"type": ["integer", "string"]}]
        ),
        st.lists(st.text(max_size=6), min_size=1, max_size=4, unique=True).map(
            lambda v: {"type": "string", "enum": v}
        ),
        st.one_of(st.integers(-5, 5), st.text(max_size=5), st.booleans()).map(
            lambda v: {"const": v}
        ),
        PATTERNS.map(lambda p: {"type": "string", "pattern": p}),
        st.just({"$ref": "#/$defs/item"}),
    )


def objects(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def make(draw: st.DrawFn) -> dict[str, Any]:
        properties = draw(st.dictionaries(NAMES, children, min_size=1, max_size=4))
        names = sorted(properties)
        required = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        node: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
        if draw(st.booleans()):
            node["additionalProperties"] = False
        return node

    return make()


SUBSCHEMAS = st.recursive(
    leaf(),
    lambda children: st.one_of(
        objects(children),
        children.map(lambda items: {"type": "array", "items": items}),
        st.lists(children, min_size=1, max_size=3).map(lambda b: {"anyOf": b}),
    ),
    max_leaves=12,
)
ITEM = {  # what "$ref": "#/$defs/item" points at: recursive, ended by its anyOf's null
    "type": "object",
    "properties": {"label": {"type": "string"}, "next": {"anyOf": [{"$ref": "#/$defs/item"}, {"type": "null"}]}},
    "required": ["label", "next"],
}  # fmt: skip
SCHEMAS = objects(SUBSCHEMAS).map(lambda s: {**s, "$defs": {"item": ITEM}})
PROMPTS = st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and "[[" not in t)


def requests(schemas: list[dict[str, Any]], prompts: list[str], **extra: Any) -> bytes:
    lines = []
    for i, (schema, prompt) in enumerate(zip(schemas, prompts, strict=False)):
        body = {
            "messages": [{"role": "user", "content": prompt}],
            "response_format": {"type": "json_object", "json_schema": schema},
            **extra,
        }
        lines.append(json.dumps({"custom_id": f"r{i}", "body": body}))
    return ("\n".join(lines) + "\n").encode()


def answers(api: Any, data: bytes) -> dict[str, dict[str, Any]]:
    """Each record's ``{"text", "finish_reason"}`` (or ``{"error"}``), by custom_id."""
    done = api.run(data, model="command-r-08-2024")
    out = {}
    for cid, record in api.by_id(done["output_dataset_id"]).items():
        if record["error"]:
            out[cid] = {"error": record["error"]}
            continue
        body = json.loads(record["body"])
        out[cid] = {
            "text": body["message"]["content"][0]["text"],
            "finish_reason": body["finish_reason"],
            "output_tokens": body["usage"]["tokens"]["output_tokens"],
        }
    return out


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(SCHEMAS, PROMPTS), min_size=10, max_size=25))
def test_every_answer_follows_its_schema(shared: Any, drawn: list[tuple[Any, str]]) -> None:
    schemas = [s for s, _ in drawn]
    assert all(problems(s) == [] for s in schemas), "the strategy stays within Cohere's rules"
    got = answers(shared, requests(schemas, [p for _, p in drawn]))
    assert len(got) == len(drawn)
    for i, schema in enumerate(schemas):
        answer = got[f"r{i}"]
        assert answer["finish_reason"] == "COMPLETE", answer
        assert isinstance(compile(schema)(answer["text"], "COMPLETE"), dict), (schema, answer)


@settings(max_examples=150, deadline=None)
@given(SCHEMAS, PROMPTS)
def test_the_answer_is_a_function_of_prompt_and_schema_and_follows_it(
    schema: dict[str, Any], prompt: str
) -> None:
    body = {"response_format": {"type": "json_object", "json_schema": schema}}
    text = structured.answer(body, prompt)
    assert text == structured.answer(body, prompt)
    assert isinstance(compile(schema)(text), dict), text
    assert isinstance(compile(schema)(structured.answer(body, prompt, broken=True)), str)


def test_the_lever_breaks_some_answers_afresh_each_run_and_a_retry_recovers(start: Any) -> None:
    api = start(invalid_output_rate=0.5, seed=3)
    prompts = [f"Review {i}: the battery lasts {i} hours" for i in range(40)]
    data = requests([REVIEW] * 40, prompts)
    check = compile(REVIEW)
    got = answers(api, data)
    reasons = {cid: check(a["text"], a["finish_reason"]) for cid, a in got.items()}
    invalid = {cid: r for cid, r in reasons.items() if isinstance(r, str)}
    assert 5 < len(invalid) < 35, "about half the answers are made unusable"
    cut = {cid for cid, r in invalid.items() if r == CUT_OFF}
    assert cut and len(cut) < len(invalid), "some are cut, some break the schema"
    assert all(got[cid]["finish_reason"] == "MAX_TOKENS" for cid in cut)
    for cid in set(invalid) - cut:
        assert got[cid]["finish_reason"] == "COMPLETE"
        assert invalid[cid].startswith("breaks the schema at the top level: "), invalid[cid]
    for answer in got.values():  # broken, cut or whole, usage counts the text sent back
        assert answer["output_tokens"] == tokenizer.count(answer["text"]), answer
    assert all(got[cid]["finish_reason"] == "COMPLETE" for cid in set(got) - set(invalid))

    failing = set(invalid)
    for _ in range(12):  # sent again in new batches, the same requests are drawn afresh
        lines = [ln for ln in data.splitlines() if json.loads(ln)["custom_id"] in failing]
        again = answers(api, b"\n".join(lines) + b"\n")
        failing = {
            cid for cid, a in again.items() if isinstance(check(a["text"], a["finish_reason"]), str)
        }
        if not failing:
            break
    assert not failing, f"{len(failing)} answers still unusable after 12 retries"


def test_the_same_request_gets_the_same_answer_in_every_batch(shared: Any) -> None:
    data = requests([REVIEW] * 3, ["good phone", "bad phone", "good phone"])
    first, second = answers(shared, data), answers(shared, data)
    assert first == second
    assert first["r0"]["text"] == first["r2"]["text"] != first["r1"]["text"]
    assert json.loads(first["r0"]["text"]).keys() >= {"sentiment", "score", "topics"}


def test_json_mode_without_a_schema_gives_an_object_and_the_guides_key_is_read(
    shared: Any,
) -> None:
    lines = [
        {"custom_id": "plain", "body": {"messages": [{"role": "user", "content": "Give JSON"}],
                                         "response_format": {"type": "json_object"}}},
        {"custom_id": "guide", "body": {"messages": [{"role": "user", "content": "Rate it"}],
                                         "response_format": {"type": "json_object", "schema": REVIEW}}},
    ]  # fmt: skip
    got = answers(shared, "".join(json.dumps(line) + "\n" for line in lines).encode())
    assert json.loads(got["plain"]["text"]) == {"reply": "Give JSON"}
    assert isinstance(compile(REVIEW)(got["guide"]["text"]), dict)


def test_a_schema_that_breaks_a_rule_or_comes_with_tools_fails_its_record_in_the_sandbox_words(
    shared: Any,
) -> None:
    bad = {
        **REVIEW,
        "properties": {**REVIEW["properties"], "topics": {"type": "array", "minItems": 1}},
    }
    data = requests([bad, REVIEW, REVIEW], ["a", "b", "c"])
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    lines = data.splitlines()
    with_tools = json.loads(lines[2])
    with_tools["body"]["tools"] = tools
    lines[2] = json.dumps(with_tools).encode()
    got = answers(shared, b"\n".join(lines) + b"\n")
    assert got["r0"] == {
        "error": "invalid request: response_format.json_schema breaks a rule: "
        '#/properties/topics/minItems: "minItems" is not supported'
    }
    assert "text" in got["r1"]
    assert got["r2"] == {
        "error": "invalid request: response_format is not supported with documents or tools"
    }


def test_a_max_tokens_below_the_answer_cuts_it_mid_object(shared: Any) -> None:
    got = answers(shared, requests([REVIEW], ["a long review of a phone"], max_tokens=5))
    assert got["r0"]["finish_reason"] == "MAX_TOKENS"
    assert got["r0"]["output_tokens"] == 5
    assert compile(REVIEW)(got["r0"]["text"], "MAX_TOKENS") == CUT_OFF
