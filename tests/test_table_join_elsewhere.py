"""``results RUN -o OUT --join TABLE`` on another machine: no record of the run, its table given.

A run is made through the Python API on "this machine" (the test's state folder);
``results`` then runs through ``cbatch`` with ``CBATCH_STATE_DIR`` pointed at an empty
folder, as on a CI runner. Every row must get its answer, in order, with the run's typed
columns, exactly as on the machine that made it; what cannot be right there (rows sent
once for several, a table that is not the run's) is refused in one line, nothing written.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from tests.conftest import Cli
from tests.support.quiet import nothing_printed
from tests.support.schemas import REVIEW

MODEL = "command-r-08-2024"
REVIEWS = "id,review text,n\n001,great,1\n002,bad,2\n003,fine,1\n004,meh,3\n"


@pytest.fixture
def elsewhere(tmp_path: Path) -> dict[str, str]:
    """The environment of another machine: an empty state folder."""
    folder = tmp_path / "other-machine"
    folder.mkdir()
    return {"CBATCH_STATE_DIR": str(folder)}


def made(client: cb.Client, table: Path, **options: Any) -> str:
    """``create --from TABLE --prompt ... --watch`` on this machine: the batch id, ended."""
    with nothing_printed():
        run = client.create(cb.PromptTable(table, "Rate {{ row['review text'] }}", **options), model=MODEL)  # fmt: skip
        return run.wait(timeout=60, interval=0.1).id


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "options",
    [{"id_column": "id"}, {"schema": REVIEW}, {"id_column": "n", "dedupe": False}],
    ids=["id-column", "schema-row-numbers", "no-dedupe-repeated-ids-refused"],
)
def test_another_machine_writes_the_table_the_machine_that_made_the_run_writes(
    client: cb.Client, cli: Cli, tmp_path: Path, elsewhere: dict[str, str], options: dict[str, Any]
) -> None:
    table = tmp_path / "r.csv"
    table.write_text(REVIEWS, encoding="utf-8")
    if options.get("id_column") == "n":  # ids 1, 2, 1, 3 repeat: the check refuses the run
        with nothing_printed(), pytest.raises(cb.InputRejected):
            made(client, table, **options)
        return
    batch = made(client, table, **options)
    here = cli("results", batch, "-o", str(tmp_path / "here.csv"))
    there = cli("results", batch, "-o", str(tmp_path / "there.csv"), "--join", str(table), env=elsewhere)  # fmt: skip
    # the same rows and values; a schema's columns come in the order the requests hold it (by name)
    assert rows_of(tmp_path / "there.csv") == rows_of(tmp_path / "here.csv")
    assert (
        "wrote 4 rows of r.csv" in here.stderr
        and "(4 answered, 0 failed, 0 missing)" in there.stderr
    )
    if "schema" in options:
        header = (tmp_path / "there.csv").read_text().splitlines()[0]
        assert ",answer,score,sentiment,topics,invalid_output,status," in header
        there_pq = cli("results", batch, "-o", str(tmp_path / "there.parquet"), "--join", str(table), env=elsewhere)  # fmt: skip
        assert there_pq.exit_code == 0
        import pyarrow.parquet as pq

        out = pq.read_table(tmp_path / "there.parquet")
        assert "invalid_output" in out.column_names and out.column("status").to_pylist() == ["succeeded"] * 4  # fmt: skip


def test_a_run_whose_repeated_rows_were_sent_once_needs_its_record_and_says_so(
    client: cb.Client, cli: Cli, tmp_path: Path, elsewhere: dict[str, str]
) -> None:
    table = tmp_path / "r.csv"
    table.write_text("id,review text\n001,great\n002,bad\n003,great\n004,meh\n", encoding="utf-8")
    batch = made(client, table, id_column="id")
    refused = cli("results", batch, "-o", str(tmp_path / "j.csv"), "--join", str(table), env=elsewhere, exit_code=5)  # fmt: skip
    said = refused.stderr.strip().splitlines()[-1]
    assert said.startswith("error: ") and "Traceback" not in refused.stderr
    assert "r.csv has 4 rows and batch" in said and "sent 3 requests" in said
    assert "recorded only on the machine that made the run" in said
    assert not (tmp_path / "j.csv").exists()
    cli(
        "results", batch, "-o", str(tmp_path / "j.csv"), "--join", str(table)
    )  # here: it has the record
    rows = (tmp_path / "j.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["001", "002", "003", "004"]
    assert all(",succeeded," in r for r in rows)


def test_rows_sent_each_as_their_own_with_no_dedupe_are_matched_on_another_machine(
    client: cb.Client, cli: Cli, tmp_path: Path, elsewhere: dict[str, str]
) -> None:
    table = tmp_path / "r.csv"
    table.write_text("id,review text\n001,great\n002,bad\n003,great\n", encoding="utf-8")
    batch = made(client, table, id_column="id", dedupe=False)
    cli("results", batch, "-o", str(tmp_path / "j.jsonl"), "--join", str(table), env=elsewhere)
    rows = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in rows] == [(f"00{i}", "succeeded") for i in (1, 2, 3)]
    assert all(r["answer"] for r in rows)


def test_a_table_that_is_not_the_runs_is_refused_on_another_machine_and_nothing_is_written(
    client: cb.Client, cli: Cli, tmp_path: Path, elsewhere: dict[str, str]
) -> None:
    table = tmp_path / "r.csv"
    table.write_text(REVIEWS, encoding="utf-8")
    batch = made(client, table, id_column="id")
    other = tmp_path / "other.csv"
    other.write_text(REVIEWS.replace("00", "x"), encoding="utf-8")
    out = str(tmp_path / "j.csv")
    said = cli("results", batch, "-o", out, "--join", str(other), env=elsewhere, exit_code=5).stderr
    assert (
        "nor any of its columns name its rows as batch" in said and "(the first is '001')" in said
    )
    said = cli("results", batch, "-o", out, "--join", str(table), "--id-column", "n", env=elsewhere, exit_code=5).stderr  # fmt: skip
    assert "request 1 of batch" in said and "is '1' in its column 'n'" in said
    short = tmp_path / "short.csv"
    short.write_text(REVIEWS.rsplit("004", 1)[0], encoding="utf-8")
    said = cli("results", batch, "-o", out, "--join", str(short), env=elsewhere, exit_code=5).stderr
    assert (
        "short.csv has 3 rows and batch" in said and "not the table the run was made from" in said
    )
    assert not Path(out).exists()
    cli("results", batch, "-o", out, "--join", str(table), "--id-column", "id", env=elsewhere)
    assert Path(out).read_text() == cli("results", batch, "-o", "-", "-F", "csv").stdout


def test_id_column_where_it_means_nothing_is_a_usage_error(
    client: cb.Client, cli: Cli, tmp_path: Path, elsewhere: dict[str, str]
) -> None:
    table = tmp_path / "r.csv"
    table.write_text(REVIEWS, encoding="utf-8")
    batch = made(client, table, id_column="id")
    said = cli("results", batch, "-o", "x.csv", "--id-column", "id", env=elsewhere, exit_code=2)
    assert "give the table with --join TABLE" in said.stderr
    said = cli("results", batch, "-o", "x.csv", "--id-column", "n", exit_code=2)
    assert "were named by column 'id' (recorded when it was made), not by column 'n'" in said.stderr


def test_results_naming_no_row_of_the_joined_table_are_refused_not_written_as_missing(
    client: cb.Client, cli: Cli, tmp_path: Path
) -> None:
    """With the run's record, --join of another table whose rows its ids do not name."""
    table = tmp_path / "r.csv"
    table.write_text(REVIEWS, encoding="utf-8")
    batch = made(client, table, id_column="id")
    other = tmp_path / "other.csv"
    other.write_text(REVIEWS.replace("00", "x"), encoding="utf-8")
    said = cli("results", batch, "-o", str(tmp_path / "j.csv"), "--join", str(other), exit_code=5)
    assert "none of the 4 results names a row of" in said.stderr
    assert "its rows are named by column 'id'" in said.stderr
    assert not (tmp_path / "j.csv").exists()


