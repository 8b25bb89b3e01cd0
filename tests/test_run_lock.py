"""Nothing sent twice on one machine: one run lock for every command that sends, and what a cancel stops.

Real processes of the installed ``cbatch`` race each other against a sandbox
of the test's own; the sandbox's batch list is the judge of what was made.
A job here is 60 small records cut into 6 parts of 10.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY
from tests.support.flows import chat_records, write_jsonl
from tests.support.installed import cbatch_env, cbatch_path
from tests.support.kills import kill_when

SPLIT = ("--model", "command-r", "--max-records-per-batch", "10")
MODEL = "command-r-08-2024"


@contextmanager
def sandbox(tmp_path: Path, **settings: Any) -> Iterator[dict[str, Any]]:
    server = SandboxServer(
        SandboxSettings(data_dir=tmp_path / "sandbox", port=0, output_ready_delay=0.0, **settings)
    ).start()
    client = CohereClient(TEST_KEY, server.base_url)
    work = tmp_path / "a"
    work.mkdir()
    write_jsonl(work / "in.jsonl", chat_records(60))
    try:
        yield {"server": server, "client": client, "cwd": work}
    finally:
        client.close()
        server.stop()


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Every request takes 50 ms and a dataset 0.3 s to validate: a send lasts long enough to race."""
    with sandbox(tmp_path, latency=0.05, validation_delay=0.3, queue_delay=0.5) as world:
        yield world


