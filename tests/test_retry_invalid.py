"""Invalid answers of a schema run count as failed: flagged in the table, sent again, never a merge's winner.

On the sandbox over loopback, with ``--invalid-output-rate`` breaking some
structured answers on purpose (drawn afresh for every batch, so a retry can
recover them): the table says ``invalid``, a dry run picks exactly those rows,
``retry --invalid`` recovers them, and the merged table has every row valid.
With every answer broken, rounds end with exit 12. A table job's parts are
judged and retried the same way, and ``watch --fail-on-records`` reads the
answers the API counts as successes.
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


def _create_args(table: Path, schema: Path) -> tuple[str, ...]:
    """``create --from`` of the reviews with the schema, watched to the end at a quick pace."""
    return (
        "create", "--from", str(table), "--id-column", "id", "--prompt", "{{ review }}",
        "--schema", str(schema), "--model", "command-r-08-2024", "--watch", "--plain",
        "--timeout", "60s", "--interval", "0.1s", "--no-cache",
    )  # fmt: skip


def _create(cli: Cli, table: Path, schema: Path, *more: str, exit_code: int = 0) -> str:
    return cli(*_create_args(table, schema), "-q", *more, exit_code=exit_code).stdout.split()[0]


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
        # the API counts every record a success: --fail-on-records reads the answers
        judged = cli("watch", batch, "--fail-on-records", "--plain", exit_code=12)
        assert (
            f"{len(invalid)} of {ROWS} records have no answer that follows the run's schema"
            in judged.stderr
        )
        cli("watch", batch, "--fail-on-records", "--no-exit-status", "--plain")
        # a dry run picks exactly the invalid rows, each with its reason
        dry = cli("retry", batch, "--invalid", "--dry-run", "--jsonl").stdout
        picked = [json.loads(line) for line in dry.splitlines()]
        assert sorted(p["custom_id"] for p in picked) == sorted(invalid)
        assert {p["reason"] for p in picked} == {"invalid"}
        assert all(p["error"].startswith("invalid output: ") for p in picked)
        # --match reads an invalid answer's error as "invalid output: REASON"
        other = cli("retry", batch, "--match", "timed out", "--dry-run").stderr
        assert f"{len(invalid)} records still fail, none of them picked" in other
        sent = cli(
            "retry",
            batch,
            "--invalid",
            "--watch",
            "--rounds",
            "8",
            "--pause",
            "0.05s",
            "--interval",
            "0.1s",
        )
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
        cli(*_create_args(table, schema), "--retry-failed", "1", "--pause", "0.05s", exit_code=12)
        batches = json.loads(cli("list", "--json").stdout)
        root = next(b["id"] for b in batches if "retry" not in b["name"])
        cli("results", root, "-o", "merged.parquet")
        rows = pq.read_table(tmp_path / "merged.parquet").to_pylist()
        refused = cli("retry", root, "--invalid", "--match", "x", exit_code=2)
    assert len(rows) == ROWS and {r["status"] for r in rows} == {"invalid"}
    assert all(r["invalid_output"] and r["sentiment"] is None for r in rows)
    assert "--invalid sends only the invalid answers again" in refused.stderr


# -- a table job: each part's invalid answers, sent again part by part --------------------------


def _job(cli: Cli, table: Path, schema: Path, *more: str, exit_code: int = 0) -> str:
    return cli(
        "jobs", "create", "--from", str(table), "--id-column", "id", "--prompt", "{{ review }}",
        "--schema", str(schema), "--model", "command-r-08-2024", "--max-records-per-batch", "8",
        "--watch", "--plain", "--timeout", "60s", "--interval", "0.1s", "--max-interval", "0.2s",
        "--no-cache", "-q", *more, exit_code=exit_code,
    ).stdout.split()[0]  # fmt: skip


def _retries_received(server: Any, cli: Cli) -> dict[int, list[str]]:
    """The custom_ids of the records the sandbox received for each retry round (K of ``retry K]``)."""
    from tests.sandbox.sandbox_client import Api

    api = Api(server)
    try:
        sent: dict[int, list[str]] = {}
        for batch in json.loads(cli("list", "--json").stdout):
            if " retry " not in batch["name"]:
                continue
            round_number = int(batch["name"].rsplit(" retry ", 1)[1].rstrip("]"))
            records = [r for part in api.parts(batch["input_dataset_id"]) for r in part]
            sent.setdefault(round_number, []).extend(r["custom_id"] for r in records)
        return sent
    finally:
        api.close()


def test_a_table_jobs_invalid_answers_are_sent_again_alone_and_its_table_is_all_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """retry JOB --invalid and jobs retry --invalid: only the invalid rows' requests reach the sandbox."""
    table, schema = _inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    with _server(tmp_path, 0.4) as server:
        cli = Cli(server.base_url, TEST_KEY)
        job = _job(cli, table, schema)
        cli("results", job, "-o", "first.parquet")
        rows = pq.read_table(tmp_path / "first.parquet").to_pylist()
        invalid = sorted(r["id"] for r in rows if r["status"] == "invalid")
        assert invalid and len(invalid) < ROWS  # 40 % broken on purpose: both kinds are there
        # a dry run, part by part, picks exactly the invalid rows
        dry = cli("jobs", "retry", job, "--invalid", "--dry-run", "--json").stdout
        picked = [json.loads(line) for line in dry.splitlines()]
        assert sorted(p["custom_id"] for p in picked) == invalid
        assert {p["reason"] for p in picked} == {"invalid"}
        assert _retries_received(server, cli) == {}  # a dry run sends nothing
        for watch in (["jobs", "watch"], ["watch"]):  # invalid answers fail the job's records
            judged = cli(*watch, job, "--fail-on-records", "--plain", exit_code=12)
            assert f"{len(invalid)} of {ROWS} records failed, have no result or break" in (
                judged.stderr
            )
        sent = cli("retry", job, "--invalid", "--plain", "--interval", "0.1s", exit_code=12)
        assert "records of job" in sent.stderr.splitlines()[-2]  # some answers broke again
        first_round = _retries_received(server, cli)
        assert sorted(first_round[1]) == invalid  # the invalid rows' requests, and nothing else
        more = cli(
            "jobs", "retry", job, "--invalid", "--rounds", "8", "--pause", "0.05s", "--plain",
            "--interval", "0.1s",
        )  # fmt: skip
        assert "still failing" not in more.stderr
        rounds = _retries_received(server, cli)
        assert all(set(ids) <= set(invalid) for ids in rounds.values())
        cli("results", job, "-o", "merged.parquet")
        merged = pq.read_table(tmp_path / "merged.parquet").to_pylist()
        nothing = cli("jobs", "retry", job, "--invalid", "--dry-run")
        cli("jobs", "watch", job, "--fail-on-records", "--plain")  # every part's attempts together
    assert [r["id"] for r in merged] == [f"r{i:02d}" for i in range(ROWS)]  # the table's order
    assert {r["status"] for r in merged} == {"succeeded"}  # a later valid answer won each merge
    assert all(
        r["invalid_output"] is None and r["sentiment"] and r["stars"] is not None for r in merged
    )
    assert "nothing to send again" in nothing.stderr


