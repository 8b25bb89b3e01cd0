"""Every sending option reaches its behaviour, on every command that sends, or is refused.

As tests/test_watch_options.py does for a watch's options: each command runs
in-process with each of its sending options, and the values it hands the
engine are read at its ``runF``-style seam (``cli._options.seams["values"]``): the
``SendSpec``, ``JobOptions`` and ``RetryOptions`` parsed from the flags,
before anything is sent. An option of the retry rounds given where no round is
asked for reaches nothing, and is refused. Then two rows are observed end to
end, on the sandbox's batch list.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.tasks.jobs import JobOptions
from cohere_batch_cli.tasks.retrying import RetryOptions
from cohere_batch_cli.tasks.send_file import SendSpec
from cohere_batch_cli.units import parse_size
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, write_jsonl

FILE = "requests.jsonl"
MODEL = "command-r-08-2024"
JOB = "k3v9x0q2ma"
"""A job recorded on this machine (the ``recorded`` fixture): ``jobs resume`` and ``retry JOB`` find it."""

COMMANDS: dict[str, list[str]] = {
    "create --file": ["create", "--file", FILE, "--model", MODEL],
    "create --split": ["create", "--file", FILE, "--model", MODEL, "--split"],
    "jobs create": ["jobs", "create", FILE, "--model", MODEL],
    "jobs resume": ["jobs", "resume", JOB],
    "jobs attach": ["jobs", "attach", JOB, "--file", FILE, "--model", MODEL],
    "jobs retry": ["jobs", "retry", JOB],
    "retry": ["retry", "b-1"],
    "retry JOB": ["retry", JOB],
}
"""Every command that sends, as the seam names it, with the arguments it needs."""

T = TypeVar("T")


def of(values: tuple[Any, ...], kind: type[T]) -> T:
    """The value of ``kind`` a command handed over (each command hands one of each kind at most)."""
    found = [v for v in values if isinstance(v, kind)]
    assert len(found) == 1, f"{kind.__name__} handed {len(found)} times: {values}"
    return found[0]


def rounds(count: int) -> Callable[[tuple[Any, ...]], bool]:
    """The retry flags ``ROUNDS`` gives, as the ``RetryOptions`` holds them."""

    def held(values: tuple[Any, ...]) -> bool:
        retry = of(values, RetryOptions)
        return (
            retry.rounds == count
            and retry.pause == 7.0
            and retry.rule.pattern == "timed out"
            and not retry.rule.missing
        )

    return held


def only_invalid(values: tuple[Any, ...]) -> bool:
    """``--invalid``: the rule picks invalid answers alone, no failure and no missing record."""
    rule = of(values, RetryOptions).rule
    return rule.invalid and not rule.failed and not rule.missing


ROUNDS = ["--pause", "7s", "--match", "timed out", "--no-missing"]
NAME, TYPE = ["--name", "nightly"], ["--type", "batch-embed-v2-input"]
LOCK = ["--wait-lock", "3m"]


def one_lock(kind: type[Any]) -> Callable[[tuple[Any, ...]], bool]:
    """``--wait-lock`` held in the value of ``kind`` alone: every other value handed over keeps the default."""

    def held(values: tuple[Any, ...]) -> bool:
        return of(values, kind).wait_lock == 180.0 and all(
            getattr(v, "wait_lock", 0.0) == 0.0 for v in values if not isinstance(v, kind)
        )

    return held


SPLIT = {
    "--max-records-per-batch": (["--max-records-per-batch", "5"], lambda v: of(v, JobOptions).max_records == 5),
    "--max-bytes-per-batch": (["--max-bytes-per-batch", "1MB"], lambda v: of(v, JobOptions).max_bytes == parse_size("1MB")),
    "--type": (TYPE, lambda v: of(v, JobOptions).dataset_type == "batch-embed-v2-input"),
}  # fmt: skip

ROWS: dict[str, dict[str, tuple[list[str], Callable[[tuple[Any, ...]], bool]]]] = {
    "create --file": {
        "--name": (NAME, lambda v: of(v, SendSpec).name == "nightly"),
        "--type": (TYPE, lambda v: of(v, SendSpec).dataset_type == "batch-embed-v2-input"),
        "--max-cost": (["--max-cost", "5"], lambda v: (b := of(v, SendSpec).budget) is not None and b.max_cost == Decimal(5)),
        "--max-input-tokens": (["--max-input-tokens", "900"], lambda v: (b := of(v, SendSpec).budget) is not None and b.max_input_tokens == 900),
        "--no-context-check": (["--no-context-check"], lambda v: not of(v, SendSpec).guard.check_context),
        "--strict-context": (["--strict-context"], lambda v: of(v, SendSpec).guard.strict),
        "--tokenizer": (["--tokenizer", "tokenizer.json"], lambda v: of(v, SendSpec).guard.count.tokenizer_file is not None),
        "--wait-lock": (LOCK, lambda v: of(v, SendSpec).wait_lock == 180.0),
        "--retry-failed": (["--watch", "--retry-failed", "2", *ROUNDS], lambda v: rounds(2)(v) and of(v, RetryOptions).model == MODEL),
    },
    "create --split": {
        "--name": (NAME, lambda v: of(v, JobOptions).label == "nightly"),
        **SPLIT,
        "--wait-lock": (LOCK, one_lock(JobOptions)),
        "--retry-failed": (["--watch", "--retry-failed", "2", *ROUNDS], rounds(2)),
    },
    "jobs create": {
        "--name": (NAME, lambda v: of(v, JobOptions).label == "nightly"),
        **SPLIT,
        "--delete-inputs": (["--delete-inputs"], lambda v: of(v, JobOptions).delete_inputs),
        "--wait-lock": (LOCK, one_lock(JobOptions)),
        "--retry-failed": (["--watch", "--retry-failed", "2", *ROUNDS], rounds(2)),
    },
    "jobs resume": {
        "--delete-inputs": (["--delete-inputs"], lambda v: of(v, JobOptions).delete_inputs),
        "--wait-lock": (LOCK, one_lock(JobOptions)),
        "--retry-failed": (["--retry-failed", "2", *ROUNDS], rounds(2)),
    },
    "jobs attach": {
        "--name": (NAME, lambda v: of(v, JobOptions).label == "nightly"),
        "--model": (["--model", "command-a"], lambda v: of(v, JobOptions).model == "command-a"),
        **SPLIT,
        "--wait-lock": (LOCK, one_lock(JobOptions)),
        "--retry-failed": (["--retry-failed", "2", "--pause", "7s"], lambda v: (r := of(v, RetryOptions)).rounds == 2 and r.pause == 7.0),
    },
    "jobs retry": {
        "--rounds": (["--rounds", "3", *ROUNDS], rounds(3)),
        "--invalid": (["--invalid"], only_invalid),
        "--wait-lock": (LOCK, one_lock(RetryOptions)),
    },
    "retry": {
        "--match": (["--match", "timed out"], lambda v: of(v, RetryOptions).rule.pattern == "timed out"),
        "--no-missing": (["--no-missing"], lambda v: not of(v, RetryOptions).rule.missing),
        "--input": (["--input", FILE], lambda v: of(v, RetryOptions).input == Path(FILE)),
        "--model": (["--model", "command-a"], lambda v: of(v, RetryOptions).model == "command-a"),
        "--dry-run": (["--dry-run"], lambda v: of(v, RetryOptions).dry_run),
        "--rounds": (["--watch", "--rounds", "3", *ROUNDS], rounds(3)),
        "--invalid": (["--invalid"], only_invalid),
        "--wait-lock": (LOCK, one_lock(RetryOptions)),
    },
    "retry JOB": {
        "--rounds": (["--rounds", "3", *ROUNDS], rounds(3)),
        "--invalid": (["--invalid"], only_invalid),
        "--wait-lock": (LOCK, one_lock(RetryOptions)),
    },
}  # fmt: skip
"""Each command's sending options, and what the values it hands over hold when one is given."""


