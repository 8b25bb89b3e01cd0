"""``cbatch results RUN -o OUT`` of a ``create --from TABLE`` run: the table again, answers as columns (issue 25, "A table out").

Each test makes a table run against the real sandbox through the Python API (in-process),
writes its results, and reads the file back with pyarrow (and DuckDB): every row of the
input is there, in its order, with its own columns untouched and the answer columns typed.
The options the API has no value for (``--join``, ``--answer-prefix``, ``--records``,
``--input-order``, ``-o -``) and what ``cbatch`` says are tested through ``cbatch``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cohere_batch_cli as cb
from tests.conftest import Cli
from tests.support.quiet import nothing_printed

MODEL = "command-r-08-2024"
ADDED = ["answer", "status", "error", "finish_reason", "input_tokens", "output_tokens", "cached"]


def run_table(
    client: cb.Client, table: Path, prompt: str = "Say {{ text }}", **options: Any
) -> cb.Run:
    """``create --from TABLE --watch`` to the end, through the API: the run, ended."""
    with nothing_printed():
        run = client.create(cb.PromptTable(table, prompt, **options), model=MODEL)
        return run.wait(timeout=60, interval=0.1)


def results(run: cb.Run | cb.Job, path: Path) -> cb.ResultsSummary:
    """``results RUN -o PATH`` through the API."""
    with nothing_printed():
        return run.results(path)


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_back(path: Path) -> pa.Table:
    """The file written, as an Arrow table, whatever its format."""
    if path.suffix == ".parquet":
        return pq.read_table(path)
    if path.suffix == ".csv":
        import pyarrow.csv as pcsv

        convert = pcsv.ConvertOptions(strings_can_be_null=True, column_types={})
        return pcsv.read_csv(path, convert_options=convert)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pa.Table.from_pylist(lines)


ROWS = 30


def rows_in_order(count: int = ROWS) -> list[dict[str, Any]]:
    return [
        {"code": f"{i:03d}", "text": f"line {i}", "stars": str(i % 5 + 1)} for i in range(count)
    ]


@pytest.mark.parametrize("out", ["out.parquet", "out.csv", "out.jsonl"])
def test_a_csv_table_comes_back_in_its_row_order_with_answer_columns(
    client: cb.Client, tmp_path: Path, out: str, logged: Any
) -> None:
    table = write_csv(tmp_path / "reviews.csv", rows_in_order())
    summary = results(run_table(client, table, id_column="code"), tmp_path / out)
    assert summary.rows is not None
    assert (summary.rows.written, summary.rows.answered, summary.rows.failed) == (ROWS, ROWS, 0)
    said = f"wrote {ROWS} rows of reviews.csv to {tmp_path / out} ({ROWS} answered, 0 failed"
    assert said in logged()
    got = read_back(tmp_path / out)
    assert got.column_names == ["code", "text", "stars", *ADDED]
    if out.endswith(".parquet"):
        assert got.schema.field("code").type == pa.string()  # "001" stays "001"
        assert got.schema.field("input_tokens").type == pa.int64()
        assert got.column("code").to_pylist()[:3] == ["000", "001", "002"]
    data = got.to_pylist()
    assert [str(r["text"]) for r in data] == [f"line {i}" for i in range(ROWS)]  # input order
    assert {r["status"] for r in data} == {"succeeded"}
    assert all(r["answer"] for r in data)
    assert all(r["error"] in (None, "") for r in data)
    assert all(int(r["output_tokens"]) > 0 for r in data)


def test_a_parquet_table_keeps_its_own_types_and_row_order(
    client: cb.Client, tmp_path: Path
) -> None:
    count = 1500  # more than one record batch of the reader and of the scratch table's blocks
    source = pa.table(
        {
            "n": pa.array(range(count), pa.int32()),
            "text": [f"doc {i}" if i % 11 else None for i in range(count)],
            "tags": [[f"t{i % 3}", "x"] for i in range(count)],
        }
    )
    pq.write_table(source, tmp_path / "docs.parquet", row_group_size=400)
    batch = run_table(client, tmp_path / "docs.parquet", '{{ n }}: {{ text | default("none") }}')
    results(batch, tmp_path / "scored.parquet")
    got = pq.read_table(tmp_path / "scored.parquet")
    assert got.schema.field("n").type == pa.int32()
    assert got.schema.field("tags").type == pa.list_(pa.string())
    assert got.select(["n", "text", "tags"]).equals(source)  # untouched, in order
    assert got.column("status").to_pylist() == ["succeeded"] * count
    assert got.column("answer").null_count == 0

    import duckdb

    rows = duckdb.sql(
        f"SELECT count(*), min(n), max(n), count(answer) FROM '{tmp_path / 'scored.parquet'}'"
    ).fetchall()
    assert rows == [(count, 0, count - 1, count)]


def test_a_jsonl_table_comes_back_as_jsonl_and_as_csv(client: cb.Client, tmp_path: Path) -> None:
    rows = [{"ticket": f"T-{i}", "text": f"issue {i}", "priority": i % 3} for i in range(12)]
    table = tmp_path / "tickets.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    batch = run_table(client, table, id_column="ticket")
    results(batch, tmp_path / "out.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [{k: line[k] for k in ("ticket", "text", "priority")} for line in lines] == rows
    assert list(lines[0]) == ["ticket", "text", "priority", *ADDED]
    results(batch, tmp_path / "out.parquet")
    got = pq.read_table(tmp_path / "out.parquet")
    assert got.schema.field("priority").type == pa.int64()
    assert got.column("priority").to_pylist() == [r["priority"] for r in rows]


def test_a_table_that_changed_is_refused_naming_what_changed(
    client: cb.Client, cli: Cli, tmp_path: Path
) -> None:
    table = write_csv(tmp_path / "reviews.csv", rows_in_order(5))
    run = run_table(client, table)
    batch = run.id
    table.write_bytes(table.read_bytes().replace(b"line 3", b"line 9"))  # the same size
    with nothing_printed(), pytest.raises(cb.CbatchError) as refused:
        run.results(tmp_path / "out.csv")
    assert refused.value.exit_code == 5
    assert f"{table} changed since batch {batch} was made from it (its content changed" in str(
        refused.value
    )
    assert "nothing was written" in str(refused.value)
    assert not (tmp_path / "out.csv").exists()
    with open(table, "a", encoding="utf-8") as fh:
        fh.write("100,line 100,1\n")
    with (
        nothing_printed(),
        pytest.raises(cb.CbatchError, match=r"\(it was 87 bytes and is 102 now\)"),
    ):
        run.results(tmp_path / "out.csv")
    # --join names the table to write, as it is (the API has no join: through cbatch)
    copy = write_csv(tmp_path / "copy.csv", rows_in_order(5))
    cli("results", batch, "-o", str(tmp_path / "out.csv"), "--join", str(copy))
    got = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert [r["text"] for r in got] == [f"line {i}" for i in range(5)]
    assert {r["status"] for r in got} == {"succeeded"}


def test_added_columns_that_collide_with_the_tables_are_refused_unless_prefixed(
    client: cb.Client, cli: Cli, tmp_path: Path
) -> None:
    """The refusal and --answer-prefix through cbatch (the Python API's ``answer_prefix``:
    tests/test_python_api_tables.py)."""
    rows = [{"text": f"t{i}", "status": "open", "answer": "?"} for i in range(4)]
    table = write_csv(tmp_path / "t.csv", rows)
    batch = run_table(client, table).id
    result = cli("results", batch, "-o", str(tmp_path / "out.parquet"), exit_code=2)
    assert "has columns answer, status already" in result.stderr
    assert "--answer-prefix" in result.stderr
    assert not (tmp_path / "out.parquet").exists()
    cli("results", batch, "-o", str(tmp_path / "out.parquet"), "--answer-prefix", "llm_")
    got = pq.read_table(tmp_path / "out.parquet")
    assert got.column_names == ["text", "status", "answer", *(f"llm_{c}" for c in ADDED)]
    assert got.column("status").to_pylist() == ["open"] * 4
    assert got.column("llm_status").to_pylist() == ["succeeded"] * 4


def test_records_writes_the_records_and_a_batch_not_from_a_table_takes_no_prefix(
    client: cb.Client, cli: Cli, tmp_path: Path
) -> None:
    """--records has no API value, and --answer-prefix is refused in the command line's words: through cbatch."""
    table = write_csv(tmp_path / "t.csv", rows_in_order(3))
    batch = run_table(client, table).id
    cli("results", batch, "-o", str(tmp_path / "records.jsonl"), "--records")
    lines = [json.loads(x) for x in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert sorted(r["custom_id"] for r in lines) == ["1", "2", "3"]
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps(
                {"custom_id": f"r{i}", "body": {"messages": [{"role": "user", "content": "hi"}]}}
            )
            + "\n"
            for i in range(2)
        )
    )
    with nothing_printed():
        plain = client.create(requests, model=MODEL).wait(timeout=60, interval=0.1).id
    result = cli("results", plain, "--answer-prefix", "x_", exit_code=2)
    assert "was not made from a table" in result.stderr


