"""``cbatch watch`` end to end: exit codes, output modes, outages and request counts.

Batches run in the real sandbox (the session's fast one, or a slow one here for
states that need time: canceling, timeouts, many batches in flight); outages
come from the scripted server of ``tests/support/batch_server.py``. The last
test runs the installed ``cbatch`` in a pseudo-terminal to see the live view.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.models import BatchStatus
from cohere_batch_cli.cli._options import parse_duration
from cohere_batch_cli.cli._watching import resume_command
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY, Cli
from tests.support.batch_server import BatchServer, batch_state
from tests.support.flows import make_batch, wait_terminal

FAST = ("--interval", "0.05", "--max-interval", "0.2")
PLAIN_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  \S")  # UTC, as every view


@pytest.fixture
def client(sandbox: Any) -> Iterator[CohereClient]:
    with CohereClient(TEST_KEY, sandbox.base_url) as c:
        yield c


@pytest.fixture(scope="module")
def slow_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """50 records/s and a 1.5 s cancel grace: slow enough to catch batches mid-flight."""
    settings = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("slow"),
        port=0,
        records_per_second=50.0,
        queue_delay=0.0,
        validation_delay=0.0,
        cancel_grace=1.5,
    )
    with SandboxServer(settings) as server:
        yield server


@pytest.fixture
def slow(slow_sandbox: SandboxServer) -> Iterator[tuple[Cli, CohereClient]]:
    with CohereClient(TEST_KEY, slow_sandbox.base_url) as c:
        yield Cli(slow_sandbox.base_url, TEST_KEY), c


@pytest.fixture
def scripted() -> Iterator[BatchServer]:
    server = BatchServer().start()
    yield server
    server.stop()


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# -- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("0.5", 0.5),
        ("500ms", 0.5),
        (" 2H ", 7200.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "-3", "0", "15m3", "m"])
def test_bad_durations_are_refused(text: str) -> None:
    import typer

    with pytest.raises(typer.BadParameter):
        parse_duration(text)


def test_a_bad_timeout_is_a_usage_error(cli: Cli) -> None:
    result = cli("watch", "some-id", "--timeout", "5x", exit_code=2)
    assert "duration" in result.stderr


def test_resume_command_repeats_the_watch_exactly() -> None:
    from cohere_batch_cli.tasks.watching import WatchSpec

    spec = WatchSpec(timeout=900, interval=5, no_exit_status=True, plain=True, on_done="echo $X")
    command = resume_command(None, ["a", "b c"], spec)
    assert command == (
        "cbatch watch a 'b c' --plain --interval 5s --timeout 15m --no-exit-status --on-done 'echo $X'"
    )


# -- outcomes and output modes -------------------------------------------------------------


def test_completed_batch_exits_0_with_plain_timestamped_lines(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, count=30, name="plain-ok")
    result = cli("watch", batch.id, *FAST)
    lines = result.stdout.splitlines()
    assert lines and all(PLAIN_LINE.match(line) for line in lines), result.stdout
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", result.stdout)  # no control characters
    last = lines[-1]
    assert "completed" in last and "30/30 records (30 ok, 0 failed)" in last
    final = client.get_batch(batch.id)
    assert f"output dataset {final.output_dataset_id}" in last
    assert f"cbatch results {batch.id} -o results.jsonl" in last


def test_a_batch_already_over_is_one_line_and_its_exit_code(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, count=2, fail={0, 1}, name="over")
    wait_terminal(client, batch.id)
    result = cli("watch", batch.id, exit_code=ExitCode.BATCH_FAILED)
    assert len(result.stdout.splitlines()) == 1 and "failed" in result.stdout
    assert "reason: all 2 records failed" in result.stdout


def test_no_exit_status_turns_a_failure_into_0(
    cli: Cli, client: CohereClient, tmp_path: Path
) -> None:
    batch = make_batch(client, tmp_path, count=2, fail={0, 1}, name="forgiven")
    cli("watch", batch.id, "--no-exit-status", *FAST, exit_code=0)


def test_several_batches_as_json_lines(cli: Cli, client: CohereClient, tmp_path: Path) -> None:
    good = make_batch(client, tmp_path, count=20, name="json-good")
    bad = make_batch(client, tmp_path, count=2, fail={0, 1}, name="json-bad")
    result = cli(
        "watch", good.id, bad.id, good.id, "--json", *FAST, exit_code=ExitCode.BATCH_FAILED
    )
    events = json_lines(result.stdout)
    assert all({"event", "time", "batch"} <= e.keys() for e in events)
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", e["time"]) for e in events)
    done = {e["batch"]["id"]: e for e in events if e["event"] == "batch_done"}
    assert set(done) == {good.id, bad.id}  # a repeated id is watched once
    assert (
        done[good.id]["exit_code"] == 0
        and done[good.id]["results_command"] == f"cbatch results {good.id} -o results.jsonl"
    )
    assert done[bad.id]["exit_code"] == 8 and done[bad.id]["status"] == "BATCH_STATUS_FAILED"
    assert isinstance(done[good.id]["batch"]["input_tokens"], str), "the API's own object, as sent"
    assert (
        events[-1]["event"] == "all_done"
        and events[-1]["exit_code"] == 8
        and events[-1]["batch"] is None
    )
    assert result.stderr == ""


def test_a_canceled_batch_exits_9(slow: tuple[Cli, CohereClient], tmp_path: Path) -> None:
    cli, client = slow
    batch = make_batch(client, tmp_path, count=500, name="to-cancel")
    client.cancel_batch(batch.id)
    result = cli("watch", batch.id, "--json", *FAST, exit_code=ExitCode.BATCH_CANCELED)
    statuses = [e["status"] for e in json_lines(result.stdout) if "status" in e]
    assert statuses[-1] == BatchStatus.CANCELED


def test_a_cancel_that_ends_completed_exits_0(
    slow: tuple[Cli, CohereClient], tmp_path: Path
) -> None:
    cli, client = slow
    batch = make_batch(
        client, tmp_path, count=30, name="cancel-too-late"
    )  # 0.6 s of work, 1.5 s grace
    deadline = time.monotonic() + 5
    while (
        client.get_batch(batch.id).status == BatchStatus.QUEUED
    ):  # a QUEUED batch always ends CANCELED
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client.cancel_batch(batch.id)
    result = cli("watch", batch.id, "--json", *FAST)
    changes = [
        (e["old"], e["new"]) for e in json_lines(result.stdout) if e["event"] == "status_changed"
    ]
    first = json_lines(result.stdout)[0]
    assert (
        first["status"] == BatchStatus.CANCELING
        or (BatchStatus.CANCELING, BatchStatus.COMPLETED) in changes
    )
    assert changes[-1][1] == BatchStatus.COMPLETED


def test_timeout_exits_10_and_leaves_the_batch_running(
    slow: tuple[Cli, CohereClient], tmp_path: Path
) -> None:
    cli, client = slow
    batch = make_batch(client, tmp_path, count=500, name="too-long")
    started = time.monotonic()
    result = cli(
        "watch", batch.id, "--timeout", "0.8s", "--plain", *FAST, exit_code=ExitCode.TIMEOUT
    )
    assert time.monotonic() - started < 5
    assert "timed out" in result.stdout and batch.id in result.stdout
    assert f"continue with: cbatch watch {batch.id} --plain" in result.stderr
    still = client.get_batch(batch.id)
    assert not still.status.is_terminal and still.status != BatchStatus.CANCELING
    client.cancel_batch(batch.id)  # tidy: do not keep the slow sandbox busy


def test_many_batches_are_polled_with_one_list_request_per_round(
    slow: tuple[Cli, CohereClient], slow_sandbox: SandboxServer, tmp_path: Path
) -> None:
    cli, client = slow
    ids = [make_batch(client, tmp_path, count=100, name=f"many-{i}").id for i in range(5)]
    log = slow_sandbox.request_log
    start = len(log)
    cli("watch", *ids, "--json", "--interval", "0.1", "--max-interval", "0.2")
    polls = [
        (method, path)
        for method, path, _ in log[start:]
        if method == "GET" and path.startswith("/v2/batches")
    ]
    lists = [p for _, p in polls if p.startswith("/v2/batches?")]
    gets = [p for _, p in polls if not p.startswith("/v2/batches?")]
    assert all("order_by=updated_at" in p for p in lists)
    # ~2 s of work at a 0.1-0.2 s pace: several list rounds; GETs only once at most 3 are left
    assert len(lists) >= 3
    assert polls[0][1].startswith("/v2/batches?") and polls[1][1].startswith("/v2/batches?")
    assert len(gets) < len(lists) * 3
    assert len(polls) < 5 * (len(lists) + 2)  # far fewer than one GET per batch per round


# -- outages -----------------------------------------------------------------------------


def _ticking(server: BatchServer, every: float) -> threading.Event:
    """Advance the scripted batches on a wall clock until the returned event is set."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            server.advance()

    threading.Thread(target=run, daemon=True).start()
    return stop