@pytest.fixture
def handed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated_env: Path
) -> dict[str, tuple[Any, ...]]:
    """The seam: each command's values, by the command's name, instead of sending; a job recorded here."""
    from cohere_batch_cli.cli import _options
    from cohere_batch_cli.state.store import JobRecord, open_store

    write_jsonl(tmp_path / FILE, chat_records(3))
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text(  # prices, for --max-cost
        f'[profiles.default.prices."{MODEL}"]\ninput = 0.15\noutput = 0.60\n', encoding="utf-8"
    )
    now = time.time()
    open_store().begin_job(
        JobRecord(JOB, "faq", MODEL, None, str(tmp_path / FILE), None, None, None, None, None, "split", now, now)
    )  # fmt: skip
    seen: dict[str, tuple[Any, ...]] = {}
    monkeypatch.setitem(
        _options.seams, "values", lambda command, values: seen.__setitem__(command, values)
    )
    return seen


@pytest.mark.parametrize(
    ("command", "option"),
    [pytest.param(c, o, id=f"{c} {o}") for c, options in ROWS.items() for o in options],
)
def test_every_sending_option_reaches_the_values_the_command_hands_over(
    cli: Cli, handed: dict[str, tuple[Any, ...]], command: str, option: str
) -> None:
    flags, holds = ROWS[command][option]
    cli(*COMMANDS[command], *flags)
    assert command in handed, f"{command} {' '.join(flags)} never handed its values over"
    assert holds(handed[command]), f"{command} {' '.join(flags)}: {handed[command]}"


