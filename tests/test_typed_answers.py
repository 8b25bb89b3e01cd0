"""``create --from TABLE --schema FILE``: typed answers asked for, after Cohere's schema rules (issue 25).

Each test runs against the real sandbox and reads back what it received: the records of
the uploaded dataset (every body carries the schema as ``response_format``), the answers
of the batch (each follows the schema, read by the validator ``results`` uses), or the
request log when a schema is refused and nothing may be sent. The run and the rules'
refusals go through the Python API in-process; how ``cbatch`` words a refusal of
``--schema FILE``, and its dry runs, through ``cbatch``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from cohere_batch_cli.errors import UsageError
from cohere_batch_cli.results.answers import compile
from cohere_batch_cli.tasks.table_prompts import TableSpec
from tests.conftest import Cli
from tests.sandbox.sandbox_client import Api
from tests.support.quiet import nothing_printed
from tests.support.schemas import REVIEW

MODEL = "command-r-08-2024"


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("id,text\nr1,Battery lasts two days\nr2,Screen cracked in a week\n")
    return path


def schema_file(path: Path, schema: Any) -> Path:
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


def test_every_request_carries_the_schema_and_every_answer_follows_it(
    client: cb.Client, api: Api, table: Path
) -> None:
    with nothing_printed():
        run = client.create(
            cb.PromptTable(table, "Rate: {{ text }}", id_column="id", schema=REVIEW), model=MODEL
        )
    batch = {"id": run.id, "input_dataset_id": run.batch.input_dataset_id}
    bodies = {
        r["custom_id"]: json.loads(r["body"])
        for part in api.parts(batch["input_dataset_id"])
        for r in part
    }
    assert set(bodies) == {"r1", "r2"}
    for body in bodies.values():
        assert body["response_format"] == {"type": "json_object", "json_schema": REVIEW}
    done = api.wait_batch(batch["id"])
    check = compile(REVIEW)
    for record in api.results(done["output_dataset_id"]):
        reply = json.loads(record["body"])
        answer = check(reply["message"]["content"][0]["text"], reply["finish_reason"])
        assert isinstance(answer, dict) and answer["sentiment"] in (
            "positive",
            "neutral",
            "negative",
        )


BREAKS = [
    ({"type": "array", "items": {"type": "string"}}, '#: the top level must be "type": "object"'),
    (
        {"type": "object", "properties": {"a": {"type": "string"}}},
        '#: an object must list at least one field in "required"',
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "who": {"type": "object", "properties": {"n": {"type": "string"}}}}},
        '#/properties/who: an object must list at least one field in "required"',
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "topics": {"type": "array", "maxItems": 3}}},
        '#/properties/topics/maxItems: "maxItems" is not supported',
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "score": {"type": "number", "minimum": 0}}},
        '#/properties/score/minimum: "minimum" is not supported',
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "x": {"oneOf": [{"type": "string"}]}}},
        '#/properties/x/oneOf: "oneOf" is not supported',
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "code": {"type": "string", "pattern": "^[A-Z]+$"}}},
        '#/properties/code/pattern: the anchor "^" is not supported',
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "code": {"type": "string", "pattern": "a(?!b)"}}},
        '#/properties/code/pattern: the lookahead "(?!" is not supported',
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "mail": {"type": "string", "format": "email"}}},
        '#/properties/mail/format: "email" is not supported (only date-time, date, time, uuid)',
    ),
    (
        {**REVIEW, "$defs": {"p": {"type": "object", "properties": {"uniq": {"type": "array", "uniqueItems": True}}, "required": ["uniq"]}}},
        '#/$defs/p/properties/uniq/uniqueItems: "uniqueItems" is not supported',
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "code": {"type": "string", "pattern": "(["}}},
        'the JSON Schema cannot be used at #/properties/code/pattern: "([" is not a "regex"',
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "status": {"type": "string"}}},
        '#/properties/status: "status" is the name of a column results adds beside the answer '
        "(answer, invalid_output, status, error, finish_reason, input_tokens, output_tokens, cached); "
        "rename the property in the schema",
    ),  # refused before the batch is paid for: results could never write its table
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "code": {"type": "strng"}}},
        'the JSON Schema cannot be used at #/properties/code/type: "strng" is not a JSON Schema type '
        "(array, boolean, integer, null, number, object, string)",
    ),
    (
        {**REVIEW, "properties": {**REVIEW["properties"], "p": {"$ref": "#/$defs/person"}}},
        "the JSON Schema cannot be used: Pointer '/$defs/person' does not exist",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "says"), BREAKS)
def test_a_schema_that_breaks_a_rule_is_refused_naming_the_part_and_nothing_is_sent(
    client: cb.Client, table: Path, posts: Any, schema: Any, says: str
) -> None:
    with nothing_printed(), pytest.raises(cb.UsageError) as refused:
        client.create(cb.PromptTable(table, "{{ text }}", schema=schema), model=MODEL)
    assert refused.value.exit_code == 2
    assert str(refused.value) == f"the schema argument: {says}"
    assert posts() == []


def test_a_schema_file_that_breaks_a_rule_is_refused_in_one_line_naming_it(
    cli: Cli, table: Path, tmp_path: Path, posts: Any
) -> None:
    schema, says = BREAKS[0]
    path = schema_file(tmp_path / "s.json", schema)
    result = cli(
        "create", "--from", str(table), "--prompt", "{{ text }}", "--schema", str(path),
        "--model", MODEL, exit_code=2,
    )  # fmt: skip
    assert result.stderr.splitlines()[0] == f"error: --schema {path}: {says}"
    assert posts() == []


def test_several_problems_are_counted_on_the_one_line(
    cli: Cli, table: Path, tmp_path: Path
) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "minLength": 1, "maxLength": 9}},
    }
    path = schema_file(tmp_path / "s.json", schema)
    result = cli(
        "create", "--from", str(table), "--prompt", "{{ text }}", "--schema", str(path),
        "--model", MODEL, "--dry-run", exit_code=2,
    )  # fmt: skip
    assert result.stderr.splitlines()[0] == (
        f'error: --schema {path}: #: an object must list at least one field in "required" '
        "(and 2 more problems)"
    )


def test_a_schema_file_that_is_not_json_or_missing_is_one_line_exit_2(
    cli: Cli, table: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "s.json"
    broken.write_text('{"type": "object",', encoding="utf-8")
    result = cli(
        "create", "--from", str(table), "--prompt", "{{ text }}", "--schema", str(broken),
        "--model", MODEL, exit_code=2,
    )  # fmt: skip
    assert result.stderr.startswith(f"error: --schema {broken}: not JSON: ")
    missing = tmp_path / "nowhere.json"
    result = cli(
        "create", "--from", str(table), "--prompt", "{{ text }}", "--schema", str(missing),
        "--model", MODEL, exit_code=2,
    )  # fmt: skip
    assert f"--schema: cannot read {missing}" in result.stderr
    result = cli(
        "create", "--file", "r.jsonl", "--schema", str(missing), "--model", MODEL, exit_code=2
    )
    assert "--schema goes with --from TABLE" in result.stderr


@pytest.mark.parametrize(
    ("model", "warned"),
    [("command-r", True), ("command-r-plus", True), ("command-r-08-2024", False),
     ("command-a-03-2025", False)],
)  # fmt: skip
def test_a_model_older_than_command_r_08_2024_is_warned_of(
    cli: Cli, table: Path, tmp_path: Path, posts: Any, model: str, warned: bool
) -> None:
    path = schema_file(tmp_path / "s.json", REVIEW)
    result = cli(
        "create", "--from", str(table), "--prompt", "{{ text }}", "--schema", str(path),
        "--model", model, "--dry-run",
    )  # fmt: skip
    warning = f"warning: model '{model}' is older than Command R 08-2024"
    assert (warning in result.stderr) is warned
    assert "dry run: nothing was sent" in result.stderr
    assert [p for _, p in posts() if "datasets" in p or "batches" in p] == []


@pytest.mark.parametrize("field", ["documents", "tools"])
def test_a_schema_does_not_go_with_documents_or_tools(tmp_path: Path, field: str) -> None:
    fmt = {"type": "json_object", "json_schema": REVIEW}
    with pytest.raises(UsageError, match=f"--schema does not go with {field}"):
        TableSpec(table=tmp_path, template="x", options={"response_format": fmt, field: []})


def test_the_check_of_a_file_warns_of_structured_output_cohere_does_not_support(
    cli: Cli, tmp_path: Path
) -> None:
    bad = {
        **REVIEW,
        "properties": {**REVIEW["properties"], "score": {"type": "number", "maximum": 5}},
    }
    fmt = {"type": "json_object", "json_schema": bad}
    lines = [
        {"custom_id": "fine", "body": {"messages": [{"role": "user", "content": "a"}],
                                       "response_format": {"type": "json_object", "json_schema": REVIEW}}},
        {"custom_id": "b1", "body": {"messages": [{"role": "user", "content": "b"}], "response_format": fmt}},
        {"custom_id": "b2", "body": {"messages": [{"role": "user", "content": "c"}], "response_format": fmt}},
        {"custom_id": "docs", "body": {"messages": [{"role": "user", "content": "d"}], "documents": ["x"],
                                       "response_format": {"type": "json_object"}}},
    ]  # fmt: skip
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = cli("datasets", "validate", str(path))
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {path}: 2 records (first on line 2): response_format.json_schema breaks a rule: "
        '#/properties/score/maximum: "maximum" is not supported; Cohere documents this as '
        "unsupported, and the service may fail them",
        f"warning: {path}: 1 record (first on line 4): response_format is not supported with "
        "documents or tools; Cohere documents this as unsupported, and the service may fail it",
    ]
