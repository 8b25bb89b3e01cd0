"""The run's map is searched by row, chunk by chunk, as ``results`` writes a table run's table.

Without an index by row each chunk scans a whole table of the map, and ``results`` takes time
quadratic in the table's size; the plans SQLite makes are the observable part.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import cohere_batch_cli as cb
from tests.test_table_reuse import map_files, run_to_end, table_out, write_csv


@pytest.fixture
def kept_map(client: cb.Client, tmp_path: Path) -> tuple[cb.Run, Path]:
    """A run of a table with duplicate rows, to the end: its run and its map."""
    rows = [(f"r{i}", f"text {i % 4}") for i in range(10)]
    run = run_to_end(client, write_csv(tmp_path / "t.csv", rows))
    (found,) = map_files()
    return run, found


def plans(map_file: Path) -> dict[str, list[str]]:
    from cohere_batch_cli.tasks.table_results import CHUNK_QUERIES

    with sqlite3.connect(map_file) as db:
        return {
            table: [r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", (0, 1)[: sql.count("?")])]
            for table, sql in CHUNK_QUERIES.items()
        }


def assert_searched_by_index(map_file: Path) -> None:
    for table, plan in plans(map_file).items():
        assert any(f"SEARCH {table} USING" in step and "INDEX" in step for step in plan), plan
        assert not any(step.startswith(f"SCAN {table}") for step in plan), plan


def test_each_chunks_look_ups_in_the_map_search_an_index_by_row(
    kept_map: tuple[cb.Run, Path],
) -> None:
    assert_searched_by_index(kept_map[1])


def test_a_map_kept_without_indexes_gets_them_when_results_reads_it(
    kept_map: tuple[cb.Run, Path], tmp_path: Path
) -> None:
    run, map_file = kept_map
    with sqlite3.connect(map_file) as db:
        for name in ("requests_by_row", "reused_by_row", "answers_by_row"):
            db.execute(f"DROP INDEX {name}")
    assert any(step.startswith("SCAN reused") for step in plans(map_file)["reused"])
    rows = table_out(run, tmp_path / "out.parquet")
    assert [r["status"] for r in rows] == ["succeeded"] * 10
    assert [r["cached"] for r in rows] == [False] * 4 + [True] * 6
    assert_searched_by_index(map_file)
