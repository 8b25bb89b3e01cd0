"""Each table format, end to end on the sandbox, read back as a user's next step would (issue 25, "Done when").

For every table format cbatch reads (CSV, Parquet, JSONL) and every kind of table run
(chat without a schema, chat with one, embed), one ``create --from ... --watch`` on the
real sandbox, then ``results -o`` to each format cbatch writes. Every file is read back
with pyarrow, pandas and DuckDB: every row is there, in the table's order (rows that ask
what an earlier row asked included), with the types a reader of that format gets.
tests/test_table_out.py and tests/test_table_out_typed.py cover the table writer's own
rules (collisions, changed tables, invalid answers); this covers the matrix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq
import pytest

from tests.conftest import Cli

ROWS = 12
IDS = [f"r{i:02d}" for i in range(1, ROWS + 1)]
# The last two rows ask what the first two ask: sent once, answered on every row.
TEXTS = [f"review number {i}" for i in range(1, ROWS - 1)] + ["review number 1", "review number 2"]
SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "score": {"type": "number"},
        "stars": {"type": "integer"},
        "topics": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["sentiment", "score", "stars", "topics"],
}
KINDS = {
    "chat": ["--prompt", "Say {{ text }}", "--model", "command-r-08-2024"],
    "schema": ["--prompt", "Rate {{ text }}", "--model", "command-r-08-2024", "--schema"],
    "embed": ["--embed", "text", "--embed-types", "float,int8", "--model", "embed-english-v3.0"],
}
# The answer columns each kind adds, and their Arrow type in Parquet.
ADDED: dict[str, dict[str, pa.DataType]] = {
    "chat": {"answer": pa.string(), "output_tokens": pa.int64()},
    "schema": {
        "answer": pa.string(),
        "sentiment": pa.string(),
        "score": pa.float64(),
        "stars": pa.int64(),
        "topics": pa.list_(pa.string()),
        "invalid_output": pa.string(),
    },
    "embed": {"embeddings_float": pa.float32(), "embeddings_int8": pa.int8()},  # of each value
}


def vectors(kind_of: pa.DataType) -> pa.DataType:
    """An embedding column: the row's vectors (one a text: a table row embeds one), as results writes them."""
    return pa.list_(pa.field("element", pa.list_(pa.field("element", kind_of))))


COMMON = {"status": pa.string(), "input_tokens": pa.int64(), "cached": pa.bool_()}


