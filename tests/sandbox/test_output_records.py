"""Output records as real clients recorded them: shapes, order, readiness (CONTRACT.md,
"What real clients have seen": Output records, Output dataset types)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.sandbox.sandbox_client import chat_lines


def _order(api: Any, n: int = 40, **upload: Any) -> list[str]:
    done = api.run(chat_lines(n), **upload)
    return [r["custom_id"] for r in api.results(done["output_dataset_id"])]


def test_success_has_an_empty_error_and_a_failure_a_null_body(shared: Any) -> None:
    done = shared.run(chat_lines(6, fail={4}))
    records = shared.by_id(done["output_dataset_id"])
    assert all(
        r["error"] == "" and isinstance(r["body"], str) for k, r in records.items() if k != "r4"
    )
    assert records["r4"]["body"] is None and records["r4"]["error"]


def test_success_error_null_gives_the_other_shape(start: Any) -> None:
    api = start(success_error="null")
    records = api.by_id(api.run(chat_lines(3))["output_dataset_id"])
    assert [r["error"] for r in records.values()] == [None, None, None]


def test_records_are_shuffled_within_and_across_parts(start: Any) -> None:
    api = start(seed=11, part_max_records=10)
    done = api.run(chat_lines(40))
    parts = [[r["custom_id"] for r in part] for part in api.parts(done["output_dataset_id"])]
    assert [len(p) for p in parts] == [10, 10, 10, 10]
    flat = [cid for part in parts for cid in part]
    assert sorted(flat) == sorted(f"r{i}" for i in range(40))
    assert flat != [f"r{i}" for i in range(40)]
    # across parts: the first part does not hold just the first ten records
    assert set(parts[0]) != {f"r{i}" for i in range(10)}


def test_the_order_repeats_with_a_seed_and_changes_with_another(start: Any, tmp_path: Path) -> None:
    first = _order(start(data_dir=tmp_path / "a", seed=5))
    again = _order(start(data_dir=tmp_path / "b", seed=5))
    other = _order(start(data_dir=tmp_path / "c", seed=6))
    assert first == again
    assert other != first and sorted(other) == sorted(first)


def test_each_batch_of_one_sandbox_has_its_own_order(start: Any) -> None:
    api = start(seed=5)
    assert _order(api) != _order(api)


def test_no_shuffle_keeps_input_order(start: Any) -> None:
    api = start(shuffle=False, part_max_records=7)
    assert _order(api, 20) == [f"r{i}" for i in range(20)]


def test_the_output_dataset_reads_processing_a_moment_after_completed(start: Any) -> None:
    api = start(output_ready_delay=0.5)
    done = api.wait_batch(api.create(api.validated(chat_lines(2)))["id"])
    assert done["status"] == "BATCH_STATUS_COMPLETED"
    first = api.dataset(done["output_dataset_id"])
    assert first["validation_status"] == "processing" and first["dataset_parts"] == []
    assert api.wait_dataset(done["output_dataset_id"])["validation_status"] == "validated"