def test_an_embed_run_is_written_on_another_machine_as_where_it_was_made(
    client: cb.Client, cli: Cli, tmp_path: Path, elsewhere: dict[str, str]
) -> None:
    import pyarrow.parquet as pq

    table = tmp_path / "r.csv"
    table.write_text(REVIEWS, encoding="utf-8")
    with nothing_printed():
        run = client.create(cb.EmbedTable(table, "review text", id_column="id", types=("float", "int8")), model="embed-english-v3.0")  # fmt: skip
        batch = run.wait(timeout=60, interval=0.1).id
    cli("results", batch, "-o", str(tmp_path / "here.parquet"))
    cli("results", batch, "-o", str(tmp_path / "there.parquet"), "--join", str(table), env=elsewhere)  # fmt: skip
    here, there = (
        pq.read_table(tmp_path / "here.parquet"),
        pq.read_table(tmp_path / "there.parquet"),
    )
    assert there.equals(here)
    assert there.column("status").to_pylist() == ["succeeded"] * 4


def test_a_retried_run_is_written_on_another_machine_from_any_of_its_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, elsewhere: dict[str, str]
) -> None:
    """Its first batch's requests say how the rows were named; the answers merge across rounds."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.conftest import TEST_KEY

    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0,
        output_ready_delay=0.0, transient_fail_rate=0.3, seed=5,
    )  # fmt: skip
    table = tmp_path / "r.csv"
    table.write_text("code,text\n" + "".join(f"c{i:02d},line {i}\n" for i in range(20)))
    monkeypatch.chdir(tmp_path)
    with SandboxServer(settings) as server, cb.Client(TEST_KEY, base_url=server.base_url) as client:
        with nothing_printed():
            run = client.create(cb.PromptTable(table, "Say {{ text }}", id_column="code"), model=MODEL)  # fmt: skip
            run.wait(timeout=60, interval=0.1).retry(rounds=5, pause=0.05, timeout=60, interval=0.1)
            run.results("here.csv")
            last = next(client.runs(limit=1)).id  # the last round's batch
        assert last != run.id
        cli = Cli(server.base_url, TEST_KEY)
        for batch in (run.id, last):
            cli("results", batch, "-o", "there.csv", "--join", str(table), env=elsewhere)
            assert rows_of(tmp_path / "there.csv") == rows_of(tmp_path / "here.csv")
    assert {r["status"] for r in rows_of(tmp_path / "there.csv")} == {"succeeded"}
