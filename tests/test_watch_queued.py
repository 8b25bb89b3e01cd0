"""A long QUEUED wait shown calmly (CONTRACT.md, Lifecycle: about 7 minutes for 10 records).

The watch engine already slows down while every batch is queued (x2 a round up to
--max-interval); these check what a person sees meanwhile: time in the queue and the
next check in the live view, and a line as the wait passes 1, 2, 5, 10 minutes (then
every 10) in the plain log, never minutes of silence. The views are pure of their
inputs, so a fake clock drives them; the real watch through the installed cbatch is
last.
"""

from __future__ import annotations

import io
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from cohere_batch_cli.api.models import Batch
from cohere_batch_cli.output.watch_views import (
    PlainRenderer,
    WatchState,
    next_queue_mark,
    render_state,
)
from cohere_batch_cli.watcher import Progress, Snapshot, StatusChanged, TimedOut
from tests.sandbox.sandbox_client import Api, chat_lines
from tests.support.installed import cbatch_env, cbatch_path

CREATED = datetime(2026, 1, 2, 3, 0, 0, tzinfo=timezone.utc)


def batch(status: str = "BATCH_STATUS_QUEUED", **fields: Any) -> Batch:
    raw = {
        "id": "b-1",
        "name": "nightly",
        "status": status,
        "num_records": 10,
        "created_at": "2026-01-02T03:00:00Z",
    }
    return Batch.from_api({**raw, **fields})


class Clock:
    def __init__(self) -> None:
        self.at = CREATED

    def __call__(self) -> datetime:
        return self.at

    def advance_to(self, seconds: float) -> None:
        self.at = CREATED + timedelta(seconds=seconds)


def test_the_plain_log_says_a_batch_is_still_queued_as_the_wait_passes_each_mark() -> None:
    out, clock = io.StringIO(), Clock()
    plain = PlainRenderer(out, now=clock, sleep=lambda s: None)
    clock.advance_to(5)
    plain.handle([Snapshot(batch(), None, None, 0.0)])
    spoken = []
    for second in range(10, 1500, 10):  # a poll every 10 s, each round with nothing new
        plain.sleep(10)
        clock.advance_to(second)
        before = out.getvalue()
        plain.handle([])
        if out.getvalue() != before:
            spoken.append(second)
    assert spoken == [60, 120, 300, 600, 1200]
    lines = out.getvalue().splitlines()
    assert len(lines) == 6 and "nightly (b-1)  queued  0/10 records" in lines[0]
    assert lines[1].endswith(
        "nightly (b-1): still queued after 1m00s; checking every 10s; waits of several minutes are usual before a batch starts"
    )
    assert "still queued after 20m00s" in lines[-1]


def test_the_plain_log_speaks_of_the_wait_in_this_watch_and_stops_once_the_batch_starts() -> None:
    out, clock = io.StringIO(), Clock()
    plain = PlainRenderer(
        out, now=clock, sleep=lambda s: None, progress_every=0
    )  # every progress line shows
    clock.advance_to(400)  # queued for 6m40s before the watch began: no line about the past
    plain.handle([Snapshot(batch(), None, None, 0.0)])
    clock.advance_to(590)
    plain.handle([])
    assert len(out.getvalue().splitlines()) == 1
    clock.advance_to(600)
    plain.handle([])
    assert "still queued after 10m00s" in out.getvalue().splitlines()[-1]
    started = batch("BATCH_STATUS_IN_PROGRESS")
    plain.handle(
        [
            StatusChanged(
                started, started.status.__class__("QUEUED"), started.status, None, None, 0.0
            )
        ]
    )
    clock.advance_to(1300)
    plain.handle([Progress(started, None, None, 0.0)])
    assert "still queued" not in "".join(out.getvalue().splitlines()[-2:])


def test_after_timeout_the_last_line_says_it_timed_out_not_that_it_keeps_checking() -> None:
    """The watch is over once --timeout runs out: no "checking every 12s" after it (issue 24, item 10)."""
    out, clock = io.StringIO(), Clock()
    plain = PlainRenderer(out, now=clock, sleep=lambda s: None)
    clock.advance_to(55)
    plain.handle([Snapshot(batch(), None, None, 0.0)])
    plain.sleep(12)
    clock.advance_to(67)  # past the 1-minute mark in the round that ends the watch
    plain.handle([Progress(batch(), None, None, 12.0), TimedOut(("b-1",), (batch(),), 12.0)])
    plain.handle([])
    lines = out.getvalue().splitlines()
    assert "timed out after 12s; still running (not cancelled): b-1" in lines[-1]
    assert "checking every" not in out.getvalue()


def test_the_marks_go_on_every_ten_minutes() -> None:
    assert [next_queue_mark(s) for s in (0, 60, 119, 299, 600, 1199, 3000)] == [
        60,
        120,
        120,
        300,
        1200,
        1200,
        3600,
    ]


def _rendered(state: WatchState) -> str:
    with open(os.devnull, "w") as devnull:
        console = Console(width=120, record=True, color_system=None, file=devnull)
        console.print(render_state(state))
        return console.export_text()


def test_the_live_view_shows_the_time_in_the_queue_and_the_next_check() -> None:
    state = WatchState(["b-1"], wall_now=CREATED + timedelta(minutes=2), next_poll=24.0)
    state.apply(Snapshot(batch(), None, None, 0.0))
    text = _rendered(state)
    assert "queued for 2m00s  ·  next check in 24s  ·  waits of several minutes are usual" in text
    assert "elapsed" not in text

    state = WatchState(["b-1"], wall_now=CREATED + timedelta(seconds=20))
    state.apply(Snapshot(batch(), None, None, 0.0))
    text = _rendered(state)
    assert "queued for 20s" in text and "usual" not in text and "next check" not in text

    running = WatchState(["b-1"], wall_now=CREATED + timedelta(minutes=9), next_poll=2.0)
    running.apply(
        Snapshot(batch("BATCH_STATUS_IN_PROGRESS", num_successful_records=4), 1.0, 6.0, 0.0)
    )
    assert "elapsed 9m00s" in _rendered(running) and "queued" not in _rendered(running)


def test_a_watch_through_the_installed_cbatch_polls_a_queued_batch_ever_more_slowly(
    tmp_path: Path,
) -> None:
    import subprocess

    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(
        data_dir=tmp_path / "sbx",
        port=0,
        queue_delay=4.0,
        records_per_second=5000.0,
        output_ready_delay=0.0,
    )
    with SandboxServer(settings) as server:
        api = Api(server)
        try:
            created = api.create(api.validated(chat_lines(5)))
        finally:
            api.close()
        result = subprocess.run(
            [cbatch_path(), "watch", created["id"], "--plain", "--interval", "0.25", "--max-interval", "2"],
            cwd=tmp_path, env=cbatch_env(server.base_url, tmp_path), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        polls = sum(
            1
            for method, path, _ in server.request_log
            if method == "GET" and path == f"/v2/batches/{created['id']}"
        )
    assert result.returncode == 0, result.stderr
    assert (
        "  queued  0/5 records" in result.stdout.splitlines()[0]
        and " completed: 5/5 records" in result.stdout
    )
    assert polls <= 8, f"{polls} polls in a 4 s queue: at a steady 0.25 s it would be 16"