def test_a_table_jobs_rounds_send_its_invalid_answers_again_and_exit_12_while_they_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every answer broken: jobs create --retry-failed sends every row again, part by part; exit 12."""
    table, schema = _inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    with _server(tmp_path, 1.0) as server:
        cli = Cli(server.base_url, TEST_KEY)
        job = _job(cli, table, schema, "--retry-failed", "1", "--pause", "0.05s", exit_code=12)
        sent = _retries_received(server, cli)
        refused = cli("retry", job, "--invalid", "--match", "x", exit_code=2)
    assert sorted(sent[1]) == [f"r{i:02d}" for i in range(ROWS)]
    assert "--invalid sends only the invalid answers again" in refused.stderr


def test_invalid_is_refused_for_a_job_made_without_a_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, _ = _inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    with _server(tmp_path, 0.0) as server:
        cli = Cli(server.base_url, TEST_KEY)
        job = cli(
            "jobs", "create", "--from", str(table), "--id-column", "id", "--prompt", "{{ review }}",
            "--model", "command-r-08-2024", "--max-records-per-batch", "8", "--watch", "--plain",
            "--timeout", "60s", "--interval", "0.1s", "--no-cache", "-q",
        ).stdout.split()[0]  # fmt: skip
        refused = cli("jobs", "retry", job, "--invalid", exit_code=2)
        cli("jobs", "watch", job, "--fail-on-records", "--plain")  # no schema: the counts say it
    assert f"job {job} was not made with --schema on this machine" in refused.stderr


def test_an_error_text_holding_double_quotes_is_quoted_in_single_ones() -> None:
    """A schema's reason names its fields in double quotes: wrapped in double quotes again, the
    sentence read as three quoted pieces. The formatter is a pure function: tested as one."""
    from cohere_batch_cli.selection import Rule, Selection
    from cohere_batch_cli.tasks.retrying import selection_words

    reason = (
        'invalid output: breaks the schema at the top level: "sentiment" is a required property'
    )
    picked = Selection(
        input_records=20, records=3, invalid=3, error_kinds=2,
        errors=[(reason, 2), ("invalid output: cut off at MAX_TOKENS", 1)],
    )  # fmt: skip
    assert selection_words(picked, Rule.only_invalid(), dry_run=True) == (
        f"would send again 3 of 20 records: 3 invalid (2 '{reason}', "
        '1 "invalid output: cut off at MAX_TOKENS")'
    )
