"""Every option of a watch reaches its behaviour, on every command that runs a watch.

The table test runs each command in-process with each watch option, and reads
the spec the command hands to the engine at its ``runF``-style seam
(``cli._options.seams["watch"]``, as gh's ``NewCmdX(f, runF)``): the parsed value,
before any request. Then a few rows are observed end to end, in behaviour: the
spacing of polls in the sandbox's request log, ``--on-done``'s side effect, the
exit code and the time ``--timeout`` allows the whole command.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from cohere_batch_cli.tasks.watching import WatchSpec
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, write_jsonl

FILE = "requests.jsonl"

COMMANDS: dict[str, list[str]] = {
    "watch": ["watch", "b-1"],
    "create --watch": ["create", "--file", FILE, "--model", "m", "--watch"],
    "create --split --watch": ["create", "--file", FILE, "--model", "m", "--split", "--watch"],
    "create --watch --retry-failed": ["create", "--file", FILE, "--model", "m", "--watch", "--retry-failed", "2"],
    "retry --watch": ["retry", "b-1", "--watch", "--rounds", "2"],
    "jobs create --watch": ["jobs", "create", FILE, "--model", "m", "--watch"],
    "jobs resume": ["jobs", "resume", "j-1"],
    "jobs attach": ["jobs", "attach", "j-1", "--file", FILE, "--model", "m"],
    "jobs retry": ["jobs", "retry", "j-1"],
    "jobs watch": ["jobs", "watch", "j-1"],
    "cancel --wait": ["cancel", "b-1", "--wait"],
}  # fmt: skip
"""Every command that runs a watch, as the seam names it, with the arguments that make it watch."""

OPTIONS: dict[str, tuple[list[str], Callable[[WatchSpec], bool]]] = {
    "--interval": (["--interval", "7s"], lambda s: s.interval == 7.0),
    "--max-interval": (["--max-interval", "3m"], lambda s: s.max_interval == 180.0),
    "--outage-limit": (["--outage-limit", "9m"], lambda s: s.outage_limit == 540.0),
    "--progress-every": (["--progress-every", "11s"], lambda s: s.progress_every == 11.0),
    "--no-exit-status": (["--no-exit-status"], lambda s: s.no_exit_status),
    "--on-done": (["--on-done", "echo done"], lambda s: s.on_done == "echo done"),
    "--timeout": (
        ["--timeout", "40m"],
        lambda s: (
            s.timeout == 2400.0
            and s.deadline is not None
            and 2390 < s.deadline - time.monotonic() <= 2400
        ),
    ),
    "--plain": (["--plain"], lambda s: s.plain),
}
"""Every option of ``cbatch watch``, and what the spec holds when it is given."""

JSON_EVENTS = {"watch", "create --watch", "create --watch --retry-failed", "retry --watch", "jobs watch", "jobs retry", "cancel --wait"}  # fmt: skip
"""Where ``--json`` streams the watch's events on stdout; elsewhere stdout holds the job object
and the watch goes to stderr."""


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, WatchSpec]:
    """The seam: each command's spec, by the command's name, instead of running it."""
    from cohere_batch_cli.cli import _options

    write_jsonl(tmp_path / FILE, chat_records(3))
    seen: dict[str, WatchSpec] = {}
    monkeypatch.setitem(
        _options.seams, "watch", lambda command, spec: seen.__setitem__(command, spec)
    )
    return seen


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_watch_option_reaches_the_spec_of_every_command_that_watches(
    handed: dict[str, WatchSpec], command: str, option: str
) -> None:
    flags, holds = OPTIONS[option]
    cli = Cli("http://127.0.0.1:9", TEST_KEY)  # the seam ends the command before any request
    cli(*COMMANDS[command], *flags)
    assert command in handed, f"{command} never handed its spec over"
    spec = handed[command]
    assert holds(spec), f"{command} {' '.join(flags)}: {spec}"
    assert WatchSpec().no_exit_status is False
    if command != "cancel --wait" and option != "--no-exit-status":
        assert not spec.no_exit_status  # an option given alone changes that option alone


@pytest.mark.parametrize("command", ["watch", "jobs watch"])
def test_fail_on_records_reaches_the_spec_of_both_watches(
    handed: dict[str, WatchSpec], command: str
) -> None:
    Cli("http://127.0.0.1:9", TEST_KEY)(*COMMANDS[command], "--fail-on-records")
    assert handed[command].fail_on_records


@pytest.mark.parametrize("command", sorted(JSON_EVENTS))
def test_json_streams_events_where_stdout_holds_the_watch(
    handed: dict[str, WatchSpec], command: str
) -> None:
    Cli("http://127.0.0.1:9", TEST_KEY)(*COMMANDS[command], "--json")
    assert handed[command].json_lines


@pytest.mark.parametrize(
    "args",
    [
        ["create", "--file", FILE, "--model", "m"],
        ["create", "--file", FILE, "--model", "m", "--split"],
        ["retry", "b-1"],
        ["jobs", "create", FILE, "--model", "m"],
        ["jobs", "resume", "j-1", "--no-watch"],
        ["jobs", "attach", "j-1", "--file", FILE, "--model", "m", "--no-watch"],
        ["cancel", "b-1"],
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("option", ["--interval", "--on-done", "--timeout", "--no-exit-status"])
def test_a_watch_option_without_a_watch_is_refused_not_ignored(
    handed: dict[str, WatchSpec], args: list[str], option: str
) -> None:
    flags, _ = OPTIONS[option]
    result = Cli("http://127.0.0.1:9", TEST_KEY)(*args, *flags, exit_code=ExitCode.USAGE)
    assert f"{option} shapes a watch" in result.stderr
    assert not handed


# -- end to end: observed in behaviour -------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """Batches that stay queued for a while, so a watch has something to wait for."""
    settings = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("slow-sandbox"),
        port=0,
        queue_delay=60.0,
        validation_delay=0.0,
    )
    with SandboxServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def paced_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """Batches that stay queued 3 s: every part is still running when the watch begins."""
    settings = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("paced-sandbox"),
        port=0,
        queue_delay=3.0,
        validation_delay=0.0,
    )
    with SandboxServer(settings) as server:
        yield server


def _polls(server: Any, batch_id: str) -> int:
    return sum(1 for method, path, _ in server.request_log if method == "GET" and batch_id in path)


def test_create_split_watch_runs_on_done_for_every_part(
    paced_sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Case 5: ``create --split --watch`` accepted and ignored --on-done; its side effect is now seen."""
    write_jsonl(tmp_path / FILE, chat_records(6))
    log = tmp_path / "ended.log"
    cli = Cli(paced_sandbox.base_url, TEST_KEY)
    hook = f"{sys.executable} -c \"import os; open({str(log)!r}, 'a').write(os.environ['CBATCH_BATCH_ID'] + chr(10))\""
    result = cli(
        "create", "--file", FILE, "--model", "m", "--max-records-per-batch", "3", "--watch", "--plain",
        "--interval", "0.1s", "--max-interval", "0.2s", "--on-done", hook, "-q",
    )  # fmt: skip
    job_id = result.stdout.split()[0]
    ended = log.read_text().split()
    assert len(ended) == 2 and len(set(ended)) == 2, "--on-done ran once for each part's batch"
    created = [
        line.split()[-1] for line in result.stderr.splitlines() if ": created batch " in line
    ]
    assert sorted(ended) == sorted(created), "each part's batch, once"
    assert job_id in result.stderr


