"""The merge rule, record by record: the latest success, else the latest failure, each id once,
in the original's order with the retries' answers in place and the ids it never returned last."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.results import merge, winners
from cohere_batch_cli.results.records import is_failed, spliced_jsonl_line

BOUNDS = [None, 1, 2]
"""The winners in memory; spilled into the table at the first id; spilled after two ids."""


def ok(cid: str, text: str = "yes") -> dict[str, Any]:
    return {
        "custom_id": cid,
        "body": json.dumps({"text": text}, separators=(", ", ": ")),
        "error": "",
    }


def failed(cid: str, error: str = "request timed out") -> dict[str, Any]:
    return {"custom_id": cid, "body": None, "error": error}


def store(
    tmp_path: Path, retries: list[list[dict[str, Any]]], bound: int | None, read: Counter[int]
) -> winners.Winners:
    kept: winners.Winners = winners.MemoryWinners(tmp_path, bound)
    for number, records in enumerate(retries, start=2):
        kept = merge._index_retries(kept, iter(records), number, read)
    kept.finish()
    return kept


def merged(
    tmp_path: Path,
    original: list[dict[str, Any]],
    retries: list[list[dict[str, Any]]],
    bound: int | None = None,
) -> tuple[list[tuple[str, int, bool]], Counter[int]]:
    read: Counter[int] = Counter()
    kept = store(tmp_path, retries, bound, read)
    stream = merge._Merged(kept, iter(original), read)
    out = [(r.get("custom_id"), r["attempt"], is_failed(r)) for r in stream]
    kept.close()
    return out, stream.written


@pytest.mark.parametrize("bound", BOUNDS)
def test_the_latest_success_wins_else_the_latest_failure(tmp_path: Path, bound: int | None) -> None:
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
    out, written = merged(tmp_path, original, retries, bound)
    assert out == [
        ("r0", 1, False),
        ("r1", 3, False),  # succeeded at last
        ("r2", 2, False),  # its success at 2 outlives its failure at 3
        ("r4", 1, False),
        ("r5", 1, False),  # the original's success outlives a later failure
        ("r3", 3, True),  # never in the original's output: after it
    ]
    assert written == Counter({1: 3, 2: 1, 3: 2})


@pytest.mark.parametrize("bound", BOUNDS)
def test_failures_only_keep_the_latest_and_nothing_is_lost_or_doubled(
    tmp_path: Path, bound: int | None
) -> None:
    original = [failed(f"r{i}", "first") for i in range(5)] + [{"body": "odd", "error": ""}]
    retries = [
        [failed("r1", "second"), failed("r1", "second, twice")],
        [failed("r1", "third"), ok("r9")],
    ]
    out, _ = merged(tmp_path, original, retries, bound)
    ids = [cid for cid, _, _ in out]
    assert ids == ["r0", "r1", "r2", "r3", "r4", None, "r9"]
    assert out[1] == ("r1", 3, True)


def test_a_merged_line_is_spliced_with_its_attempt() -> None:
    line = spliced_jsonl_line({**ok("r1"), "attempt": 2})
    assert line == '{"custom_id":"r1","body":{"text": "yes"},"attempt":2}'
    assert spliced_jsonl_line({**ok("r1"), "attempt": "2"}) is None  # not an int: the general path


@pytest.mark.parametrize("bound", BOUNDS)
def test_the_winners_are_one_per_id(tmp_path: Path, bound: int | None) -> None:
    records = [failed("a"), failed("a"), ok("a"), failed("a"), failed("b"), failed("b", "later")]
    kept = store(tmp_path, [records], bound, Counter())
    assert len(kept) == 2
    if isinstance(kept, winners.TableWinners):
        assert kept.db.execute("SELECT id, ok FROM best").fetchall() == [("a", 1), ("b", 0)]
    unplaced = [(attempt, winners.decode(blob)) for attempt, blob in kept.unplaced()]
    assert unplaced == [(2, ok("a")), (2, failed("b", "later"))]
    kept.close()
    assert isinstance(kept, winners.TableWinners) == (bound == 1)


@pytest.mark.parametrize("bound", BOUNDS)
def test_a_winner_of_any_shape_is_written_as_it_came(tmp_path: Path, bound: int | None) -> None:
    """Plain records are kept in the table by marshal, others as JSON text: both come back whole."""
    plain = {"custom_id": "r1", "body": '{"text": "é 𝄞"}', "error": "", "n": 7, "x": 0.1}
    nested = {"custom_id": "r2", "body": None, "error": "", "meta": {"a": [1, 2.5, None]}}
    odd = {"custom_id": "r3", "body": "{oops}", "error": "", "flag": True}
    original = [failed("r1"), failed("r2"), failed("r3")]
    kept = store(tmp_path, [[dict(plain), dict(nested), dict(odd)]], bound, Counter())
    out = list(merge._Merged(kept, iter(original), Counter()))
    kept.close()
    assert out == [{**plain, "attempt": 2}, {**nested, "attempt": 2}, {**odd, "attempt": 2}]


@pytest.mark.parametrize("bound", [None, 1000])
def test_every_winner_is_placed_however_many_ids_the_filter_lets_through(
    tmp_path: Path, monkeypatch: Any, bound: int | None
) -> None:
    """A filter far too small for the retries lets most ids through to the table, and ids
    collide in memory's table of hashes: none is misplaced."""
    monkeypatch.setattr(winners, "_FILTER_MAX_BITS", 1 << 13)
    monkeypatch.setattr(
        winners, "hash", lambda text: hash(text) % 4099, raising=False
    )  # collisions
    n = 6000
    original = [ok(f"r{i}") if i % 3 else failed(f"r{i}") for i in range(n)]
    retries = [[ok(f"r{i}", "again") for i in range(0, n, 3)] + [ok("new")]]
    out, written = merged(tmp_path, original, retries, bound)
    assert [cid for cid, _, _ in out] == [f"r{i}" for i in range(n)] + ["new"]
    assert [attempt for _, attempt, _ in out[:n]] == [1 if i % 3 else 2 for i in range(n)]
    assert written == Counter({1: n - n // 3, 2: n // 3 + 1})