def test_rows_sent_once_and_rows_the_cache_answered_get_their_answers(
    client: cb.Client, tmp_path: Path, logged: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Duplicate rows take their first row's answer; a second run is answered by the cache results filled."""
    texts = ["alpha", "beta", "alpha", "gamma", "beta", "alpha"]
    table = write_csv(tmp_path / "t.csv", [{"text": t} for t in texts])
    first = run_table(client, table)
    results(first, tmp_path / "first.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "first.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == texts
    assert {r["status"] for r in rows} == {"succeeded"}
    by_text: dict[str, str] = {}
    for r in rows:  # rows that asked the same thing have the one answer
        assert by_text.setdefault(r["text"], r["answer"]) == r["answer"]
    assert len(set(by_text.values())) == 3
    caplog.clear()
    results(first, tmp_path / "again.csv")
    assert (
        "(6 answered, 0 failed, 0 missing); 3 reused an answer rather than being sent" in logged()
    )
    # results kept the three answers in the cache: the same table again sends one request
    caplog.clear()
    with nothing_printed():
        second = client.create(cb.PromptTable(table, "Say {{ text }}"), model=MODEL, name="again")
        second.wait(timeout=60, interval=0.1)
    assert "2 answered by the cache: 1 request to send" in logged()
    results(second, tmp_path / "second.jsonl")
    again = [json.loads(x) for x in (tmp_path / "second.jsonl").read_text().splitlines()]
    assert [(r["text"], r["answer"], r["status"]) for r in again] == [
        (r["text"], r["answer"], r["status"]) for r in rows
    ]


def test_a_folder_table_comes_back_whole_and_a_new_file_in_it_is_named(
    client: cb.Client, tmp_path: Path
) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    write_csv(folder / "part-00000.csv", [{"text": f"a{i}"} for i in range(3)])
    write_csv(folder / "part-00001.csv", [{"text": f"b{i}"} for i in range(2)])
    (folder / "_SUCCESS").write_text("")
    batch = run_table(client, folder)
    results(batch, tmp_path / "out.csv")
    got = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert [r["text"] for r in got] == ["a0", "a1", "a2", "b0", "b1"]  # files in path order
    write_csv(folder / "part-00002.csv", [{"text": "c0"}])
    (folder / "part-00000.csv").unlink()
    with nothing_printed(), pytest.raises(cb.CbatchError) as refused:
        batch.results(tmp_path / "out.csv")
    assert refused.value.exit_code == 5
    assert "(part-00000.csv is gone; part-00002.csv is new)" in str(refused.value)


def test_failed_only_keeps_the_rows_without_a_usable_answer_and_stdout_takes_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.conftest import TEST_KEY

    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0, queue_delay=0.0,
        validation_delay=0.0, permanent_fail_rate=0.3, seed=11,
    )  # fmt: skip
    table = write_csv(tmp_path / "t.csv", rows_in_order(20))
    monkeypatch.chdir(tmp_path)
    with SandboxServer(settings) as server, cb.Client(TEST_KEY, base_url=server.base_url) as client:
        cli = Cli(server.base_url, TEST_KEY)  # -o -: stdout takes the table
        batch = run_table(client, table, id_column="code").id
        every = cli("results", batch, "-o", "-").stdout
        failed_run = cli("results", batch, "-o", "-", "--failed-only")
        failed = failed_run.stdout
    rows = [json.loads(x) for x in every.splitlines()]
    assert [r["code"] for r in rows] == [f"{i:03d}" for i in range(20)]
    bad = [json.loads(x) for x in failed.splitlines()]
    assert bad and bad == [r for r in rows if r["status"] != "succeeded"]
    assert all(r["error"] and r["answer"] is None for r in bad)
    said = f"wrote {len(bad)} of the 20 rows of t.csv to stdout (13 answered, {len(bad)} failed"
    assert said.replace("13", str(20 - len(bad))) in failed_run.stderr


def test_a_table_job_writes_its_table_across_its_parts_and_retries(
    client: cb.Client, cli: Cli, tmp_path: Path, logged: Any
) -> None:
    """jobs create --from: the parts' answers land on their rows, one table, in the table's order.
    (``results JOB`` and ``--input-order`` are the command line's: through cbatch.)"""
    texts = [f"row {i}" for i in range(7)] + ["row 1"]  # the last asks what row 2 asked
    table = write_csv(tmp_path / "r.csv", [{"text": t} for t in texts])
    with nothing_printed():
        job = client.create_job(
            cb.PromptTable(table, "Say {{ text }}"), model=MODEL, split=cb.Split(max_records=3)
        ).wait(timeout=60, interval=0.1)
    job_id = job.id
    summary = results(job, tmp_path / "all.parquet")
    assert summary.rows is not None
    assert (summary.rows.written, summary.rows.answered, summary.rows.failed) == (8, 8, 0)
    assert "wrote 8 rows of r.csv" in logged() and "(8 answered, 0 failed, 0 missing)" in logged()
    got = pq.read_table(tmp_path / "all.parquet").to_pylist()
    assert [r["text"] for r in got] == texts
    assert got[-1]["answer"] == got[1]["answer"] == "Sandbox reply to: Say row 1"
    cli("results", job_id, "-o", str(tmp_path / "same.parquet"))  # results JOB: the same table
    assert pq.read_table(tmp_path / "same.parquet").to_pylist() == got
    refused = cli("jobs", "results", job_id, "--input-order", "-o", "x.csv", exit_code=2)
    assert "--input-order shapes a table of records" in refused.stderr


def test_the_table_out_never_replaces_the_table_it_was_made_from(
    client: cb.Client, cli: Cli, tmp_path: Path
) -> None:
    """``results RUN -o reviews.csv`` of a run made from ``reviews.csv`` would put the answers in
    place of the user's own table (and every later ``results`` would find it changed): refused,
    the table intact, on both doors, for a batch and for a job."""
    table = write_csv(tmp_path / "reviews.csv", rows_in_order(3))
    before = table.read_bytes()
    run = run_table(client, table)
    with nothing_printed():
        job = client.create_job(
            cb.PromptTable(table, "Job {{ text }}"), model=MODEL, split=cb.Split(max_records=2)
        )
        job.wait(timeout=60, interval=0.1)
        for made in (run, job):
            with pytest.raises(cb.UsageError) as refused:
                made.results(table)
            assert refused.value.exit_code == 2
            assert str(refused.value) == (
                f"-o {table} is the table the answers are written beside: it would be replaced"
            )
    said = cli("results", run.id, "-o", str(table), exit_code=2)
    assert said.stderr.splitlines()[-1].endswith(
        "it would be replaced; write the table out to another file"
    )
    assert table.read_bytes() == before
    assert results(run, tmp_path / "out.csv").written == 3  # anywhere else, as before


def test_a_parquet_tables_dates_and_decimals_are_plain_text_in_a_csv_out(
    client: cb.Client, tmp_path: Path
) -> None:
    """A timestamp, a date and a decimal of a Parquet table were written to the CSV as JSON strings,
    their quotes kept in the cell (``"2026-01-01"``): each is now its text, as a CSV reader wants."""
    import datetime
    import decimal

    table = tmp_path / "types.parquet"
    pq.write_table(
        pa.table({
            "text": ["a"],
            "when": pa.array([datetime.datetime(2026, 1, 1, 12)], pa.timestamp("us")),
            "day": pa.array([datetime.date(2026, 1, 2)], pa.date32()),
            "price": pa.array([decimal.Decimal("1.50")], pa.decimal128(5, 2)),
        }),
        table,
    )  # fmt: skip
    results(run_table(client, table), tmp_path / "out.csv")
    (row,) = csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text()))
    assert (row["when"], row["day"], row["price"]) == ("2026-01-01 12:00:00", "2026-01-02", "1.50")