def start(world: dict[str, Any], *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    where = cwd or world["cwd"]
    return subprocess.Popen(
        [cbatch_path(), *args], cwd=where, env=cbatch_env(world["server"].base_url, where),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def store_rows(world: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    path = world["cwd"] / "state" / "state.sqlite3"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return list(db.execute(sql))
    except sqlite3.Error:
        return []


def part_steps(world: dict[str, Any]) -> list[str]:
    return [r[0] for r in store_rows(world, "SELECT step FROM job_parts ORDER BY part")]


def job_batches(world: dict[str, Any], job_id: str) -> Counter[tuple[int, int]]:
    """How many batches the sandbox holds for each (part, attempt) of the job."""
    found: Counter[tuple[int, int]] = Counter()
    for batch in world["client"].iter_batches(page_size=1000):
        lineage = naming.parse_batch_name(batch.name)[1]
        if lineage is not None and lineage.job_id == job_id:
            found[(lineage.part or 0, lineage.attempt)] += 1
    return found


def planned_job(world: dict[str, Any], parts: int = 6) -> str:
    """A job split into ``parts`` parts and killed before it sent any: what two resumes then race for."""
    split = ("--model", "command-r", "--max-records-per-batch", str(60 // parts))
    proc = start(world, "jobs", "create", "in.jsonl", *split)
    kill_when(proc, lambda: part_steps(world) == ["planned"] * parts, "the job was planned")
    ((job_id,),) = store_rows(world, "SELECT id FROM jobs")
    return str(job_id)


def busy_line(err: str, run: str, pid: int) -> None:
    """The one-line refusal names the run and the holder's pid and since when."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert lines[0].startswith(
        f"error: {run} is being sent by another cbatch on this machine (pid {pid}, since "
    ), err


def test_two_jobs_resume_at_once_one_sends_and_the_other_stops_naming_it(
    slow: dict[str, Any],
) -> None:
    job_id = planned_job(slow)
    first = start(slow, "jobs", "resume", job_id, "--no-watch")
    second = start(slow, "jobs", "resume", job_id, "--no-watch")
    outcomes = {proc.pid: finish(proc) for proc in (first, second)}
    codes = sorted(code for code, _, _ in outcomes.values())
    assert codes == [0, ExitCode.REFUSED], outcomes
    (loser,) = (pid for pid, (code, _, _) in outcomes.items() if code == ExitCode.REFUSED)
    (winner,) = (pid for pid in outcomes if pid != loser)
    busy_line(outcomes[loser][2], f"job {job_id}", winner)
    assert job_batches(slow, job_id) == Counter({(p, 1): 1 for p in range(1, 7)}), (
        "one batch per part"
    )


@contextmanager
def paused(proc: subprocess.Popen[str]) -> Iterator[None]:
    """``proc`` stopped (SIGSTOP) while the block runs: alive and holding its locks, whatever the machine's load."""
    proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGCONT)


def lock_held(world: dict[str, Any], proc: subprocess.Popen[str]) -> bool:
    """``proc`` holds a run lock: its record (pid, since) is in a lock file (a dead holder's stays behind)."""
    locks = world["cwd"] / "state" / "locks"
    return locks.exists() and any(
        f'"pid": {proc.pid},' in p.read_text() for p in locks.glob("*.lock")
    )


def test_jobs_retry_against_jobs_resume_stops_at_once_or_waits_with_wait_lock(
    tmp_path: Path,
) -> None:
    with sandbox(tmp_path, queue_delay=0.5, transient_fail_rate=0.3, seed=5) as world:
        job_id = planned_job(world)
        resume = start(world, "jobs", "resume", job_id)  # sends, then watches the parts
        wait_for(lambda: part_steps(world) == ["created"] * 6, resume, "every part was created")
        with paused(resume):
            code, _, err = finish(start(world, "jobs", "retry", job_id, "--pause", "0.05s"))
            assert code == ExitCode.REFUSED, err
            busy_line(err, f"job {job_id}", resume.pid)
            waiting = start(world, "jobs", "retry", job_id, "--wait-lock", "60s")
            time.sleep(0.5)
            assert waiting.poll() is None, "it waits for the holder"
        assert finish(resume)[0] == 0
        code, _, err = finish(waiting)
        assert code in (0, ExitCode.RECORDS_FAILED), err
        made = job_batches(world, job_id)
        assert set(made.values()) == {1}, f"one batch per part and attempt: {made}"
        assert max(attempt for _, attempt in made) >= 2, "the retry ran once the lock was free"


def test_wait_lock_that_runs_out_stops_with_the_holder_named(slow: dict[str, Any]) -> None:
    job_id = planned_job(slow)
    holder = start(slow, "jobs", "resume", job_id, "--no-watch")
    wait_for(lambda: lock_held(slow, holder), holder, "the resume took the lock")
    with paused(holder):
        began = time.monotonic()
        code, _, err = finish(start(slow, "jobs", "resume", job_id, "--wait-lock", "0.5s"))
        assert code == ExitCode.REFUSED and time.monotonic() - began >= 0.5
        busy_line(err, f"job {job_id}", holder.pid)
        assert "(waited 0.5 s)" in err
    assert finish(holder)[0] == 0
    assert job_batches(slow, job_id) == Counter({(p, 1): 1 for p in range(1, 7)})


def test_create_file_holds_the_lock_of_its_batch_name(slow: dict[str, Any]) -> None:
    create = ("create", "--file", "in.jsonl", "--model", "command-r", "--name", "nightly")
    first = start(slow, *create)
    wait_for(lambda: lock_held(slow, first), first, "the create took the lock")
    with paused(first):
        code, _, err = finish(start(slow, *create))
        assert code == ExitCode.REFUSED, err
        busy_line(err, "batch nightly", first.pid)
    first_code, _, first_err = finish(first)
    assert first_code == 0, first_err
    names = [b.name for b in slow["client"].iter_batches(page_size=100)]
    assert names.count("nightly") == 1


def work_folders(world: dict[str, Any]) -> set[Path]:
    base = world["cwd"] / "state" / "work"
    return set(base.glob("job-*")) | set(base.glob("retry-*")) if base.exists() else set()


def wait_for(condition: Any, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert proc.poll() is None, f"cbatch ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.003)


def test_a_killed_runs_part_file_is_swept_once_its_lock_is_free_and_kept_while_held(
    slow: dict[str, Any],
) -> None:
    cwd = slow["cwd"]
    killed = start(slow, "jobs", "create", "in.jsonl", *SPLIT)
    kill_when(
        killed,
        lambda: any(any(folder.glob("part-*.jsonl")) for folder in work_folders(slow)),
        "a part file was written",
    )
    (left,) = work_folders(slow)
    assert list(left.glob("part-*.jsonl")), f"kill -9 left the part file: {list(left.iterdir())}"
    ((job_id,),) = store_rows(slow, "SELECT id FROM jobs")

    holder = start(slow, "jobs", "resume", str(job_id), "--no-watch")
    wait_for(lambda: work_folders(slow) - {left}, holder, "the resume made its work folder")
    holder.send_signal(signal.SIGSTOP)  # alive, holding its lock, as a slow upload is
    try:
        wait_for(lambda: not left.exists(), holder, "the dead run's folder was swept")
        (held,) = work_folders(slow)
        os.utime(held, (time.time() - 3 * 86_400,) * 2)  # old, but alive: age says nothing
        write_jsonl(cwd / "other.jsonl", chat_records(5))
        code, _, err = finish(start(slow, "jobs", "create", "other.jsonl", "--model", "command-r"))
        assert code == 0, err
        assert held.exists(), "the folder of a live run is kept"
    finally:
        holder.send_signal(signal.SIGCONT)
    assert finish(holder)[0] == 0
    assert work_folders(slow) == set(), "each run removes its own folder"
    assert job_batches(slow, str(job_id)) == Counter({(p, 1): 1 for p in range(1, 7)})


def test_jobs_cancel_during_jobs_create_stops_the_sender_no_batch_after_it(
    tmp_path: Path,
) -> None:
    with sandbox(tmp_path, latency=0.05, validation_delay=0.3, queue_delay=30.0) as slow:
        cancel_during_create(slow)


def cancel_during_create(slow: dict[str, Any]) -> None:
    sender = start(slow, "jobs", "create", "in.jsonl", *SPLIT, "-q")
    assert sender.stdout is not None
    job_id = sender.stdout.readline().strip()  # printed at once, before anything is sent
    wait_for(lambda: "created" in part_steps(slow), sender, "the first part was created")
    code, _, err = finish(start(slow, "jobs", "cancel", job_id))
    assert code == 0, err
    at_cancel = {b.id: b for b in slow["client"].iter_batches(page_size=100)}
    assert f"job {job_id} canceled: " in err

    code, _, err = finish(sender)
    assert code == ExitCode.REFUSED, err
    assert f"error: job {job_id} was canceled: nothing more is sent" in err
    after = {b.id: b for b in slow["client"].iter_batches(page_size=100)}
    assert set(after) == set(at_cancel), "no batch was created after the cancel"
    made = job_batches(slow, job_id)
    assert 1 <= len(made) < 6 and set(made.values()) == {1}, f"one batch per part at most: {made}"
    assert all(b.status.label in ("canceling", "canceled") for b in after.values()), [
        b.status.label for b in after.values()
    ]


def input_datasets(world: dict[str, Any]) -> int:
    return sum(
        not d.dataset_type.endswith("-output") for d in world["client"].list_datasets(limit=1000)
    )


def test_attach_with_other_split_options_than_the_uploaded_parts_is_refused_before_any_upload(
    tmp_path: Path,
) -> None:
    """Uploaded, not created: the parts' validated row counts are compared with the plan (issue 23 case 4)."""
    with sandbox(tmp_path, validation_delay=0.5) as world:
        made_with = ("--model", "command-r", "--max-records-per-batch", "20")
        proc = start(world, "jobs", "create", "in.jsonl", *made_with)
        kill_when(proc, lambda: part_steps(world) == ["uploaded"] * 3, "every part was uploaded")
        ((job_id,),) = store_rows(world, "SELECT id FROM jobs")
        uploads = input_datasets(world)

        other = tmp_path / "b"
        other.mkdir()
        (other / "in.jsonl").write_bytes((world["cwd"] / "in.jsonl").read_bytes())
        attach = ("jobs", "attach", str(job_id), "--file", "in.jsonl", "--model", "command-r")
        code, _, err = finish(start(world, *attach, "--max-records-per-batch", "10", cwd=other))
        assert code == ExitCode.REFUSED, err
        assert "part 1 holds 20 records on the API (dataset " in err and "and 10 in the plan" in err
        assert input_datasets(world) == uploads, "nothing was uploaded"
        assert job_batches(world, str(job_id)) == Counter(), "nothing was created"

        code, _, err = finish(start(world, *attach, "--max-records-per-batch", "20", "--no-watch",
                                    cwd=other))  # fmt: skip
        assert code == 0, err
        assert job_batches(world, str(job_id)) == Counter({(p, 1): 1 for p in range(1, 4)})
        assert input_datasets(world) == uploads, "the uploaded parts were used"


def test_jobs_cancel_during_jobs_retry_stops_the_retries_no_batch_after_it(tmp_path: Path) -> None:
    settings = {"latency": 0.02, "validation_delay": 0.3, "transient_fail_rate": 0.5, "seed": 3}
    with sandbox(tmp_path, **settings) as world:
        job_id = planned_job(world, parts=2)
        code, _, err = finish(start(world, "jobs", "resume", job_id))
        assert code == 0, err
        retrying = start(world, "jobs", "retry", job_id)
        wait_for(
            lambda: (
                [r[0] for r in store_rows(world, "SELECT step FROM attempts ORDER BY rowid")][:1]
                == ["created"]
                and len(store_rows(world, "SELECT step FROM attempts")) == 2
            ),
            retrying,
            "part 1's retry was created and part 2's is being uploaded",
        )
        with paused(retrying):  # between two steps, whatever the machine's load
            code, _, err = finish(start(world, "jobs", "cancel", job_id))
            assert code == 0, err
        at_cancel = {b.id for b in world["client"].iter_batches(page_size=100)}
        code, _, err = finish(retrying)
        assert code == ExitCode.REFUSED, err
        assert f"error: job {job_id} was canceled: nothing more is sent" in err
        assert {b.id for b in world["client"].iter_batches(page_size=100)} == at_cancel
        retries = {part for (part, attempt) in job_batches(world, job_id) if attempt == 2}
        assert retries == {1}, "part 1's retry was made before the cancel, part 2's never"


def test_jobs_cancel_ends_a_wait_for_storage_room(tmp_path: Path) -> None:
    settings = {"org_max_bytes": 3000, "queue_delay": 60.0}
    with sandbox(tmp_path, **settings) as world:
        cwd = world["cwd"]
        sender = subprocess.Popen(
            [cbatch_path(), "jobs", "create", "in.jsonl", "--model", "command-r",
             "--max-records-per-batch", "15", "-q"],
            cwd=cwd, env=cbatch_env(world["server"].base_url, cwd, CBATCH_ORG_MAX_BYTES="3000"),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert sender.stdout is not None
        job_id = sender.stdout.readline().strip()
        wait_for(
            lambda: part_steps(world) == ["created", "created", "planned", "planned"],
            sender,
            "two parts run and the third waits for room",
        )
        code, _, err = finish(start(world, "jobs", "cancel", job_id))
        assert code == 0, err
        try:
            _, err = sender.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            sender.kill()
            pytest.fail("the sender went on waiting for room after the cancel")
        assert sender.returncode == ExitCode.REFUSED, err
        assert f"error: job {job_id} was canceled: nothing more is sent" in err
        assert part_steps(world) == ["created", "created", "planned", "planned"]


def test_two_threads_creating_under_one_key_make_one_batch_and_one_dataset(tmp_path: Path) -> None:
    """The run lock holds between the threads of one program, not only between processes.

    The second call starts while the first, in another thread, holds the key's run between its
    upload and its create (joined from the first's own progress callback, so the two overlap
    whatever the timing): it stops at once naming that thread, as a second process would stop
    naming the first; nothing more is uploaded or created, and the key called again afterwards
    gives back the first call's run.
    """
    import threading

    import cohere_batch_cli as cb
    from tests.support.keyed import made_for

    key = "two-threads-one-key"
    second: list[object] = []
    with sandbox(tmp_path) as world:
        server, requests = world["server"], world["cwd"] / "in.jsonl"
        with cb.Client(TEST_KEY, base_url=server.base_url) as other:

            def create_in_another_thread() -> None:
                try:
                    second.append(other.create(requests, model=MODEL, idempotency_key=key))
                except cb.CbatchError as exc:
                    second.append(exc)

            def between_upload_and_create(event: cb.Event) -> None:
                if event.kind == "step_done" and (event.description or "").startswith("uploading"):
                    thread = threading.Thread(target=create_in_another_thread)
                    thread.start()
                    thread.join()

            with cb.Client(
                TEST_KEY, base_url=server.base_url, on_event=between_upload_and_create
            ) as first_client:
                first = first_client.create(requests, model=MODEL, idempotency_key=key)
            batches, datasets = made_for(server, key)
            again = other.create(requests, model=MODEL, idempotency_key=key)
    (refused,) = second
    assert isinstance(refused, cb.NotReady), refused
    assert refused.exit_code == ExitCode.REFUSED
    assert "is being sent by another thread of this program" in str(refused)
    assert batches == [first.id] and len(datasets) == 1  # one of each, the first call's
    assert again.id == first.id


def test_a_programs_threads_take_a_run_one_at_a_time_and_its_holder_takes_it_again(
    tmp_path: Path,
) -> None:
    """Re-entrant for the thread that holds it (a command's tasks take their run again); another
    thread stops at once naming it, or, given a wait, goes on once the holder lets go."""
    import threading

    from cohere_batch_cli.errors import RunBusy
    from cohere_batch_cli.state.runlock import run_lock

    said: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with run_lock(tmp_path, "batch nightly"), run_lock(tmp_path, "batch nightly"):
            holding.set()
            release.wait()
            said.append("the holder is done")

    def waiter() -> None:
        with run_lock(tmp_path, "batch nightly", wait=600):
            said.append("the waiter went on")

    first = threading.Thread(target=holder, name="holder")
    first.start()
    holding.wait()
    with pytest.raises(RunBusy, match=r"another thread of this program \(holder\)"):
        with run_lock(tmp_path, "batch nightly"):
            said.append("never")
    second = threading.Thread(target=waiter)
    second.start()
    release.set()
    first.join()
    second.join()
    assert said == ["the holder is done", "the waiter went on"]
    with run_lock(tmp_path, "batch nightly"):  # let go by both: free again
        pass
