"""The merge rule, record by record: the latest success, else the latest failure, each id once,
in the original's order with the retries' answers in place and the ids it never returned last."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from cohere_batch_cli.results import merge
from cohere_batch_cli.results.records import spliced_jsonl_line


def ok(cid: str, text: str = "yes") -> dict[str, Any]:
    return {
        "custom_id": cid,
        "body": json.dumps({"text": text}, separators=(", ", ": ")),
        "error": "",
    }


def failed(cid: str, error: str = "request timed out") -> dict[str, Any]:
    return {"custom_id": cid, "body": None, "error": error}


def merged(
    tmp_path: Path, original: list[dict[str, Any]], retries: list[list[dict[str, Any]]]
) -> tuple[list[tuple[str, int, bool]], Counter[int]]:
    db = merge._scratch(tmp_path)
    read: Counter[int] = Counter()
    for number, records in enumerate(retries, start=2):
        merge._index_retries(db, iter(records), number, read)
    stream = merge._Merged(db, iter(original), read)
    out = [(r.get("custom_id"), r["attempt"], merge._failed(r)) for r in stream]
    db.close()
    return out, stream.written


def test_the_latest_success_wins_else_the_latest_failure(tmp_path: Path) -> None:
    original = [ok("r0"), failed("r1"), failed("r2"), ok("r4"), ok("r5")]
    retries = [
        [failed("r1"), ok("r2")],  # attempt 2
        [
            ok("r1"),
            failed("r2", "again"),
            failed("r3"),
            failed("r5"),
        ],  # attempt 3 (r3, r5: sent with --input)
    ]
    out, written = merged(tmp_path, original, retries)
    assert out == [
        ("r0", 1, False),
        ("r1", 3, False),  # succeeded at last
        ("r2", 2, False),  # its success at 2 outlives its failure at 3
        ("r4", 1, False),
        ("r5", 1, False),  # the original's success outlives a later failure
        ("r3", 3, True),  # never in the original's output: after it
    ]
    assert written == Counter({1: 3, 2: 1, 3: 2})


def test_failures_only_keep_the_latest_and_nothing_is_lost_or_doubled(tmp_path: Path) -> None:
    original = [failed(f"r{i}", "first") for i in range(5)] + [{"body": "odd", "error": ""}]
    retries = [
        [failed("r1", "second"), failed("r1", "second, twice")],
        [failed("r1", "third"), ok("r9")],
    ]
    out, _ = merged(tmp_path, original, retries)
    ids = [cid for cid, _, _ in out]
    assert ids == ["r0", "r1", "r2", "r3", "r4", None, "r9"]
    assert out[1] == ("r1", 3, True)


def test_a_merged_line_is_spliced_with_its_attempt() -> None:
    line = spliced_jsonl_line({**ok("r1"), "attempt": 2})
    assert line == '{"custom_id":"r1","body":{"text": "yes"},"attempt":2}'
    assert spliced_jsonl_line({**ok("r1"), "attempt": "2"}) is None  # not an int: the general path


def test_the_scratch_table_is_one_row_per_id(tmp_path: Path) -> None:
    db = merge._scratch(tmp_path)
    merge._index_retries(db, iter([failed("a"), failed("a"), ok("a"), failed("a")]), 2, Counter())
    assert db.execute("SELECT id, ok FROM best").fetchall() == [("a", 1)]
    db.close()
    assert isinstance(sqlite3.connect(tmp_path / "merge.sqlite3"), sqlite3.Connection)


def test_a_winner_of_any_shape_is_written_as_it_came(tmp_path: Path) -> None:
    """Plain records are kept in the table by marshal, others as JSON text: both come back whole."""
    plain = {"custom_id": "r1", "body": '{"text": "é 𝄞"}', "error": "", "n": 7, "x": 0.1}
    nested = {"custom_id": "r2", "body": None, "error": "", "meta": {"a": [1, 2.5, None]}}
    odd = {"custom_id": "r3", "body": "{oops}", "error": "", "flag": True}
    original = [failed("r1"), failed("r2"), failed("r3")]
    db = merge._scratch(tmp_path)
    merge._index_retries(db, iter([dict(plain), dict(nested), dict(odd)]), 2, Counter())
    out = list(merge._Merged(db, iter(original), Counter()))
    db.close()
    assert out == [{**plain, "attempt": 2}, {**nested, "attempt": 2}, {**odd, "attempt": 2}]


def test_every_winner_is_placed_however_many_ids_the_filter_lets_through(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A filter far too small for the retries lets most ids through to the table: none is misplaced."""
    monkeypatch.setattr(merge, "_FILTER_MAX_BITS", 1 << 13)
    n = 6000
    original = [ok(f"r{i}") if i % 3 else failed(f"r{i}") for i in range(n)]
    retries = [[ok(f"r{i}", "again") for i in range(0, n, 3)] + [ok("new")]]
    out, written = merged(tmp_path, original, retries)
    assert [cid for cid, _, _ in out] == [f"r{i}" for i in range(n)] + ["new"]
    assert [attempt for _, attempt, _ in out[:n]] == [1 if i % 3 else 2 for i in range(n)]
    assert written == Counter({1: n - n // 3, 2: n // 3 + 1})
