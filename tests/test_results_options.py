"""Every option of a results writer reaches its behaviour, on every command that writes results.

The table test runs each command in-process with each results option and reads
the spec the command hands to the engine at its ``runF``-style seam
(``cli._options.seams["results"]``, as gh's ``NewCmdX(f, runF)``): the parsed value, before
any request, and that the option changed that field of the spec and no other.
Combinations without meaning are refused (exit 2) before the seam. Then a few
rows are observed end to end against the sandbox: the bytes of the file, what
is left on the API, and the exit code.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.tasks.results_spec import ResultsSpec
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, write_jsonl

FILE = "requests.jsonl"
DEAD = "http://127.0.0.1:9"  # nothing listens: a command that made a request would fail

COMMANDS: dict[str, list[str]] = {
    "results": ["results", "b-1"],
    "jobs results": ["jobs", "results", "j-1"],
}
"""Every command that writes results, as the seam names it (``results JOB`` is ``results``)."""

OPTIONS: dict[str, tuple[list[str], dict[str, object]]] = {
    "-o": (["-o", "out.csv"], {"output": "out.csv"}),
    "--output": (["--output", "-"], {"output": "-"}),
    "--format": (["--format", "parquet"], {"fmt": "parquet"}),
    "-F": (["-F", "csv"], {"fmt": "csv"}),
    "--column": (["-o", "r.csv", "--column", "m=body.id", "--column", "n=custom_id"], {"output": "r.csv", "columns": ("m=body.id", "n=custom_id")}),
    "--body": (["-o", "r.csv", "--body"], {"output": "r.csv", "body": True}),
    "--failed-only": (["--failed-only"], {"failed_only": True}),
    "--join": (["--join", FILE], {"join": Path(FILE)}),
    "--concurrency": (["--concurrency", "7"], {"concurrency": 7}),
    "--partial": (["--partial"], {"partial": True}),
    "--delete-outputs": (["--delete-outputs"], {"delete_outputs": True}),
    "--input-order": (["--input-order"], {"input_order": True}),
    "--file": (["--input-order", "--file", FILE], {"input_order": True, "input_file": Path(FILE)}),
}  # fmt: skip
"""Every option of a results writer, and the fields of the spec it sets (every other field stays)."""

OWN: dict[str, Callable[[ResultsSpec], bool]] = {"--own": lambda s: s.merge is False}
"""``results``' own option beside the shared ones: one batch's own records."""


def test_the_table_covers_every_declared_results_option() -> None:
    from cohere_batch_cli.cli._options import RESULTS_FLAGS

    assert set(RESULTS_FLAGS.values()) <= set(OPTIONS)


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, ResultsSpec]:
    """The seam: each command's spec, by the command's name, instead of running it."""
    from cohere_batch_cli.cli import _options

    write_jsonl(tmp_path / FILE, chat_records(3))
    seen: dict[str, ResultsSpec] = {}
    monkeypatch.setitem(
        _options.seams, "results", lambda command, spec: seen.__setitem__(command, spec)
    )
    return seen


def _fields(spec: ResultsSpec) -> dict[str, object]:
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.compare}


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_results_option_reaches_the_spec_of_every_command_that_writes_results(
    handed: dict[str, ResultsSpec], command: str, option: str
) -> None:
    flags, sets = OPTIONS[option]
    cli = Cli(DEAD, TEST_KEY)  # the seam ends the command before any request
    cli(*COMMANDS[command])
    plain = _fields(handed.pop(command))
    cli(*COMMANDS[command], *flags)
    assert command in handed, f"{command} never handed its spec over"
    spec = _fields(handed[command])
    changed = {name: value for name, value in spec.items() if value != plain[name]}
    assert changed == sets, f"{command} {' '.join(flags)}: {changed}"


@pytest.mark.parametrize("option", OWN)
def test_results_own_option_reaches_its_spec(handed: dict[str, ResultsSpec], option: str) -> None:
    Cli(DEAD, TEST_KEY)(*COMMANDS["results"], option)
    assert OWN[option](handed["results"])


def test_the_runs_settings_travel_in_the_spec(handed: dict[str, ResultsSpec]) -> None:
    """The global --request-timeout and the dataset lifetime reach the writer with the flags."""
    env = {"CBATCH_DATASET_TTL": "3d"}
    for command, args in COMMANDS.items():
        Cli(DEAD, TEST_KEY)("--request-timeout", "17", *args, env=env)
        assert handed[command].read_timeout == 17.0
        assert handed[command].dataset_ttl == 3 * 86400


REFUSED: dict[str, tuple[list[str], str]] = {
    "--failed-only --delete-outputs": (["--failed-only", "--delete-outputs"], "--failed-only and --delete-outputs mean nothing together"),
    "--file without --input-order": (["--file", FILE], "--file names the input that --input-order reads again"),
    "--column with JSONL": (["--column", "m=body.id"], "--column is for the table formats"),
    "--body with JSONL": (["-o", "r.jsonl", "--body"], "--body is for the table formats"),
    "--format against -o": (["--format", "csv", "-o", "r.parquet"], "--format csv contradicts -o r.parquet"),
}  # fmt: skip
"""Combinations without meaning for any run: exit 2 before the seam (docs/scripting.md)."""


@pytest.mark.parametrize("case", REFUSED)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_combination_without_meaning_is_refused_before_anything_is_asked(
    handed: dict[str, ResultsSpec], command: str, case: str
) -> None:
    flags, words = REFUSED[case]
    result = Cli(DEAD, TEST_KEY)(*COMMANDS[command], *flags, exit_code=ExitCode.USAGE)
    assert words in result.stderr
    assert not handed


@pytest.mark.parametrize(
    "flags",
    [["--partial"], ["--delete-outputs"], ["--input-order"], ["--input-order", "--file", FILE]],
    ids=" ".join,
)
def test_a_jobs_option_on_a_batch_is_refused_before_any_request(
    tmp_path: Path, flags: list[str]
) -> None:
    """A batch's results are one part written whole: the job's options have no meaning there.
    Refused (exit 2) against a port where nothing listens: no request was made first."""
    write_jsonl(tmp_path / FILE, chat_records(2))
    result = Cli(DEAD, TEST_KEY)(
        "results", "9439e0e3-49a4-4336-93e3-485fc420bc18", *flags, exit_code=ExitCode.USAGE
    )
    assert "a job's results" in result.stderr
    named = [flag for flag in flags if flag.startswith("--")]
    assert result.stderr.startswith(f"error: {', '.join(named)} shape"), result.stderr


# -- end to end: observed in behaviour -------------------------------------------------------------


@pytest.fixture
def job(cli: Cli, tmp_path: Path) -> str:
    """A job of three parts that ended, one record of each failing."""
    write_jsonl(tmp_path / FILE, chat_records(9, fail={1, 4, 7}, prefix="opt"))
    job_id = cli(
        "jobs", "create", FILE, "--model", "command-r", "--max-records-per-batch", "3", "-q"
    ).stdout.strip()
    cli("jobs", "watch", job_id, "--plain", "--interval", "0.1s", "--max-interval", "0.2s")
    return job_id


def test_jobs_results_honours_the_table_options_results_had_alone(
    cli: Cli, job: str, tmp_path: Path
) -> None:
    """``--column``, ``--body`` and ``--join`` were options of ``results`` only: ``jobs results``
    now writes them, and both commands write the same bytes for a job."""
    flags = ["--column", "n=request.messages[0].content", "--body", "--join", FILE]
    cli("jobs", "results", job, "-o", "jobs.csv", *flags)
    cli("results", job, "-o", "run.csv", *flags)
    assert (tmp_path / "jobs.csv").read_bytes() == (tmp_path / "run.csv").read_bytes()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "jobs.csv").read_text())))
    assert len(rows) == 9 and {"n", "body", "attempt"} <= set(rows[0])
    assert {r["custom_id"]: r["n"] for r in rows}["opt-4"].startswith("question 4")


def test_results_of_a_job_honour_input_order_and_failed_only(
    cli: Cli, job: str, tmp_path: Path
) -> None:
    """``results JOB --input-order --failed-only -o -``: the failures alone, in the input's order."""
    out = cli("results", job, "--input-order", "--failed-only", "-o", "-").stdout
    ids = [json.loads(line)["custom_id"] for line in out.splitlines()]
    assert ids == ["opt-1", "opt-4", "opt-7"]


def test_results_job_failed_only_delete_outputs_deletes_nothing(
    cli: Cli, job: str, tmp_path: Path
) -> None:
    """Case 1 through the run id: refused, exit 2, no file; every output is still there to read."""
    cli("results", job, "--failed-only", "--delete-outputs", "-o", "f.jsonl", exit_code=ExitCode.USAGE)  # fmt: skip
    assert not (tmp_path / "f.jsonl").exists()
    cli("results", job, "-o", "all.jsonl")
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 9


def test_own_on_a_job_is_refused_and_a_missing_folder_is_exit_11(cli: Cli, job: str) -> None:
    refused = cli("results", job, "--own", exit_code=ExitCode.USAGE)
    assert "--own gives one batch's own records" in refused.stderr
    cli("jobs", "results", job, "-o", "nowhere/r.jsonl", exit_code=ExitCode.LOCAL_WRITE)
