"""Restarts on the same data_dir, injected faults, and serve without the server extra."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.sandbox.sandbox_client import chat_lines


def test_restart_keeps_everything_and_resumes_a_running_batch(start: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "durable"
    first = start(data_dir=data_dir, records_per_second=100)
    dataset_id = first.validated(chat_lines(120))
    finished = first.create(first.validated(chat_lines(2)), name="done")
    first.wait_batch(finished["id"])
    running = first.create(dataset_id, name="running")
    mid = first.wait_batch(running["id"], until=lambda b: b["num_successful_records"] >= 10)
    assert mid["status"] == "BATCH_STATUS_IN_PROGRESS"
    first.close()
    first.server.stop()

    second = start(data_dir=data_dir, records_per_second=2000)
    assert second.dataset(dataset_id)["validation_status"] == "validated"
    assert second.batch(finished["id"])["status"] == "BATCH_STATUS_COMPLETED"
    resumed = second.batch(running["id"])
    assert resumed["num_successful_records"] >= mid["num_successful_records"]
    done = second.wait_batch(running["id"])
    assert done["status"] == "BATCH_STATUS_COMPLETED" and done["num_successful_records"] == 120
    assert sorted(second.by_id(done["output_dataset_id"])) == sorted(f"r{i}" for i in range(120))
    assert len(second.http.get("/v2/batches").json()["batches"]) == 2


def _statuses(api: Any, n: int) -> list[tuple[int, str | None]]:
    out = []
    for _ in range(n):
        r = api.http.get("/v2/batches")
        out.append((r.status_code, r.headers.get("retry-after")))
    return out


def test_faults_repeat_exactly_with_a_seed(start: Any, tmp_path: Path) -> None:
    runs = []
    for i in range(2):
        api = start(data_dir=tmp_path / f"f{i}", fail_rate_429=0.3, fail_rate_5xx=0.2, seed=7)
        runs.append(_statuses(api, 40))
    assert runs[0] == runs[1]
    codes = [code for code, _ in runs[0]]
    assert {200, 429} <= set(codes) and ({500, 503} & set(codes))
    assert all(after == "1" for code, after in runs[0] if code == 429)
    assert all(code in (200, 429, 500, 503) for code in codes)


def test_faults_spare_part_downloads(start: Any) -> None:
    api = start(fail_rate_5xx=1.0)
    assert api.http.get("/v2/batches").status_code in (500, 503)
    assert httpx.get(f"{api.server.base_url}/_sandbox/health").status_code == 200


def test_cli_serve_without_the_extra_says_how_to_install(monkeypatch: Any) -> None:
    import sys

    from typer.testing import CliRunner

    from cohere_batch_cli.cli import sandbox as sandbox_cli

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the extra were not installed
    result = CliRunner().invoke(sandbox_cli.app, ["serve"])
    assert result.exit_code == 2, result.stderr
    assert (
        "pip install 'python-multipart>=0.0.9' 'starlette>=0.37' 'tokenizers<1,>=0.20' 'uvicorn>=0.30' (the [sandbox] extra)"
        in result.stderr
    )


def test_a_data_dir_from_an_older_sandbox_still_runs_batches(start: Any, tmp_path: Path) -> None:
    import sqlite3

    data_dir = tmp_path / "old"
    first = start(data_dir=data_dir)
    dataset_id = first.validated(chat_lines(4))
    first.close()
    first.server.stop()
    # what an older sandbox left: no expiry column, no facts or offsets beside the rows
    with sqlite3.connect(data_dir / "sandbox.db") as db:
        db.execute("DROP INDEX datasets_expires")
        db.execute("ALTER TABLE datasets DROP COLUMN expires_us")
    for name in ("facts.jsonl", "offsets.bin"):
        (data_dir / "datasets" / dataset_id / name).unlink()

    second = start(data_dir=data_dir)
    done = second.run_existing(dataset_id)
    assert done["status"] == "BATCH_STATUS_COMPLETED" and done["num_successful_records"] == 4
    assert sorted(second.by_id(done["output_dataset_id"])) == ["r0", "r1", "r2", "r3"]