def test_an_outage_mid_watch_is_reported_and_survived(scripted: BatchServer) -> None:
    states = [batch_state("in_progress", ok=n) for n in range(0, 100, 10)]
    scripted.add("w1", *states, batch_state("completed", ok=100, output_dataset_id="out-w1"))
    cli = Cli(scripted.base_url, TEST_KEY)
    scripted.fail_next(1)  # the first request (the lookup of "w1") fails too
    scripted.fail_next(3, "reset")
    scripted.fail_next(2, "503")
    stop = _ticking(scripted, 0.05)
    try:
        result = cli(
            "--retries",
            "0",
            "watch",
            "w1",
            "--plain",
            "--interval",
            "0.05",
            "--max-interval",
            "0.1",
        )
    finally:
        stop.set()
    out = result.stdout
    # The first failure meets the lookup of "w1" (retried there), the five others the polls.
    assert out.count("poll failed: ") == 5
    assert out.count("poll failed: the server answered HTTP 503") == 2, "an answer is not an outage"
    assert out.count(f"poll failed: {scripted.base_url.split('//')[1]} closed the connection") == 3
    assert "the API answers again" in out and "completed" in out.splitlines()[-1]


def test_a_lasting_outage_ends_the_watch_with_the_error_exit_code(scripted: BatchServer) -> None:
    scripted.add("w2", batch_state("in_progress", ok=1))
    scripted.fail_next(10_000, "503")
    cli = Cli(scripted.base_url, TEST_KEY)
    result = cli(
        "--retries", "0", "watch", "w2", "--json", "--interval", "0.05", "--max-interval", "0.1",
        "--outage-limit", "0.5s", exit_code=ExitCode.SERVER,
    )  # fmt: skip
    events = json_lines(result.stdout)
    assert events and all(
        e["event"] == "transient_error" and e["status_code"] == 503 for e in events
    )
    assert "error: HTTP 503" in result.stderr


