"""The watch engine: events, pacing, outages and request counts, on a fake clock.

Most tests run the real ``CohereClient`` against ``tests/support/batch_server.py``
over loopback, with a fake clock whose sleep moves the scripted batches one
step on, so a "five-minute" watch takes milliseconds and requests are counted
at the server. Pure arithmetic (exit codes, rate and ETA) is tested directly;
one test runs against the real sandbox at its own pace.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.errors import AuthenticationError, NotFoundError, ServerError
from cohere_batch_cli.api.models import Batch, BatchStatus
from cohere_batch_cli.api.retry import RetryPolicy
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.watcher import (
    AllDone,
    BatchDone,
    NotFound,
    Progress,
    Recovered,
    Snapshot,
    StatusChanged,
    TimedOut,
    TransientError,
    Watcher,
    WatchOptions,
    _Tracked,
    outcome_exit_code,
)
from tests.support.batch_server import BatchServer, batch_state

KEY = "test-key-watcher"


class FakeTime:
    """A clock that only moves when the engine sleeps; each sleep advances the server."""

    def __init__(self, server: BatchServer | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.server = server

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.server is not None:
            self.server.advance()


@pytest.fixture
def server() -> Iterator[BatchServer]:
    srv = BatchServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: BatchServer) -> Iterator[CohereClient]:
    # No client-level retries: every failure reaches the engine, and counts stay exact.
    with CohereClient(KEY, server.base_url, retry=RetryPolicy(retries=0)) as c:
        yield c


def make_watcher(source: Any, ids: list[str], fake: FakeTime, **options: Any) -> Watcher:
    options.setdefault("jitter", 0.0)
    return Watcher(
        source,
        ids,
        WatchOptions(**options),
        clock=fake.clock,
        sleep=fake.sleep,
        rng=random.Random(7),
    )


def events_of(watcher: Watcher) -> Iterator[Any]:
    """The events one by one, from the rounds every renderer consumes."""
    for events in watcher.rounds():
        yield from events


def kinds(events: list[Any]) -> list[str]:
    return [e.kind for e in events]


# -- pure parts -----------------------------------------------------------------------


def _b(status: str) -> Batch:
    return Batch.from_api({"id": status, "status": f"BATCH_STATUS_{status}"})


@pytest.mark.parametrize(
    ("statuses", "no_exit_status", "code"),
    [
        (["COMPLETED"], False, ExitCode.OK),
        (["COMPLETED", "COMPLETED"], False, ExitCode.OK),
        (["COMPLETED", "FAILED"], False, ExitCode.BATCH_FAILED),
        (["CANCELED", "COMPLETED"], False, ExitCode.BATCH_CANCELED),
        (["CANCELLED"], False, ExitCode.BATCH_CANCELED),  # the notebook's spelling
        (["CANCELED", "FAILED"], False, ExitCode.BATCH_FAILED),  # a failure outranks a cancel
        (["CANCELED", "FAILED"], True, ExitCode.OK),
        (["COMPLETED", "IN_PROGRESS"], False, ExitCode.TIMEOUT),
        (["IN_PROGRESS"], True, ExitCode.TIMEOUT),  # --no-exit-status forgives outcomes, not waits
        (["SOMETHING_NEW"], False, ExitCode.TIMEOUT),  # unknown: not terminal
    ],
)
def test_outcome_exit_code(statuses: list[str], no_exit_status: bool, code: ExitCode) -> None:
    assert outcome_exit_code([_b(s) for s in statuses], no_exit_status) == code


def test_rate_and_eta_come_from_the_recent_window() -> None:
    tracked = _Tracked("b")
    tracked.batch = Batch.from_api(
        {"status": "BATCH_STATUS_IN_PROGRESS", "num_records": 1000, "num_successful_records": 300}
    )
    tracked.add_sample(0.0, 100, window=60)
    assert tracked.rate() is None and tracked.eta() is None  # one sample: nothing to measure
    tracked.add_sample(10.0, 300, window=60)
    assert tracked.rate() == pytest.approx(20.0)
    assert tracked.eta() == pytest.approx(35.0)  # 700 left at 20/s
    # old samples leave the window, so a stall shows as a falling rate, then none
    tracked.add_sample(80.0, 300, window=60)
    tracked.add_sample(100.0, 300, window=60)
    assert tracked.rate() == 0.0 and tracked.eta() is None
    # counters going back (a reset) restart the measurement instead of a negative rate
    tracked.add_sample(110.0, 0, window=60)
    assert tracked.rate() is None


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        WatchOptions(interval=5, max_interval=1)
    with pytest.raises(ValueError):
        WatchOptions(timeout=0)


def test_fatal_errors_end_the_watch_at_once() -> None:
    class Refusing:
        calls = 0

        def get_batch(self, batch_id: str, *, timeout: float | None = None) -> Batch:
            self.calls += 1
            raise AuthenticationError("HTTP 401: bad key", status_code=401)

        def list_batches_page(self, **kwargs: Any) -> tuple[list[Batch], str | None]:
            raise AssertionError("not used for one batch")

    source, fake = Refusing(), FakeTime()
    with pytest.raises(AuthenticationError):
        list(events_of(make_watcher(source, ["a"], fake)))
    assert source.calls == 1 and fake.sleeps == []


# -- against the scripted server ---------------------------------------------------


def test_one_batch_from_queued_to_completed(server: BatchServer, client: CohereClient) -> None:
    server.add(
        "b1",
        batch_state("queued"),
        batch_state("in_progress", ok=20),
        batch_state("in_progress", ok=50, failed=2),
        batch_state("completed", ok=98, failed=2, output_dataset_id="out-1"),
    )
    fake = FakeTime(server)
    watcher = make_watcher(client, ["b1"], fake)
    events = list(events_of(watcher))
    assert kinds(events) == [
        "snapshot",
        "status_changed",
        "progress",
        "status_changed",
        "batch_done",
        "all_done",
    ]
    assert isinstance(events[1], StatusChanged)
    assert (events[1].old, events[1].new) == (BatchStatus.QUEUED, BatchStatus.IN_PROGRESS)
    progress = events[2]
    assert isinstance(progress, Progress)
    # 20 -> 52 processed over one 2 s pause: the time queued does not count (it halved the rate)
    assert progress.rate == pytest.approx(16.0)
    assert progress.eta == pytest.approx(48 / 16.0)
    done = events[-1]
    assert isinstance(done, AllDone) and done.exit_code == ExitCode.OK == watcher.exit_code
    assert done.batches[0].output_dataset_id == "out-1"
    # one GET per round, no list for a single batch
    assert server.count("get") == 4 == watcher.stats.gets and server.count("list") == 0


def test_a_batch_already_terminal_answers_in_one_request(
    server: BatchServer, client: CohereClient
) -> None:
    server.add("f", batch_state("failed", ok=0, failed=100, status_reason="all records failed"))
    fake = FakeTime(server)
    rounds = list(make_watcher(client, ["f"], fake).rounds())
    assert len(rounds) == 1 and kinds(rounds[0]) == ["snapshot", "batch_done", "all_done"]
    assert rounds[0][-1].exit_code == ExitCode.BATCH_FAILED  # type: ignore[union-attr]
    assert fake.sleeps == [] and len(server.requests) == 1


def test_pace_is_quick_while_moving_and_backs_off_while_queued_or_idle(
    server: BatchServer, client: CohereClient
) -> None:
    queued = [batch_state("queued")] * 6
    moving = [batch_state("in_progress", total=1000, ok=n) for n in (10, 20, 30)]
    idle = [batch_state("in_progress", total=1000, ok=30)] * 4
    server.add("p", *queued, *moving, *idle, batch_state("completed", total=1000, ok=1000))
    fake = FakeTime(server)
    events = list(events_of(make_watcher(client, ["p"], fake, interval=1.0, max_interval=10.0)))
    assert events[-1].exit_code == ExitCode.OK
    # first sight counts as movement; then QUEUED: doubling to the cap; moving: back to
    # the interval; idle: x1.5
    assert fake.sleeps[:6] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert fake.sleeps[6:9] == [1.0, 1.0, 1.0]
    assert fake.sleeps[9:12] == [1.5, 2.25, 3.375]


def test_pace_stays_within_bounds_with_jitter(server: BatchServer, client: CohereClient) -> None:
    server.add("j", *[batch_state("queued")] * 30, batch_state("completed"))
    fake = FakeTime(server)
    list(events_of(make_watcher(client, ["j"], fake, interval=2.0, max_interval=5.0, jitter=0.3)))
    assert all(2.0 <= s <= 5.0 for s in fake.sleeps)
    assert len(set(fake.sleeps)) > 3  # jitter: not in lockstep


def test_pace_is_shortened_to_the_eta(server: BatchServer, client: CohereClient) -> None:
    states = [batch_state("in_progress", total=1000, ok=n) for n in (0, 100, 100, 100)]
    server.add("e", *states, batch_state("completed", total=1000, ok=1000))
    fake = FakeTime(server)
    list(events_of(make_watcher(client, ["e"], fake, interval=1.0, max_interval=100.0)))
    # 100 records in 1 s, then idle: the rate decays as the window keeps only fresh samples,
    # and the pause grows x1.5 from the interval but never past the ETA estimate
    assert fake.sleeps[0] == 1.0
    assert all(s <= 10.0 for s in fake.sleeps)


def test_an_outage_is_reported_backed_off_and_survived(
    server: BatchServer, client: CohereClient
) -> None:
    server.add(
        "o",
        batch_state("in_progress", ok=10),
        batch_state("in_progress", ok=40),
        batch_state("completed", ok=100),
    )
    fake = FakeTime(server)
    watcher = make_watcher(client, ["o"], fake, interval=1.0, max_interval=30.0)
    rounds = watcher.rounds()
    assert kinds(next(rounds)) == ["snapshot"]
    server.fail_next(1, "503")
    server.fail_next(1, "reset")
    server.fail_next(1, "html")
    server.fail_next(1, "429")
    events = [e for r in rounds for e in r]
    errors = [e for e in events if isinstance(e, TransientError)]
    assert [type(e.error).__name__ for e in errors] == [
        "ServerError",
        "NetworkError",
        "UnexpectedResponseError",
        "RateLimitError",
    ]
    assert [e.retry_in for e in errors] == [1.0, 2.0, 4.0, 8.0]  # doubling from the interval
    assert [e.down_for for e in errors] == [0.0, 1.0, 3.0, 7.0]
    recovered = [e for e in events if isinstance(e, Recovered)]
    assert len(recovered) == 1 and recovered[0].down_for == 15.0
    assert events[-1].exit_code == ExitCode.OK  # type: ignore[union-attr]


def test_a_lasting_outage_reraises_the_last_error(
    server: BatchServer, client: CohereClient
) -> None:
    server.add("d", batch_state("in_progress", ok=10))
    fake = FakeTime(server)
    server.fail_next(1000, "503")
    seen: list[Any] = []
    with pytest.raises(ServerError):
        for event in events_of(
            make_watcher(client, ["d"], fake, interval=1.0, max_interval=8.0, outage_limit=60.0)
        ):
            seen.append(event)
    assert all(isinstance(e, TransientError) for e in seen)
    assert seen[-1].down_for < 60.0 <= fake.now - 1000.0
    assert max(e.retry_in for e in seen) == 8.0  # backoff capped by --max-interval


def test_timeout_leaves_the_batch_running_and_bounds_each_request(
    server: BatchServer, client: CohereClient
) -> None:
    server.add("t", batch_state("in_progress", total=10**6, ok=1))
    fake = FakeTime(server)
    timeouts: list[float | None] = []

    class Recording:
        def get_batch(self, batch_id: str, *, timeout: float | None = None) -> Batch:
            timeouts.append(timeout)
            return client.get_batch(batch_id, timeout=timeout)

        def list_batches_page(self, **kwargs: Any) -> tuple[list[Batch], str | None]:
            raise AssertionError("not used for one batch")

    watcher = make_watcher(Recording(), ["t"], fake, interval=2.0, max_interval=4.0, timeout=9.0)
    events = list(events_of(watcher))
    last = events[-1]
    assert (
        isinstance(last, TimedOut)
        and last.pending_ids == ("t",)
        and last.exit_code == ExitCode.TIMEOUT
    )
    assert fake.now - 1000.0 == pytest.approx(9.0)  # the last pause was cut to the deadline
    left = [9.0 - (t - 1000.0) for t in (1000.0, 1002.0, 1005.0, 1009.0)]
    assert timeouts[0] == pytest.approx(9.0)
    assert all(t is not None and t <= 9.0 for t in timeouts)
    assert timeouts == pytest.approx(left[: len(timeouts)])


def test_a_new_batch_not_found_yet_is_retried_then_seen(
    server: BatchServer, client: CohereClient
) -> None:
    server.add("n", batch_state("queued"), batch_state("completed"), absent_steps=2)
    fake = FakeTime(server)
    events = list(events_of(make_watcher(client, ["n"], fake, interval=2.0)))
    assert kinds(events)[0] == "snapshot" and events[-1].exit_code == ExitCode.OK
    assert fake.sleeps[:2] == [1.0, 1.0]  # quick retries while it is missing


def test_a_batch_that_never_appears_is_reported_and_dropped(
    server: BatchServer, client: CohereClient
) -> None:
    fake = FakeTime(server)
    events = list(events_of(make_watcher(client, ["ghost"], fake, not_found_grace=5.0)))
    [gone] = [e for e in events if isinstance(e, NotFound)]
    assert gone.batch_id == "ghost" and isinstance(gone.error, NotFoundError)
    assert isinstance(events[-1], AllDone) and events[-1].exit_code == ExitCode.NOT_FOUND
    assert events[-1].not_found == ("ghost",)
    assert fake.now - 1000.0 >= 5.0 and server.count("get") == 6


def test_a_missing_batch_is_dropped_at_once_and_the_others_are_followed(
    server: BatchServer, client: CohereClient
) -> None:
    """GOOD MISSING: the missing id is reported when its grace ends, the good one to its end."""
    server.add(
        "good",
        *[batch_state("in_progress", ok=k) for k in range(0, 100, 5)],
        batch_state("completed", ok=100),
    )
    fake = FakeTime(server)
    watcher = make_watcher(client, ["good", "ghost"], fake, interval=1.0, not_found_grace=3.0)
    timeline = [(fake.now - 1000.0, e) for round_ in watcher.rounds() for e in round_]
    [when] = [t for t, e in timeline if isinstance(e, NotFound)]
    assert 3.0 <= when < 5.0, "reported as soon as the grace period ended"
    done = [e for _, e in timeline if isinstance(e, BatchDone)]
    assert [d.batch.id for d in done] == ["good"] and timeline[-1][0] > when
    assert timeline[-1][1].exit_code == ExitCode.NOT_FOUND  # 4 outranks the good batch's 0


@pytest.mark.parametrize(
    ("ending", "expected"),
    [("failed", ExitCode.NOT_FOUND), ("completed", ExitCode.NOT_FOUND)],
)
def test_not_found_outranks_how_the_others_ended(
    server: BatchServer, client: CohereClient, ending: str, expected: int
) -> None:
    server.add("b", batch_state("in_progress"), batch_state(ending))
    fake = FakeTime(server)
    events = list(events_of(make_watcher(client, ["b", "ghost"], fake, not_found_grace=2.0)))
    assert events[-1].exit_code == expected


def test_a_list_that_is_not_newest_first_is_not_trusted(
    server: BatchServer, client: CohereClient
) -> None:
    """The API does not document the direction of order_by: oldest first must still work."""
    ids = [f"o{i}" for i in range(6)]
    for n, batch_id in enumerate(ids):
        server.add(
            batch_id,
            *[batch_state("in_progress", ok=k) for k in range(0, 10 * (n + 2), 10)],
            batch_state("completed", ok=100),
        )
    server.others = 300  # older batches first: the watched ones are far down the list
    server.oldest_first = True
    fake = FakeTime(server)
    watcher = make_watcher(client, ids, fake)
    events = list(events_of(watcher))
    assert events[-1].exit_code == ExitCode.OK
    assert sorted(e.batch.id for e in events if isinstance(e, BatchDone)) == sorted(ids)
    kinds_seen = [kind for _, kind in server.requests]
    last_list = len(kinds_seen) - 1 - kinds_seen[::-1].index("list")
    # Pages of equal stamps look newest first; the first page that shows another order ends the lists.
    assert server.count("list") < watcher.stats.rounds
    assert kinds_seen[last_list + 1 :] and set(kinds_seen[last_list + 1 :]) == {"get"}
    assert len(kinds_seen[last_list + 1 :]) >= 2 * len(ids), (
        "the rest of the watch was GETs, no list"
    )


def test_many_batches_are_polled_with_one_list_request_per_round(
    server: BatchServer, client: CohereClient
) -> None:
    ids = [f"m{i}" for i in range(8)]
    for n, batch_id in enumerate(ids):
        server.add(
            batch_id,
            *[batch_state("in_progress", ok=k) for k in range(0, 10 * (n + 1), 10)],
            batch_state("completed", ok=100),
        )
    fake = FakeTime(server)
    watcher = make_watcher(client, ids, fake)
    events = list(events_of(watcher))
    assert events[-1].exit_code == ExitCode.OK
    assert sum(isinstance(e, BatchDone) for e in events) == 8
    rounds = watcher.stats.rounds
    # 8 left until the end: the list serves every round; at most 3 left: GETs take over
    assert server.count("list") < rounds <= 9
    assert server.count("get") <= 3 * (rounds - server.count("list"))
    assert all("order_by=updated_at" in path for path, kind in server.requests if kind == "list")


def test_list_pages_stop_at_the_oldest_update_seen_and_fall_back_to_get(
    server: BatchServer, client: CohereClient
) -> None:
    ids = [f"q{i}" for i in range(5)]
    for batch_id in ids:
        server.add(batch_id, *[batch_state("queued")] * 3, batch_state("completed"))
    server.others = 250  # busy account: 250 batches updated more recently than ours
    server.hidden_from_list.add("q4")  # a list that misses one: GET must fill the gap
    fake = FakeTime(server)
    watcher = make_watcher(client, ids, fake)
    rounds = watcher.rounds()
    first = next(rounds)
    assert sum(isinstance(e, Snapshot) for e in first) == 5
    # page size 100: others fill pages 1-3, ours are on page 3 at the first round
    assert server.count("list") == 3 and server.count("get") == 1
    before = len(server.requests)
    second = next(rounds)
    assert second == []  # nothing changed
    lists = [p for p, k in server.requests[before:] if k == "list"]
    # pages 1-3 again (ours are older than 250 others), and the hidden one by GET
    assert len(lists) == 3 and server.count("get") == 2
    assert "page_size=100" in lists[0] and "page_token" not in lists[0]
    for _ in rounds:
        pass
    assert watcher.exit_code == ExitCode.OK


def test_list_paging_stops_when_pages_are_older_than_every_update_seen(
    server: BatchServer, client: CohereClient
) -> None:
    ids = [f"s{i}" for i in range(4)]
    for batch_id in ids:
        server.add(
            batch_id,
            batch_state("in_progress", ok=1),
            batch_state("in_progress", ok=1),
            batch_state("completed"),
        )
    server.hidden_from_list.add("s3")
    server.others = 0
    for i in range(300):  # old, idle batches in the account
        server.add(f"old-{i}", batch_state("completed"))
    server.advance()  # ours are now newer than the old ones... except they did not change
    fake = FakeTime(server)
    watcher = make_watcher(client, ids, fake)
    rounds = watcher.rounds()
    next(rounds)
    before = server.count("list")
    next(rounds)  # s3 never shows in the list: paging stops once pages pass its last update
    assert server.count("list") - before <= 4
    for _ in rounds:
        pass
    assert watcher.exit_code == ExitCode.OK


# -- against the real sandbox -----------------------------------------------------------


def test_real_sandbox_batches_end_completed_and_failed(sandbox: Any, tmp_path: Path) -> None:
    from tests.conftest import TEST_KEY
    from tests.support.flows import client_for, make_batch

    with client_for(sandbox, TEST_KEY) as real:
        good = make_batch(real, tmp_path, count=40, name="watch-good")
        bad = make_batch(real, tmp_path, count=3, fail={0, 1, 2}, name="watch-bad")
        watcher = Watcher(real, [good.id, bad.id], WatchOptions(interval=0.05, max_interval=0.2))
        events = list(events_of(watcher))
    done = {e.batch.id: e for e in events if isinstance(e, BatchDone)}
    assert (
        done[good.id].batch.status == BatchStatus.COMPLETED
        and done[good.id].batch.output_dataset_id
    )
    assert (
        done[bad.id].batch.status == BatchStatus.FAILED
        and done[bad.id].exit_code == ExitCode.BATCH_FAILED
    )
    assert watcher.exit_code == ExitCode.BATCH_FAILED
