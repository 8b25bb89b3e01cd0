"""Typed answers as columns: a JSON Schema's properties, each answer read into them or kept as invalid.

The mapping from JSON Schema to column types, then the table writer itself
fed answers as the service's records hold them (shuffled, some failed, some
breaking the schema, one row with no result), and one run on the sandbox whose
answers are not JSON: every row is kept, flagged, its raw text beside it.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cohere_batch_cli as cb
from cohere_batch_cli.output.progress import NullProgress
from cohere_batch_cli.results.answer_columns import AnswerType, TypedAnswers, answer_types
from cohere_batch_cli.results.columns import TableOptions
from cohere_batch_cli.results.parquet import answer_arrow_type
from cohere_batch_cli.results.table_out import InputTable, write_table_out
from cohere_batch_cli.tasks.tables import TableRows
from tests.conftest import Cli
from tests.support.quiet import nothing_printed

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "score": {"type": "integer"},
        "confidence": {"type": ["number", "null"]},
        "spam": {"type": "boolean"},
        "topics": {"type": "array", "items": {"type": "string"}},
        "author": {"$ref": "#/$defs/person"},
        "extra": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["sentiment", "score"],
    "$defs": {
        "person": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        }
    },
}


def test_each_property_of_the_schema_is_a_column_of_its_arrow_type() -> None:
    types = {name: answer_arrow_type(kind) for name, kind in answer_types(SCHEMA)}
    assert types == {
        "sentiment": pa.string(),  # an enum is its values' type
        "score": pa.int64(),
        "confidence": pa.float64(),  # ["number", "null"]: every column is nullable
        "spam": pa.bool_(),
        "topics": pa.list_(pa.string()),
        "author": pa.struct([("name", pa.string()), ("age", pa.int64())]),  # $ref followed
        "extra": pa.string(),  # branches of two types: JSON text
    }


@pytest.mark.parametrize(
    "schema",
    [{"type": "string"}, {"type": "object"}, {"type": "object", "properties": {}}, [1, 2]],
)
def test_a_schema_without_properties_is_refused(schema: Any) -> None:
    from cohere_batch_cli.errors import UsageError

    with pytest.raises(UsageError):
        answer_types(schema)


def test_a_recursive_reference_is_json_text() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
    }
    [(_, node)] = answer_types(schema)
    assert node == AnswerType("struct", fields=(("child", AnswerType("json")),))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json at all", "not JSON: "),
        ("[1, 2]", "not a JSON object"),
        ('{"sentiment": "positive", "score": "high"}', "breaks the schema at /score: "),
        ('{"score": 1}', "breaks the schema at the top level: "),
    ],
)
def test_an_answer_the_validator_refuses_is_invalid_with_its_reason(text: str, reason: str) -> None:
    values, why = TypedAnswers.of_schema(SCHEMA).read(text)
    assert values is None
    assert why is not None and why.startswith(reason)


def test_a_valid_answer_whose_value_this_mapping_cannot_hold_says_where() -> None:
    """``anyOf`` of an integer and a string passes the schema; both kinds are JSON text, so it fits."""
    from cohere_batch_cli.results.answer_columns import convert

    assert convert(3.0, AnswerType("int"), "score") == 3
    assert convert({"a": [1]}, AnswerType("json"), "x") == '{"a":[1]}'
    with pytest.raises(ValueError, match=r'author\.age: expected an integer, got "old"'):
        convert(
            {"age": "old"},
            AnswerType("struct", fields=(("age", AnswerType("int")),)),
            "author",
        )


def _body(text: str) -> str:
    return json.dumps(
        {
            "id": "x",
            "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
            "usage": {"tokens": {"input_tokens": 7, "output_tokens": 3}},
        }
    )


GOOD = {
    "sentiment": "positive",
    "score": 4,
    "confidence": 0.5,
    "spam": False,
    "topics": ["battery", "screen"],
    "author": {"name": "Ann", "age": 31},
    "extra": "x",
}


def _write(tmp_path: Path, fmt: str, records: list[dict[str, Any]], table: Path) -> Path:
    out = tmp_path / f"out.{fmt}"
    typed = TypedAnswers.of_schema(SCHEMA)
    options = TableOptions(input_table=InputTable(TableRows(table), str(table), "id", typed=typed))
    spool = tmp_path / f"spool-{fmt}"
    spool.mkdir()
    with open(out, "wb") as fh:
        counts = write_table_out(
            iter(records), fh, fmt=fmt, failed_only=False, sink=NullProgress(),  # type: ignore[arg-type]
            options=options, spool_dir=spool,
        )  # fmt: skip
    assert counts.total == len(records) and counts.written == 6
    assert "1 row of" in " ".join(counts.warnings)  # the row with no result
    assert "2 answers do not fit the answer schema" in " ".join(counts.warnings)
    return out


@pytest.fixture
def answered(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    table = tmp_path / "reviews.csv"
    table.write_text(
        "id,review\n" + "".join(f"r{i},review {i}\n" for i in range(6)), encoding="utf-8"
    )
    records = [
        {"custom_id": "r0", "body": _body(json.dumps(GOOD))},
        {"custom_id": "r1", "body": _body('{"sentiment": "negative", "score": 1.0}')},
        {"custom_id": "r2", "body": _body("Sure! Here is the JSON you asked for")},
        {"custom_id": "r3", "body": _body('{"sentiment": "neutral", "score": "3"}')},
        {"custom_id": "r4", "body": None, "error": "the model is overloaded"},
        # r5: no result came back
    ]
    random.Random(7).shuffle(records)  # the service's order is its own
    return table, records


def test_typed_answers_are_parquet_columns_and_invalid_ones_are_kept_flagged(
    tmp_path: Path, answered: tuple[Path, list[dict[str, Any]]]
) -> None:
    table, records = answered
    got = pq.read_table(_write(tmp_path, "parquet", records, table))
    assert got.column_names == [
        "id", "review", "answer", "sentiment", "score", "confidence", "spam", "topics", "author",
        "extra", "invalid_output", "status", "error", "finish_reason", "input_tokens", "output_tokens", "cached",
    ]  # fmt: skip
    assert got.schema.field("author").type == pa.struct(
        [("name", pa.string()), ("age", pa.int64())]
    )
    rows = got.to_pylist()
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(6)]  # the table's order
    assert {k: rows[0][k] for k in GOOD} == {**GOOD, "extra": '"x"'}  # two types: JSON text
    assert rows[0]["invalid_output"] is None and rows[0]["status"] == "succeeded"
    assert rows[1]["score"] == 1 and rows[1]["topics"] is None  # 1.0 is an integer; absent: null
    assert rows[2]["invalid_output"].startswith("not JSON")
    assert rows[2]["answer"] == "Sure! Here is the JSON you asked for"  # the raw text, kept
    assert rows[2]["sentiment"] is None and rows[2]["status"] == "invalid"
    assert rows[3]["invalid_output"].startswith("breaks the schema at /score: ")
    assert rows[3]["sentiment"] is None  # an invalid answer has no typed value at all
    assert (rows[4]["status"], rows[4]["error"]) == ("failed", "the model is overloaded")
    assert rows[4]["invalid_output"] is None
    assert rows[5]["status"] == "missing" and rows[5]["answer"] is None


def test_typed_answers_in_csv_have_dotted_struct_columns_and_json_lists(
    tmp_path: Path, answered: tuple[Path, list[dict[str, Any]]]
) -> None:
    table, records = answered
    text = _write(tmp_path, "csv", records, table).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert "author.name" in rows[0] and "author.age" in rows[0] and "author" not in rows[0]
    assert (rows[0]["author.name"], rows[0]["author.age"]) == ("Ann", "31")
    assert json.loads(rows[0]["topics"]) == ["battery", "screen"]
    assert rows[0]["spam"] == "false"


def test_typed_answers_in_jsonl_are_nested_values(
    tmp_path: Path, answered: tuple[Path, list[dict[str, Any]]]
) -> None:
    table, records = answered
    lines = _write(tmp_path, "jsonl", records, table).read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert first["author"] == {"name": "Ann", "age": 31}
    assert first["topics"] == ["battery", "screen"]


REVIEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "score": {"type": "number"},
        "stars": {"type": "integer"},
        "topics": {"type": "array", "items": {"type": "string"}},
        "author": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "verified": {"type": "boolean"}},
            "required": ["name", "verified"],
        },
    },
    "required": ["sentiment", "score", "stars", "topics", "author"],
}


def test_a_schema_run_writes_one_typed_column_a_property_and_keeps_invalid_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create --from --schema on the sandbox, some answers broken on purpose: every row comes back.

    The run and its results through the Python API; the dry run after it (no API value)
    through cbatch."""
    import duckdb

    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.conftest import TEST_KEY

    count = 60
    table = tmp_path / "reviews.csv"
    table.write_text(
        "id,review\n" + "".join(f"r{i:02d},review number {i}\n" for i in range(count)),
        encoding="utf-8",
    )
    schema = tmp_path / "review.schema.json"
    schema.write_text(json.dumps(REVIEW), encoding="utf-8")
    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0, queue_delay=0.0,
        validation_delay=0.0, invalid_output_rate=0.3, seed=3,
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    with SandboxServer(settings) as server, cb.Client(TEST_KEY, base_url=server.base_url) as client:
        source = cb.PromptTable(table, "{{ review }}", id_column="id", schema=REVIEW)
        with nothing_printed():
            run = client.create(source, model="command-r-08-2024").wait(timeout=60, interval=0.1)
            summary = run.results("scored.parquet")
            run.results("scored.csv")
        cli = Cli(server.base_url, TEST_KEY)
        again = cli(
            "create", "--from", str(table), "--id-column", "id", "--prompt", "{{ review }}",
            "--schema", str(schema), "--model", "command-r-08-2024", "--dry-run",
        )  # fmt: skip
    got = pq.read_table(tmp_path / "scored.parquet")
    assert got.schema.field("sentiment").type == pa.string()
    assert got.schema.field("score").type == pa.float64()
    assert got.schema.field("stars").type == pa.int64()
    assert got.schema.field("topics").type == pa.list_(pa.string())
    assert got.schema.field("author").type == pa.struct(
        [("name", pa.string()), ("verified", pa.bool_())]
    )
    rows = got.to_pylist()
    assert [r["id"] for r in rows] == [f"r{i:02d}" for i in range(count)]  # the table's order
    valid = [r for r in rows if r["invalid_output"] is None]
    invalid = [r for r in rows if r["invalid_output"] is not None]
    assert valid and invalid  # 30 % broken on purpose: both kinds are there
    assert any(
        f"{len(invalid)} answers do not fit the answer schema" in w for w in summary.warnings
    )
    for row in valid:
        assert row["sentiment"] in ("positive", "neutral", "negative")
        assert isinstance(row["stars"], int) and isinstance(row["author"]["verified"], bool)
        assert json.loads(row["answer"])["sentiment"] == row["sentiment"]  # the raw text beside
    for row in invalid:
        assert row["invalid_output"].startswith(("breaks the schema", "cut off at MAX_TOKENS"))
        assert row["sentiment"] is None and row["author"] is None and row["answer"]
        assert row["status"] == "invalid"  # the service answered; the answer is what is wrong
        assert row["error"] is None
    # results kept the valid answers in the cache, never an invalid one: those are asked again
    kept = len(valid)
    assert f"{kept} answered by the cache: {count - kept} requests to send" in again.stderr
    text = (tmp_path / "scored.csv").read_text(encoding="utf-8")
    header = next(csv.reader(io.StringIO(text)))
    assert header[:8] == [
        "id", "review", "answer", "sentiment", "score", "stars", "topics", "author.name",
    ]  # fmt: skip
    assert "author.verified" in header and "author" not in header
    counted = duckdb.sql(
        f"SELECT count(*), count(sentiment), count(invalid_output) FROM '{tmp_path / 'scored.parquet'}'"
    ).fetchall()
    assert counted == [(count, len(valid), len(invalid))]
