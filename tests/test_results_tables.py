"""CSV and Parquet results: the column model, the types Parquet keeps, row groups, and widening.

Parts are served by the real loopback part server and written by ``download_results``;
every Parquet file is read back with pyarrow, as a user's next step would.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cohere_batch_cli.api.models import DatasetPart
from cohere_batch_cli.errors import OutputOptionError
from cohere_batch_cli.results import TableOptions, download_results
from cohere_batch_cli.results.columns import cell, parse_columns
from cohere_batch_cli.results.formats import choose_format
from cohere_batch_cli.results.parquet import ROW_GROUP_BYTES, join, json_type
from tests.support.fake_api import avro_part
from tests.support.part_server import PartServer

VECTORS = pa.list_(pa.list_(pa.float32()))
CHAT_SCHEMA = pa.schema(
    [
        ("custom_id", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("text", pa.string()),
        ("finish_reason", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("tool_calls", pa.string()),
    ]
)


def chat(cid: str, text: str, *, tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": text}],
    }
    if tools:
        message["tool_calls"] = tools
    body = {"id": f"id-{cid}", "message": message, "finish_reason": "TOOL_CALL" if tools else "COMPLETE",
            "usage": {"billed_units": {"input_tokens": 7, "output_tokens": 3}}}  # fmt: skip
    return {"custom_id": cid, "body": json.dumps(body), "error": ""}


def failure(cid: str) -> dict[str, Any]:
    return {"custom_id": cid, "body": None, "error": f"failed {cid}"}


def embed(cid: str, embeddings: dict[str, Any], tokens: int = 4) -> dict[str, Any]:
    body = {
        "id": f"id-{cid}",
        "embeddings": embeddings,
        "texts": ["a", "b"],
        "meta": {"billed_units": {"input_tokens": tokens}},
    }
    return {"custom_id": cid, "body": json.dumps(body), "error": ""}


@pytest.fixture
def server() -> Iterator[PartServer]:
    with PartServer() as srv:
        yield srv


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def serve(server: PartServer, *parts: list[dict[str, Any]]) -> list[DatasetPart]:
    out = []
    for index, records in enumerate(parts):
        data = avro_part(records)
        url = server.add(f"part-{index}.avro", data)
        out.append(
            DatasetPart(
                {"index": index, "url": url, "size_bytes": len(data), "num_rows": len(records)}
            )
        )
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- choosing the format


def test_the_name_given_to_o_picks_the_format_unless_format_says_it() -> None:
    assert choose_format("out.parquet", None) == "parquet"
    assert choose_format("OUT.CSV", None) == "csv"
    assert choose_format("dir/out.jsonl", None) == "jsonl"
    assert choose_format("out.txt", None) == "jsonl"
    assert choose_format("-", None) == "jsonl"
    assert choose_format(None, "parquet") == "parquet"
    assert (
        choose_format("out.data", "csv") == "csv"
    )  # a name with no known extension takes --format
    assert choose_format("out.csv", "csv") == "csv"
    with pytest.raises(OutputOptionError, match=r"--format csv contradicts -o out\.parquet"):
        choose_format("out.parquet", "csv")


def test_a_column_is_name_equals_a_jmespath_expression() -> None:
    (spec,) = parse_columns(["model = body.id"])
    assert (spec.name, spec.expression) == ("model", "body.id")
    for bad, says in [("nothing", "expected NAME=EXPR"), ("1st=body", "a column name is"),
                      ("a=body.[", "is not a JMESPath expression"), ("a=", "expected NAME=EXPR")]:  # fmt: skip
        with pytest.raises(OutputOptionError, match=says):
            parse_columns([bad])
    with pytest.raises(OutputOptionError, match="given twice"):
        parse_columns(["a=body", "a=custom_id"])


def test_a_chosen_column_takes_the_json_type_of_its_values() -> None:
    assert [json_type(v) for v in (None, True, 3, 2.5, "x", [1, 2], [1, 2.5], [[1], [None]], {"a": 1}, [1, "x"], 2**70)] == [
        "null", "bool", "int", "float", "string", "list:int", "list:float", "list:list:int", "json", "json", "json",
    ]  # fmt: skip
    assert join("int", "float") == "float"
    assert join("null", "string") == "string"
    assert join("list:int", "list:float") == "list:float"
    assert join("list:null", "list:string") == "list:string"
    assert join("int", "string") == "json"
    assert join("bool", "int") == "json"  # a boolean is not a number in JSON
    assert join("list:int", "int") == "json"


# --------------------------------------------------------------------------- chat and embed columns


def test_chat_output_as_parquet_has_typed_columns(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    calls = [
        {
            "id": "t1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"q": "tides"}'},
        }
    ]
    parts = serve(server, [chat("c0", "hello"), failure("c1")], [chat("c2", "", tools=calls)])
    out = tmp_path / "chat.parquet"
    summary = download_results(parts, out, fmt="parquet", http=http)
    assert (summary.written, summary.failed, summary.warnings) == (3, 1, ())
    table = pq.read_table(out)
    assert table.schema == CHAT_SCHEMA
    rows = table.to_pylist()
    assert rows[0] == {"custom_id": "c0", "status": "succeeded", "error": None, "text": "hello", "finish_reason": "COMPLETE",
                       "input_tokens": 7, "output_tokens": 3, "tool_calls": None}  # fmt: skip
    assert rows[1] == {"custom_id": "c1", "status": "failed", "error": "failed c1", "text": None, "finish_reason": None,
                       "input_tokens": None, "output_tokens": None, "tool_calls": None}  # fmt: skip
    assert json.loads(rows[2]["tool_calls"]) == calls and rows[2]["finish_reason"] == "TOOL_CALL"
    assert [
        f for f in (tmp_path).iterdir() if f.name != "chat.parquet"
    ] == []  # no temporary file, no part folder


def test_embed_output_has_a_column_per_embedding_type_of_its_integer_type(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    vectors = {
        "float": [[0.25, -0.5, 0.125], [1.0, 0.0, -1.0]],
        "int8": [[-128, 0, 127], [1, 2, 3]],
        "uint8": [[0, 128, 255], [4, 5, 6]],
        "binary": [[-5], [7]],
        "ubinary": [[250], [3]],
        "base64": ["AAAA", "BBBB"],
    }
    parts = serve(
        server,
        [embed("e0", vectors), failure("e1"), embed("e2", {"float": [[0.5, 0.5, 0.5]]}, tokens=2)],
    )
    out = tmp_path / "embed.parquet"
    download_results(parts, out, fmt="parquet", http=http)
    table = pq.read_table(out)
    assert table.schema == pa.schema(
        [
            ("custom_id", pa.string()), ("status", pa.string()), ("error", pa.string()), ("input_tokens", pa.int64()),
            ("embeddings_float", VECTORS),
            ("embeddings_int8", pa.list_(pa.list_(pa.int8()))),
            ("embeddings_uint8", pa.list_(pa.list_(pa.uint8()))),
            ("embeddings_binary", pa.list_(pa.list_(pa.int8()))),
            ("embeddings_ubinary", pa.list_(pa.list_(pa.uint8()))),
            ("embeddings_base64", pa.list_(pa.string())),
        ]
    )  # fmt: skip
    rows = {r["custom_id"]: r for r in table.to_pylist()}
    assert (
        rows["e0"]["embeddings_float"] == vectors["float"]
    )  # exact in float32: these are powers of two
    assert (
        rows["e0"]["embeddings_int8"] == vectors["int8"]
        and rows["e0"]["embeddings_ubinary"] == vectors["ubinary"]
    )
    assert rows["e0"]["embeddings_base64"] == vectors["base64"] and rows["e0"]["input_tokens"] == 4
    assert rows["e1"]["embeddings_float"] is None and rows["e1"]["status"] == "failed"
    assert (
        rows["e2"]["embeddings_float"] == [[0.5, 0.5, 0.5]]
        and rows["e2"]["embeddings_int8"] is None
    )


def test_csv_holds_the_same_columns_and_values_as_text(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve(
        server, [embed("e0", {"float": [[0.25, -0.5]], "int8": [[1, -2]]}), failure("e1")]
    )
    download_results(
        parts, tmp_path / "e.parquet", fmt="parquet", http=http, table=TableOptions(body=True)
    )
    download_results(parts, tmp_path / "e.csv", fmt="csv", http=http, table=TableOptions(body=True))
    typed = pq.read_table(tmp_path / "e.parquet").to_pylist()
    text = read_csv(tmp_path / "e.csv")
    assert [list(r) for r in text] == [pq.read_schema(tmp_path / "e.parquet").names] * 2
    assert text == [{name: cell(value) for name, value in row.items()} for row in typed]
    assert text[0]["embeddings_float"] == "[[0.25,-0.5]]" and text[1]["embeddings_float"] == ""
    assert json.loads(text[0]["body"])["embeddings"]["int8"] == [[1, -2]]


def test_join_failed_only_and_chosen_columns_together(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps(
                {"custom_id": f"c{i}", "body": {"messages": [{"role": "user", "content": f"q{i}"}]}}
            )
            + "\n"
            for i in range(3)
        )
    )
    parts = serve(server, [chat("c0", "hi"), failure("c1"), failure("c2")])
    options = TableOptions(
        columns=parse_columns(["asked=request.messages[0].content", "text=error"])
    )
    out = tmp_path / "failed.parquet"
    summary = download_results(
        parts, out, fmt="parquet", http=http, join=requests, failed_only=True, table=options
    )
    assert (summary.written, summary.records_total) == (2, 3)
    table = pq.read_table(out)
    assert table.schema.names == [
        *CHAT_SCHEMA.names,
        "request",
        "asked",
    ]  # a chosen "text" takes the default's place
    assert (
        table.column("asked").to_pylist() == ["q1", "q2"]
        and table.schema.field("asked").type == pa.string()
    )
    assert table.column("text").to_pylist() == ["failed c1", "failed c2"]
    assert json.loads(table.column("request")[0].as_py()) == {
        "messages": [{"role": "user", "content": "q1"}]
    }


def test_an_empty_output_is_a_valid_file_with_the_columns(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve(server, [])
    download_results(
        parts, tmp_path / "none.parquet", fmt="parquet", http=http, table=TableOptions(kind="embed")
    )
    table = pq.read_table(tmp_path / "none.parquet")
    assert table.num_rows == 0
    assert table.schema.names == [
        "custom_id",
        "status",
        "error",
        "input_tokens",
        "embeddings_float",
    ]


# --------------------------------------------------------------------------- streaming and types


def test_records_are_written_in_row_groups_as_they_stream(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    dimension = 2048
    per_group = ROW_GROUP_BYTES // (dimension * 4)
    vector = [round((i % 97) / 97 - 0.5, 4) for i in range(dimension)]
    body = json.dumps(
        {
            "id": "x",
            "embeddings": {"float": [vector]},
            "meta": {"billed_units": {"input_tokens": 1}},
        }
    )
    count = per_group * 2 + 100
    records = [{"custom_id": f"e{i}", "body": body, "error": ""} for i in range(count)]
    parts = serve(server, records[: count // 2], records[count // 2 :])
    out = tmp_path / "big.parquet"
    download_results(parts, out, fmt="parquet", http=http)
    meta = pq.ParquetFile(out).metadata
    assert meta.num_rows == count
    assert meta.num_row_groups >= 3, "every row group was held until the end"
    first = pq.ParquetFile(out).read_row_group(0)
    assert first.column("custom_id")[0].as_py() == "e0"
    assert first.column("embeddings_float")[0].as_py() == [pytest.approx(vector, abs=1e-6)]


def test_a_chosen_column_whose_type_widens_later_is_rewritten_to_one_type(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    # Two thousand records make the first chunk; what comes after it widens every column.
    first = [
        {
            "custom_id": f"a{i}",
            "body": json.dumps({"n": i, "m": i, "v": [i], "z": None}),
            "error": "",
        }
        for i in range(2000)
    ]
    later = [
        {
            "custom_id": "b0",
            "body": json.dumps({"n": 2.5, "m": "two", "v": [0.5], "z": "now"}),
            "error": "",
        },
        {"custom_id": "b1", "body": json.dumps({"n": 3, "m": 3, "v": [], "z": None}), "error": ""},
    ]
    parts = serve(server, first, later)
    columns = parse_columns(["n=body.n", "m=body.m", "v=body.v", "z=body.z", "k=custom_id"])
    out = tmp_path / "wide.parquet"
    download_results(parts, out, fmt="parquet", http=http, table=TableOptions(columns=columns))
    table = pq.read_table(out)
    types = {name: table.schema.field(name).type for name in ("n", "m", "v", "z", "k")}
    assert types == {
        "n": pa.float64(),
        "m": pa.string(),
        "v": pa.list_(pa.float64()),
        "z": pa.string(),
        "k": pa.string(),
    }
    got = {r["custom_id"]: r for r in table.to_pylist()}
    assert (got["a7"]["n"], got["a7"]["m"], got["a7"]["v"], got["a7"]["z"]) == (
        7.0,
        "7",
        [7.0],
        None,
    )
    assert (got["b0"]["n"], got["b0"]["m"], got["b0"]["v"], got["b0"]["z"]) == (
        2.5,
        '"two"',
        [0.5],
        "now",
    )
    assert (got["b1"]["m"], got["b1"]["v"]) == ("3", [])
    assert len(got) == 2002 and got["a1999"]["k"] == "a1999"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.parquet"]


def test_a_value_that_does_not_fit_its_column_is_null_and_said(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve(
        server,
        [
            embed("e0", {"int8": [[1, 2]]}),
            embed("e1", {"int8": [[300, 2]]}),
            embed("e2", {"int8": [[3, 4]]}),
        ],
    )
    out = tmp_path / "e.parquet"
    summary = download_results(parts, out, fmt="parquet", http=http)
    assert pq.read_table(out).column("embeddings_int8").to_pylist() == [[[1, 2]], None, [[3, 4]]]
    assert summary.warnings == (
        "1 value of column embeddings_int8 did not fit its type and was written as null",
    )


def test_embedding_types_beyond_the_first_records_are_said(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    first = [embed(f"e{i}", {"float": [[0.5]]}) for i in range(2000)]
    parts = serve(server, first, [embed("late", {"float": [[0.5]], "uint8": [[9]]})])
    summary = download_results(parts, tmp_path / "e.parquet", fmt="parquet", http=http)
    assert summary.warnings == (
        "1 record holds embedding types beyond the columns (float, from the first records): "
        "add --body to keep the whole response",
    )


def test_an_expression_that_fails_on_a_record_gives_null_there(
    server: PartServer, http: httpx.Client, tmp_path: Path
) -> None:
    parts = serve(server, [embed("e0", {"float": [[0.5]]}), failure("e1")])
    options = TableOptions(columns=parse_columns(["n=length(body.texts)"]))
    summary = download_results(parts, tmp_path / "e.csv", fmt="csv", http=http, table=options)
    assert [r["n"] for r in read_csv(tmp_path / "e.csv")] == ["2", ""]
    (warning,) = summary.warnings
    assert warning.startswith(
        "--column n failed on 1 record (written as null): In function length()"
    )


def test_pyarrow_is_imported_only_when_parquet_is_asked_for(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cohere_batch_cli.tasks.results_spec import ResultsSpec, check\n"
        "from cohere_batch_cli.results import download_results\n"
        "check(ResultsSpec(output='r.csv', columns=('m=body.id',), body=True))\n"
        "print('pyarrow' in sys.modules, end=' ')\n"
        "check(ResultsSpec(output='r.parquet'))\n"
        "print('pyarrow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.split() == ["False", "True"]
