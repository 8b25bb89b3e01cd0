"""Records put on their table rows (``results`` of a table run): every row once, in order, past the spill's bounds.

The service answers in an order of its own; the table out reads its records
back row by row from a spill of row ranges (``results.order``). These tests
shrink the ranges and the records held in memory so that a few hundred
records cross every boundary a million would: several ranges, several pieces
a range, the file written and read back.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.results import order


@pytest.fixture
def small_spill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order, "BUCKET_ROWS", 7)
    monkeypatch.setattr(order, "SPILL_RECORDS", 10)


def record(row: int, answer: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "custom_id": str(row + 1),
        "body": f'{{"text": "{answer or row}"}}',
        "error": "",
        **extra,
    }


@pytest.mark.parametrize("spilled", [True, False])
def test_shuffled_records_come_back_in_row_order(
    spilled: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if spilled:
        monkeypatch.setattr(order, "BUCKET_ROWS", 7)
        monkeypatch.setattr(order, "SPILL_RECORDS", 10)
    records = [record(n) for n in range(300) if n % 11 != 5]  # some rows have no record
    random.Random(3).shuffle(records)
    placed = order.in_table_order(iter(records), None, tmp_path)
    try:
        got = list(placed)
    finally:
        placed.close()
    assert [n for n, _ in got] == [n for n in range(300) if n % 11 != 5]
    assert all(r == record(n) for n, r in got)
    assert placed.records == len(records)
    assert not list(tmp_path.iterdir())  # the spill is gone with close()


def test_a_later_record_for_a_row_wins_across_pieces(tmp_path: Path, small_spill: None) -> None:
    records = [record(n, "first") for n in range(40)]
    records += [record(n, "second") for n in range(0, 40, 3)]
    random.Random(5).shuffle(records[:40])
    placed = order.in_table_order(iter(records), None, tmp_path)
    got = dict(placed)
    placed.close()
    assert len(got) == 40
    for n, r in got.items():
        assert r["body"] == record(n, "second" if n % 3 == 0 else "first")["body"]


def test_records_of_no_row_are_counted_and_left_out(tmp_path: Path, small_spill: None) -> None:
    records = [record(n) for n in range(20)]
    records += [{"custom_id": "007", "body": "{}", "error": ""}, {"custom_id": "x", "body": "{}"}]
    placed = order.in_table_order(iter(records), None, tmp_path)
    assert [n for n, _ in placed] == list(range(20))
    placed.close()
    assert placed.without_row_count == 2
    assert placed.without_row == ["007", "x"]


def test_any_record_shape_comes_back_as_it_was(tmp_path: Path, small_spill: None) -> None:
    """A failure, extra keys, a nested body, a value only JSON text can hold (a date)."""
    failed = {"custom_id": "2", "body": None, "error": {"code": 500, "message": "boom"}}
    merged = {"custom_id": "3", "body": '{"text": "x"}', "error": "", "attempt": 2}
    nested = {"custom_id": "4", "body": {"text": "y"}, "error": None}
    dated = {"custom_id": "5", "body": "{}", "error": "", "at": dt.date(2026, 12, 7)}
    records = [record(n) for n in range(5, 30)] + [record(0), failed, merged, nested, dated]
    placed = order.in_table_order(iter(records), None, tmp_path)
    got = dict(placed)
    placed.close()
    assert got[0] == record(0)
    assert got[1] == failed
    assert got[2] == merged
    assert got[3] == nested
    assert got[4] == {**dated, "at": "2026-12-07"}  # as its JSON text, as before


def test_ids_of_a_column_place_records_on_their_rows(tmp_path: Path, small_spill: None) -> None:
    ids = [f"k{n * 7 % 23}" for n in range(23)]
    records = [{"custom_id": i, "body": f'"{i}"', "error": ""} for i in reversed(ids)]
    placed = order.in_table_order(iter(records), iter(ids), tmp_path)
    got = list(placed)
    placed.close()
    assert [r["custom_id"] for _, r in got] == ids
    assert [n for n, _ in got] == list(range(23))


def test_rows_read_so_far_are_looked_up(tmp_path: Path, small_spill: None) -> None:
    """A later row reusing an earlier row's answer finds it, however far back its range was."""
    records = [record(n) for n in range(50)]
    random.Random(9).shuffle(records)
    placed = order.in_table_order(iter(records), None, tmp_path, lookups=True)
    seen = 0
    for n, _ in placed:
        seen += 1
        if n == 45:
            found = placed.records_at([0, 3, 44, 45])
            assert found == {k: record(k) for k in (0, 3, 44, 45)}
    assert seen == 50
    assert placed.records_at([1, 49]) == {1: record(1), 49: record(49)}  # after the last one too
    placed.close()


def test_a_disk_that_fills_up_under_the_spill_is_a_local_write_error(
    tmp_path: Path, small_spill: None
) -> None:
    import subprocess

    from cohere_batch_cli.errors import LocalWriteError

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root: {mounted.stderr.strip()}")
    try:
        work = disk / "parts"
        work.mkdir()
        records = [record(n, "x" * 2000) for n in range(100)]  # 200 KB into 64 KB
        placed = order.in_table_order(iter(records), None, work)
        with pytest.raises(LocalWriteError) as raised:
            list(placed)
        placed.close()
        assert str(raised.value) == (
            f"cannot write the file that puts records in the table's order in {disk}: "
            "No space left on device"
        )
        assert os.listdir(work) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
