"""``create --dry-run`` and ``jobs create --dry-run`` check everything and send nothing (issue 24, item 16).

The local check, the context check, the budget where one is given and, for a job, the
split plan, each as the real command runs it; the sandbox's request log then holds no
POST (no upload, no batch), and the state store no job. Exit 0 when the create would go
ahead; the check's own code when it would stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Cli
from tests.support.flows import chat_records, write_jsonl

MODEL = "command-r-08-2024"


def test_create_dry_run_checks_the_file_and_the_context_and_sends_nothing(
    cli: Cli, tmp_path: Path, posts: Any
) -> None:
    path = write_jsonl(tmp_path / "faq.jsonl", chat_records(4))
    result = cli("create", "--file", str(path), "--model", MODEL, "--dry-run")
    assert f"{path}: 4 records of batch-chat-v2-input, checked" in result.stderr
    assert f"{path}: every record fits the context of {MODEL}" in result.stderr
    assert "dry run: nothing was sent" in result.stderr.splitlines()[-1]
    assert result.stdout == ""
    assert posts() == []


def test_create_dry_run_over_budget_exits_as_the_create_would(
    cli: Cli, tmp_path: Path, posts: Any
) -> None:
    path = write_jsonl(tmp_path / "faq.jsonl", chat_records(4))
    prices = {"CBATCH_INPUT_PRICE": "1000000", "CBATCH_OUTPUT_PRICE": "1000000"}
    over = cli(
        "create", "--file", str(path), "--model", MODEL, "--max-cost", "0.01", "--dry-run",
        env=prices, exit_code=5,
    )  # fmt: skip
    assert "over --max-cost" in over.stderr
    within = cli(
        "create", "--file", str(path), "--model", MODEL, "--max-cost", "100000", "--dry-run",
        env=prices,
    )  # fmt: skip
    assert "within the budget" in within.stderr
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"custom_id": "a", "body": {}}])
    cli("create", "--file", str(bad), "--model", MODEL, "--dry-run", exit_code=5)
    assert posts() == []


def test_jobs_create_dry_run_prints_the_split_plan_and_makes_no_job(
    cli: Cli, tmp_path: Path, posts: Any
) -> None:
    path = write_jsonl(tmp_path / "big.jsonl", chat_records(5))
    args = ("--model", MODEL, "--max-records-per-batch", "2", "--dry-run")
    for command in (("jobs", "create", str(path)), ("create", "--file", str(path), "--split")):
        lines = cli(*command, *args).stderr.splitlines()
        assert [line.split(" (")[0] for line in lines if line.startswith("part ")] == [
            "part 1: records 1 to 2",
            "part 2: records 3 to 4",
            "part 3: record 5",
        ]
        assert "a job of 3 parts would be uploaded" in lines[-1]
    assert posts() == []
    assert cli("jobs", "list", "-q").stdout == ""


def test_dry_run_takes_no_dataset_and_no_watch(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "faq.jsonl", chat_records(1))
    cli("create", "--dataset", "ds", "--model", MODEL, "--dry-run", exit_code=2)
    cli("create", "--file", str(path), "--model", MODEL, "--dry-run", "--watch", exit_code=2)
    cli("jobs", "create", str(path), "--model", MODEL, "--dry-run", "--watch", exit_code=2)