def test_create_retry_failed_with_a_timeout_stops_the_whole_command_in_time(
    slow_sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Case 5: with --timeout 3s it ran 31 s and exited 0; the deadline now bounds the command."""
    write_jsonl(tmp_path / FILE, chat_records(3))
    cli = Cli(slow_sandbox.base_url, TEST_KEY)
    began = time.monotonic()
    result = cli(
        "create", "--file", FILE, "--model", "m", "--watch", "--retry-failed", "2", "--plain", "--timeout", "3s",
        "--interval", "0.5s", exit_code=ExitCode.TIMEOUT,
    )  # fmt: skip
    took = time.monotonic() - began
    assert took < 10, f"the command ran {took:.1f} s against a --timeout of 3 s"
    assert (
        "--timeout 3s" in result.stderr and "cbatch" in result.stderr
    )  # the command that carries on


def test_interval_spaces_the_polls_of_create_watch(
    slow_sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The spacing of polls, read from the sandbox's request log: --interval reaches the engine."""
    write_jsonl(tmp_path / FILE, chat_records(2))
    cli = Cli(slow_sandbox.base_url, TEST_KEY)
    fast = cli(
        "create", "--file", FILE, "--model", "m", "--watch", "--plain", "--timeout", "3s", "-q",
        "--interval", "0.1s", "--max-interval", "0.1s", exit_code=ExitCode.TIMEOUT,
    ).stdout.split()[0]  # fmt: skip
    slow = cli(
        "create", "--file", FILE, "--model", "m", "--watch", "--plain", "--timeout", "3s", "-q",
        "--interval", "5s", exit_code=ExitCode.TIMEOUT,
    ).stdout.split()[0]  # fmt: skip
    assert _polls(slow_sandbox, fast) >= 6
    assert _polls(slow_sandbox, slow) <= 3


def test_timeout_bounds_the_validation_of_create_watch_and_says_how_to_carry_on(
    tmp_path: Path,
) -> None:
    """--timeout counted only the watch: a slow validation ran past it. Now it bounds the whole
    command: no batch is created past the deadline, exit 10, and the printed command carries on."""
    import shlex

    settings = SandboxSettings(
        data_dir=tmp_path / "sb", port=0, validation_delay=2.0, queue_delay=0.0
    )
    with SandboxServer(settings) as server:
        write_jsonl(tmp_path / FILE, chat_records(2))
        cli = Cli(server.base_url, TEST_KEY)
        began = time.monotonic()
        result = cli(
            "create", "--file", FILE, "--model", "m", "--name", "slow", "--watch", "--plain", "--timeout", "0.5s",
            exit_code=ExitCode.TIMEOUT,
        )  # fmt: skip
        assert time.monotonic() - began < 2.0
        assert "no batch was created" in result.stderr
        assert not [m for m, p, _ in server.request_log if m == "POST" and p == "/v2/batches"]
        carry_on = result.stderr.split("carry on with: ", 1)[1].splitlines()[0]
        args = shlex.split(carry_on)
        assert args[:3] == ["cbatch", "create", "--dataset"] and "--timeout" in args
        time.sleep(2.0)  # the dataset validates meanwhile
        index = args.index("--timeout")
        args[index + 1] = "30s"
        done = cli(*args[1:], "--interval", "0.1s", "--max-interval", "0.2s", exit_code=0)
        assert "completed" in done.stdout


def test_timeout_bounds_the_sending_of_a_job_and_resume_carries_on(tmp_path: Path) -> None:
    """--timeout bounds ``jobs create --watch`` from the start: no part is uploaded past it,
    exit 10, and the printed ``jobs resume`` sends the rest, each part once."""
    import shlex

    settings = SandboxSettings(data_dir=tmp_path / "sb", port=0, latency=0.1, queue_delay=0.0)
    with SandboxServer(settings) as server:
        write_jsonl(tmp_path / FILE, chat_records(12))
        cli = Cli(server.base_url, TEST_KEY)
        result = cli(
            "jobs", "create", FILE, "--model", "m", "--max-records-per-batch", "2", "--watch", "--plain",
            "--timeout", "1s", exit_code=ExitCode.TIMEOUT,
        )  # fmt: skip
        uploads = [
            p for m, p, _ in server.request_log if m == "POST" and p.startswith("/v1/datasets")
        ]
        assert len(uploads) < 6, "the deadline stopped the sending between parts"
        carry_on = result.stderr.split("carry on with: ", 1)[1].splitlines()[0]
        args = shlex.split(carry_on)
        assert args[1:3] == ["jobs", "resume"] and "--timeout" in args
        args[args.index("--timeout") + 1] = "60s"
        cli(*args[1:], "--interval", "0.1s", "--max-interval", "0.2s")
        uploads = [
            p for m, p, _ in server.request_log if m == "POST" and p.startswith("/v1/datasets")
        ]
        assert len(uploads) == 6, "each part uploaded once"


ALL_FAIL = [
    ["create", "--file", FILE, "--model", "m", "--watch"],
    ["create", "--file", FILE, "--model", "m", "--split", "--watch"],
    ["jobs", "create", FILE, "--model", "m", "--watch"],
]


@pytest.mark.parametrize("args", ALL_FAIL, ids=" ".join)
def test_no_exit_status_is_seen_in_the_exit_code(cli: Cli, tmp_path: Path, args: list[str]) -> None:
    """Every record fails: the batch (or the job's one part) ends FAILED, exit 8; forgiven, 0."""
    write_jsonl(tmp_path / FILE, chat_records(2, fail={0, 1}))
    fast = ["--plain", "--interval", "0.1s", "--max-interval", "0.2s"]
    cli(*args, *fast, exit_code=ExitCode.BATCH_FAILED)
    cli(*args, *fast, "--name", "forgiven", "--no-exit-status", exit_code=ExitCode.OK)


def test_json_puts_the_right_bytes_on_stdout(cli: Cli, tmp_path: Path) -> None:
    """``jobs create --watch --json``: stdout is the job object alone (the watch goes to stderr);
    ``jobs watch --json``: the watch's events, then the job, one JSON object a line."""
    import json

    write_jsonl(tmp_path / FILE, chat_records(4))
    fast = ["--interval", "0.1s", "--max-interval", "0.2s"]
    created = cli(
        "jobs",
        "create",
        FILE,
        "--model",
        "m",
        "--max-records-per-batch",
        "2",
        "--watch",
        "--json",
        *fast,
    )
    job = json.loads(created.stdout)
    assert job["status"] == "completed" and len(job["parts"]) == 2
    watched = cli("jobs", "watch", job["id"], "--json", *fast)
    lines = [json.loads(line) for line in watched.stdout.splitlines()]
    assert lines[-1]["kind"] == "job" and lines[-1]["id"] == job["id"]