# -- a real terminal -----------------------------------------------------------------------


def _cbatch() -> str | None:
    found = shutil.which("cbatch", path=os.path.dirname(sys.executable))
    return found or shutil.which("cbatch")


@pytest.mark.skipif(_cbatch() is None, reason="cbatch is not installed in this environment")
def test_live_view_redraws_in_place_and_ends_with_a_summary(
    slow: tuple[Cli, CohereClient], tmp_path: Path
) -> None:
    pexpect = pytest.importorskip("pexpect")
    _, client = slow
    batch = make_batch(client, tmp_path, count=60, name="live-view")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CO_", "NO_COLOR"))}
    env.update(
        CO_API_KEY=TEST_KEY,
        CO_API_URL=client.base_url,
        TERM="xterm-256color",
        COLUMNS="100",
        LINES="30",
    )
    child = pexpect.spawn(
        _cbatch(),
        ["watch", batch.id, "--interval", "0.1", "--max-interval", "0.3"],
        env=env,
        encoding="utf-8",
        timeout=20,
        dimensions=(30, 100),
    )
    child.expect(pexpect.EOF)
    child.close()
    out = child.before or ""
    assert child.exitstatus == 0, out
    assert "\x1b[2K" in out and re.search(r"\x1b\[\d*A", out), (
        "redrawn in place: erase line, cursor up"
    )
    assert "█" in out  # the bar
    tail = out[-800:]
    assert "get results:" in tail and f"cbatch results {batch.id} -o results.jsonl" in tail
    assert "output dataset: " in tail and "all 1 batch ended: 1 completed (exit 0)" in tail