def write_table(folder: Path, fmt: str) -> Path:
    """The same rows as CSV, Parquet (``n`` an int32) or JSONL (``n`` a JSON number)."""
    rows = [{"id": i, "text": t, "n": k} for k, (i, t) in enumerate(zip(IDS, TEXTS, strict=True))]
    path = folder / f"reviews.{fmt}"
    if fmt == "csv":
        path.write_text(
            "id,text,n\n" + "".join(f"{r['id']},{r['text']},{r['n']}\n" for r in rows),
            encoding="utf-8",
        )
    elif fmt == "parquet":
        table = pa.Table.from_pylist(rows).cast(
            pa.schema([("id", pa.string()), ("text", pa.string()), ("n", pa.int32())])
        )
        pq.write_table(table, path, row_group_size=5)  # several row groups, read in order
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_all_three(path: Path) -> tuple[pa.Table, pd.DataFrame, list[dict[str, Any]]]:
    """The file as pyarrow, pandas and DuckDB read it, each with its own reader for the format."""
    where = str(path)
    if path.suffix == ".parquet":
        arrow = pq.read_table(path)
        frame = pd.read_parquet(path)
        query = f"SELECT * FROM read_parquet('{where}')"
    elif path.suffix == ".csv":
        arrow = pcsv.read_csv(path)
        frame = pd.read_csv(path, dtype={"id": str, "n": str})
        query = f"SELECT * FROM read_csv('{where}', header = true)"
    else:
        arrow = pjson.read_json(path)
        frame = pd.read_json(path, lines=True, dtype={"id": str})
        query = f"SELECT * FROM read_json('{where}', format = 'newline_delimited')"
    relation = duckdb.sql(query)
    rows = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
    return arrow, frame, rows


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_table_of_each_format_comes_back_whole_in_order_and_typed_in_every_format(
    cli: Cli, tmp_path: Path, fmt: str, kind: str
) -> None:
    table = write_table(tmp_path, fmt)
    args = list(KINDS[kind])
    if kind == "schema":
        (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
        args.append(str(tmp_path / "schema.json"))
    made = cli(
        "create", "--from", str(table), "--id-column", "id", *args, "--watch", "--plain",
        "--timeout", "60s", "-q",
    )  # fmt: skip
    assert f"{ROWS} rows, {ROWS - 2} distinct requests" in made.stderr
    batch = made.stdout.split()[0]
    for out_fmt in ("parquet", "csv", "jsonl"):
        out = tmp_path / f"scored.{out_fmt}"
        said = cli("results", batch, "-o", str(out)).stderr
        assert f"wrote {ROWS} rows of {table.name} to {out} ({ROWS} answered, 0 failed" in said
        arrow, frame, rows = read_all_three(out)
        # Every row, in the table's order, by all three readers.
        assert arrow.column("id").to_pylist() == IDS, (out_fmt, "pyarrow")
        assert frame["id"].tolist() == IDS, (out_fmt, "pandas")
        assert [r["id"] for r in rows] == IDS, (out_fmt, "duckdb")
        assert [r["status"] for r in rows] == ["succeeded"] * ROWS
        assert frame["cached"].tolist()[-2:] == [True, True]  # the repeats: the first rows' answers
        assert not any(frame["cached"].tolist()[:-2])
        assert list(arrow.column_names[:3]) == ["id", "text", "n"]  # the table's columns first
        for name in [*ADDED[kind], *COMMON]:
            assert name in arrow.column_names, (out_fmt, name)
        check_types(kind, fmt, out_fmt, arrow, frame, rows)


def check_types(
    kind: str, fmt: str, out_fmt: str, arrow: pa.Table, frame: pd.DataFrame, rows: list[Any]
) -> None:
    """The column types each reader gets: Parquet's own, JSON's, CSV's text as the reader infers it."""
    if out_fmt == "parquet":
        wanted = {**ADDED[kind], **COMMON}
        if kind == "embed":
            wanted.update({name: vectors(t) for name, t in ADDED[kind].items()})
        for name, kind_of in wanted.items():
            assert arrow.schema.field(name).type == kind_of, name
        # The table's own columns as read: CSV strings, Parquet its int32, JSON numbers int64.
        n_type = {"csv": pa.string(), "parquet": pa.int32(), "jsonl": pa.int64()}[fmt]
        assert arrow.schema.field("n").type == n_type
        assert str(frame["input_tokens"].dtype) == "int64"
        assert frame["cached"].dtype == bool
    if out_fmt in ("parquet", "jsonl"):
        # Nested values stay nested: a list a row, not JSON text.
        if kind == "schema":
            for row in rows:
                assert row["sentiment"] in SCHEMA["properties"]["sentiment"]["enum"]  # type: ignore[index]
                assert isinstance(row["stars"], int) and isinstance(row["score"], float)
                assert isinstance(row["topics"], list) and row["invalid_output"] is None
        if kind == "embed":
            assert all(len(r["embeddings_float"]) == 1 for r in rows)  # one text a row
            assert all(len(r["embeddings_float"][0]) == 1024 for r in rows)  # embed-english-v3.0
            assert all(-128 <= v <= 127 for r in rows for v in r["embeddings_int8"][0])
        assert all(isinstance(r["input_tokens"], int) for r in rows)
        assert all(isinstance(r["cached"], bool) for r in rows)
    if out_fmt == "csv":
        # CSV is text: numbers and booleans parse back, lists are JSON text.
        assert pa.types.is_integer(arrow.schema.field("input_tokens").type)
        assert pa.types.is_boolean(arrow.schema.field("cached").type)
        if kind == "schema":
            assert all(isinstance(json.loads(t), list) for t in frame["topics"])
            assert pa.types.is_integer(arrow.schema.field("stars").type)
        if kind == "embed":
            assert all(len(json.loads(v)[0]) == 1024 for v in frame["embeddings_float"])
    if kind != "embed":
        assert frame["answer"].notna().all()
