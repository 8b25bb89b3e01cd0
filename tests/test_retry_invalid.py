"""Invalid answers of a schema run count as failed: flagged in the table, sent again, never a merge's winner.

On the sandbox over loopback, with ``--invalid-output-rate`` breaking some
structured answers on purpose (drawn afresh for every batch, so a retry can
recover them): the table says ``invalid``, a dry run picks exactly those rows,
``retry --invalid`` recovers them, and the merged table has every row valid.
With every answer broken, rounds end with exit 12.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import TEST_KEY, Cli

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "stars": {"type": "integer"},
    },
    "required": ["sentiment", "stars"],
}
ROWS = 24


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    table = tmp_path / "reviews.csv"
    table.write_text(
        "id,review\n" + "".join(f"r{i:02d},review number {i}\n" for i in range(ROWS)),
        encoding="utf-8",
    )
    schema = tmp_path / "review.schema.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return table, schema


def _server(tmp_path: Path, rate: float) -> Any:
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0, queue_delay=0.0,
        validation_delay=0.0, invalid_output_rate=rate, seed=11,
    )  # fmt: skip
    return SandboxServer(settings)


def _create(cli: Cli, table: Path, schema: Path, *more: str, exit_code: int = 0) -> str:
    return cli(
        "create", "--from", str(table), "--id-column", "id", "--prompt", "{{ review }}",
        "--schema", str(schema), "--model", "command-r-08-2024", "--watch", "--plain",
        "--timeout", "60s", "--no-cache", "-q", *more, exit_code=exit_code,
    ).stdout.split()[0]  # fmt: skip


def test_retry_invalid_sends_the_invalid_answers_again_and_the_merged_table_is_all_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, schema = _inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    with _server(tmp_path, 0.4) as server:
        cli = Cli(server.base_url, TEST_KEY)
        batch = _create(cli, table, schema)
        first = cli("results", batch, "-o", "first.parquet")
        rows = pq.read_table(tmp_path / "first.parquet").to_pylist()
        invalid = [r["id"] for r in rows if r["status"] == "invalid"]
        assert invalid and len(invalid) < ROWS  # 40 % broken on purpose: both kinds are there
        assert all(r["invalid_output"] for r in rows if r["status"] == "invalid")
        assert all(r["invalid_output"] is None for r in rows if r["status"] == "succeeded")
        assert f"{len(invalid)} invalid" in first.stderr
        # a dry run picks exactly the invalid rows, each with its reason
        dry = cli("retry", batch, "--invalid", "--dry-run", "--jsonl").stdout
        picked = [json.loads(line) for line in dry.splitlines()]
        assert sorted(p["custom_id"] for p in picked) == sorted(invalid)
        assert {p["reason"] for p in picked} == {"invalid"}
        assert all(p["error"].startswith("invalid output: ") for p in picked)
        # --match reads an invalid answer's error as "invalid output: REASON"
        other = cli("retry", batch, "--match", "timed out", "--dry-run").stderr
        assert f"{len(invalid)} records still fail, none of them picked" in other
        sent = cli("retry", batch, "--invalid", "--watch", "--rounds", "8", "--pause", "0.05s")
        assert f"sending again {len(invalid)} of {ROWS} records: {len(invalid)} invalid" in (
            sent.stderr
        )
        cli("results", batch, "-o", "merged.parquet")
        merged = pq.read_table(tmp_path / "merged.parquet").to_pylist()
        nothing = cli("retry", batch, "--invalid", "--dry-run")
    assert [r["id"] for r in merged] == [f"r{i:02d}" for i in range(ROWS)]  # the table's order
    assert {r["status"] for r in merged} == {"succeeded"}  # a later valid answer won each merge
    assert all(r["invalid_output"] is None and r["sentiment"] for r in merged)
    assert "nothing to send again" in nothing.stderr


def test_rounds_of_a_schema_run_count_invalid_answers_as_still_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every answer broken: the round resends them all, they stay invalid, and the run exits 12."""
    table, schema = _inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    with _server(tmp_path, 1.0) as server:
        cli = Cli(server.base_url, TEST_KEY)
        cli(
            "create", "--from", str(table), "--id-column", "id", "--prompt", "{{ review }}",
            "--schema", str(schema), "--model", "command-r-08-2024", "--watch", "--plain",
            "--timeout", "60s", "--no-cache", "--retry-failed", "1", "--pause", "0.05s",
            exit_code=12,
        )  # fmt: skip
        batches = json.loads(cli("list", "--json").stdout)
        root = next(b["id"] for b in batches if "retry" not in b["name"])
        cli("results", root, "-o", "merged.parquet")
        rows = pq.read_table(tmp_path / "merged.parquet").to_pylist()
        refused = cli("retry", root, "--invalid", "--match", "x", exit_code=2)
    assert len(rows) == ROWS and {r["status"] for r in rows} == {"invalid"}
    assert all(r["invalid_output"] and r["sentiment"] is None for r in rows)
    assert "--invalid sends only the invalid answers again" in refused.stderr