@pytest.mark.skipif(_cbatch() is None, reason="cbatch is not installed in this environment")
def test_ctrl_c_exits_130_cancels_nothing_and_says_how_to_resume(
    slow: tuple[Cli, CohereClient], tmp_path: Path
) -> None:
    pexpect = pytest.importorskip("pexpect")
    _, client = slow
    batch = make_batch(client, tmp_path, count=500, name="interrupted")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CO_")}
    env.update(CO_API_KEY=TEST_KEY, CO_API_URL=client.base_url, TERM="xterm-256color")
    child = pexpect.spawn(
        _cbatch(),
        ["watch", batch.id, "--interval", "0.1", "--timeout", "1h"],
        env=env,
        encoding="utf-8",
        timeout=20,
        dimensions=(30, 100),
    )
    child.expect("in progress")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert f"resume with: cbatch watch {batch.id} --interval 0.1s --timeout 1h" in (
        child.before or ""
    )
    assert client.get_batch(batch.id).status == BatchStatus.IN_PROGRESS
    client.cancel_batch(batch.id)


# -- the views as pure functions -------------------------------------------------------------


def test_render_state_shows_ok_and_failed_apart_and_never_raw_escapes() -> None:
    from rich.console import Console

    from cohere_batch_cli.api.models import Batch
    from cohere_batch_cli.output.watch_views import WatchState, describe, progress_bar, render_state
    from cohere_batch_cli.watcher import Progress

    raw = {
        "id": "b-1", "name": "evil\x1b[2Jname", "status": "BATCH_STATUS_IN_PROGRESS", "num_records": 100,
        "num_successful_records": 50, "num_failed_records": 1, "input_tokens": "1234", "output_tokens": "56",
    }  # fmt: skip
    event = Progress(Batch.from_api(raw), rate=12.5, eta=3.9, elapsed=65.0)
    state = WatchState(["b-1", "b-2"])
    state.apply(event)
    with open(os.devnull, "w") as devnull:
        console = Console(width=100, record=True, color_system=None, file=devnull)
        console.print(render_state(state))
        text = console.export_text()
    assert "\x1b" not in text and "evil\\x1b[2Jname" in text
    assert "51/100 records (50 ok, 1 failed)" in text and "12.5/s" in text and "ETA 3.9s" in text
    assert "tokens in 1,234 / out 56" in text and "1/2 done" not in text and "0/2 done" in text
    assert "b-2  waiting for the first answer" in text
    bar = progress_bar(event.batch, width=20).plain
    assert bar.count("█") == 10 and bar.count("▓") == 1 and bar.count("░") == 9
    assert "\x1b" not in describe(event)


def test_json_event_for_a_transient_error() -> None:
    from datetime import datetime, timezone

    from cohere_batch_cli.api.errors import RateLimitError
    from cohere_batch_cli.output.watch_views import event_json
    from cohere_batch_cli.watcher import TransientError

    error = RateLimitError("HTTP 429: slow down", status_code=429)
    obj = event_json(
        TransientError(error, retry_in=4.0, down_for=2.5, elapsed=10.0),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )
    assert obj == {
        "event": "transient_error", "time": "2026-01-02T03:04:05Z", "batch": None, "error": "HTTP 429: slow down",
        "error_type": "RateLimitError", "status_code": 429, "retry_in": 4.0, "down_for": 2.5, "elapsed": 10.0,
    }  # fmt: skip


def test_a_watch_line_groups_its_record_counts_as_it_groups_its_tokens() -> None:
    """One screen writes numbers one way: ``2,646`` beside ``tokens in 12,345`` (issue 24 item 20)."""
    from cohere_batch_cli.api.models import Batch
    from cohere_batch_cli.output.watch_views import describe
    from cohere_batch_cli.watcher import Snapshot
    from tests.support.fault_server import batch_json

    raw = batch_json("b-1", status="BATCH_STATUS_IN_PROGRESS")
    raw.update(num_records=3000, num_successful_records=2646, num_failed_records=4,
               input_tokens=12345, output_tokens=678)  # fmt: skip
    line = describe(Snapshot(batch=Batch.from_api(raw), rate=None, eta=None, elapsed=0.0))
    assert "2,650/3,000 records (2,646 ok, 4 failed)" in line
    assert "tokens in 12,345 / out 678" in line