@pytest.mark.parametrize(
    "args",
    [
        [*COMMANDS["create --file"], "--match", "timed out"],
        [*COMMANDS["create --file"], "--watch", "--pause", "7s"],
        [*COMMANDS["create --split"], "--no-missing"],
        [*COMMANDS["jobs create"], "--pause", "7s"],
        [*COMMANDS["jobs resume"], "--match", "timed out"],
        [*COMMANDS["jobs attach"], "--pause", "7s"],
    ],
    ids=" ".join,
)
def test_a_round_option_without_rounds_is_refused_not_ignored(
    cli: Cli, handed: dict[str, tuple[Any, ...]], args: list[str]
) -> None:
    result = cli(*args, exit_code=ExitCode.USAGE)
    assert "shapes the retry rounds: it needs --retry-failed N" in result.stderr
    assert not handed


@pytest.mark.parametrize(
    "args",
    [
        [*COMMANDS["jobs create"], "--retry-failed", "2"],
        [*COMMANDS["jobs create"], "--retry-failed", "2", "--dry-run"],
    ],
    ids=" ".join,
)
def test_rounds_without_a_watch_are_refused_by_jobs_create_dry_run_or_not(
    cli: Cli, handed: dict[str, tuple[Any, ...]], args: list[str]
) -> None:
    result = cli(*args, exit_code=ExitCode.USAGE)
    assert "--retry-failed needs --watch" in result.stderr
    assert not handed


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--type", "batch-embed-v2-input"], "--type goes with --file or --from, not --dataset"),
        (["--no-context-check"], "--no-context-check goes with --file or --from, not --dataset"),
        (["--wait-lock", "3m"], "--wait-lock waits for another cbatch sending the same run"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else "",
)
def test_a_file_option_with_a_dataset_is_refused_not_ignored(
    cli: Cli, handed: dict[str, tuple[Any, ...]], flags: list[str], words: str
) -> None:
    result = cli("create", "--dataset", "ds-1", "--model", MODEL, *flags, exit_code=ExitCode.USAGE)
    assert words in result.stderr
    assert not handed


def test_a_pause_without_rounds_is_refused_by_retry(
    cli: Cli, handed: dict[str, tuple[Any, ...]]
) -> None:
    result = cli("retry", "b-1", "--pause", "7s", exit_code=ExitCode.USAGE)
    assert "--pause is the wait between rounds" in result.stderr
    assert not handed


# -- end to end: observed on the sandbox's batch list ----------------------------------------------


def test_a_jobs_name_and_split_reach_the_batches_it_makes(cli: Cli, sandbox: Any) -> None:
    write_jsonl(Path(FILE), chat_records(5))
    job_id = cli(
        "jobs", "create", FILE, "--model", MODEL, "--name", "nightly", "--max-records-per-batch", "2", "-q"
    ).stdout.strip()  # fmt: skip
    with CohereClient(TEST_KEY, sandbox.base_url) as client:
        made = [b for b in client.iter_batches(page_size=1000) if f"job {job_id}" in b.name]
    assert sorted(b.num_records for b in made) == [1, 2, 2]
    assert all(b.name.startswith("nightly ") for b in made)


def test_attach_with_another_split_than_the_jobs_is_refused(cli: Cli, sandbox: Any) -> None:
    write_jsonl(Path(FILE), chat_records(5))
    job_id = cli(
        "jobs", "create", FILE, "--model", MODEL, "--max-records-per-batch", "2", "-q"
    ).stdout.strip()  # fmt: skip
    from cohere_batch_cli.state.store import open_store

    open_store().delete_job(job_id)  # as on another machine: known to the API alone
    result = cli(
        "jobs", "attach", job_id, "--file", FILE, "--max-records-per-batch", "3", "--no-watch",
        exit_code=ExitCode.REFUSED,
    )  # fmt: skip
    assert "does not give job" in result.stderr
