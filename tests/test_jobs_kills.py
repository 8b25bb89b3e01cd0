"""kill -9 a job at each step, then ``jobs resume``: no part doubled, no record lost; and ``jobs attach``.

The installed ``cbatch`` runs against a sandbox of the test's own. The moment
to kill it is found by watching what it does, never by a timer: the state
store's record of the job and its parts (each step written before it is
taken), or the sandbox's request log (the create call arriving, the list
polled once every part exists).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY
from tests.support.installed import cbatch_env, cbatch_path
from tests.support.kills import kill_when

pytestmark = pytest.mark.slow

LIMIT = 1_500_000
"""The dataset limit here: a 6 MB input is split into 5 parts, as a 6 GB one would be with 1.5 GB datasets."""
RECORDS = 2000


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    server = SandboxServer(
        SandboxSettings(
            data_dir=tmp_path / "sandbox", port=0, records_per_second=400.0, dataset_max_bytes=LIMIT,
            latency=0.02, output_ready_delay=0.0,
        )
    ).start()  # fmt: skip
    client = CohereClient(TEST_KEY, server.base_url)
    work = tmp_path / "a"
    work.mkdir()
    with open(work / "in.jsonl", "w") as fh:
        for i in range(RECORDS):
            body = {
                "messages": [{"role": "user", "content": f"question {i}: " + "lorem ipsum " * 250}]
            }
            fh.write(json.dumps({"custom_id": f"q{i:05d}", "body": body}) + "\n")
    try:
        yield {"server": server, "client": client, "cwd": work}
    finally:
        client.close()
        server.stop()


def start(world: dict[str, Any], *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    where = cwd or world["cwd"]
    return subprocess.Popen(
        [cbatch_path(), *args], cwd=where, env=cbatch_env(world["server"].base_url, where, CBATCH_DATASET_MAX_BYTES=str(LIMIT)),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def run(
    world: dict[str, Any], *args: str, cwd: Path | None = None, code: int = 0
) -> tuple[str, str]:
    proc = start(world, *args, cwd=cwd)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == code, f"exit {proc.returncode}\n{out}\n{err}"
    assert "Traceback" not in err
    return out, err


def store_rows(world: dict[str, Any], sql: str, cwd: Path | None = None) -> list[tuple[Any, ...]]:
    path = (cwd or world["cwd"]) / "state" / "state.sqlite3"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return list(db.execute(sql))
    except sqlite3.Error:
        return []  # the schema is still being made


def job_step(world: dict[str, Any]) -> str | None:
    rows = store_rows(world, "SELECT step FROM jobs")
    return rows[0][0] if rows else None


def part_steps(world: dict[str, Any], cwd: Path | None = None) -> list[str]:
    return [r[0] for r in store_rows(world, "SELECT step FROM job_parts ORDER BY part", cwd)]


def requests_to(world: dict[str, Any], method: str, path: str) -> int:
    return sum(
        1
        for m, p, _ in list(world["server"].request_log)
        if m == method and p.split("?")[0] == path
    )


def made(world: dict[str, Any], job_id: str) -> tuple[Counter[int], Counter[int]]:
    """Batches and input datasets the API holds for each part of the job."""
    client: CohereClient = world["client"]
    batches: Counter[int] = Counter()
    for batch in client.iter_batches(page_size=1000):
        lineage = naming.parse_batch_name(batch.name)[1]
        if lineage is not None and lineage.job_id == job_id:
            batches[lineage.part or 0] += 1
    datasets: Counter[int] = Counter()
    for dataset in client.iter_datasets():
        for part in range(1, 10):
            if dataset.name == naming.dataset_name("in", naming.Lineage(job_id=job_id, part=part)):
                datasets[part] += 1
    return batches, datasets


def every_id_once(world: dict[str, Any], job_id: str, cwd: Path) -> None:
    run(world, "jobs", "results", job_id, "-o", "results.jsonl", cwd=cwd)
    ids = Counter(
        json.loads(line)["custom_id"] for line in (cwd / "results.jsonl").read_text().splitlines()
    )
    assert set(ids) == {f"q{i:05d}" for i in range(RECORDS)} and set(ids.values()) == {1}


SPLIT = ("--model", "command-r", "--max-bytes-per-batch", str(LIMIT))


def test_kill_9_at_every_step_then_jobs_resume_finishes_with_nothing_doubled_or_lost(
    world: dict[str, Any],
) -> None:
    proc = start(world, "jobs", "create", "in.jsonl", *SPLIT, "--watch")
    kill_when(proc, lambda: job_step(world) == "splitting", "the split began")
    assert requests_to(world, "POST", "/v1/datasets") == 0, "killed mid-split: nothing was sent"
    assert part_steps(world) == [], "no part is planned until the whole file is checked"
    (job_id,) = (r[0] for r in store_rows(world, "SELECT id FROM jobs"))

    proc = start(world, "jobs", "resume", job_id)
    kill_when(proc, lambda: "uploaded" in part_steps(world), "a part was uploaded")
    parts = len(part_steps(world))
    assert parts == -(-(world["cwd"] / "in.jsonl").stat().st_size // LIMIT), (
        "a 6 MB input, 1.5 MB parts"
    )

    proc = start(world, "jobs", "resume", job_id)
    before = requests_to(world, "POST", "/v2/batches")
    kill_when(
        proc, lambda: requests_to(world, "POST", "/v2/batches") > before, "a create call arrived"
    )
    time.sleep(0.3)  # whatever the sandbox does with a request whose client died, it has done it

    proc = start(world, "jobs", "resume", job_id)
    kill_when(proc, lambda: part_steps(world).count("created") >= 2, "a part was recorded created")

    proc = start(world, "jobs", "resume", job_id)
    polls: list[int] = []

    def watching() -> bool:
        if part_steps(world) != ["created"] * parts:
            return False
        polls.append(requests_to(world, "GET", "/v2/batches"))
        return polls[-1] > polls[0]  # the list was polled once every part existed

    kill_when(proc, watching, "the watch polled the parts")
    _, err = run(world, "jobs", "resume", job_id)
    assert "uploaded as dataset" not in err and "created batch" not in err, (
        "the last run only watched"
    )
    assert f"job {job_id} completed: {RECORDS:,}/{RECORDS:,} records" in err
    batches, datasets = made(world, job_id)
    assert batches == Counter(dict.fromkeys(range(1, parts + 1), 1)), "one batch per part"
    assert datasets == Counter(dict.fromkeys(range(1, parts + 1), 1)), "one input dataset per part"
    every_id_once(world, job_id, world["cwd"])


def test_jobs_attach_with_an_empty_store_finishes_a_job_another_process_started(
    world: dict[str, Any], tmp_path: Path
) -> None:
    proc = start(world, "jobs", "create", "in.jsonl", *SPLIT, "--watch", "-q")
    kill_when(proc, lambda: part_steps(world).count("created") >= 1, "the first part was created")
    (job_id,) = (r[0] for r in store_rows(world, "SELECT id FROM jobs"))

    other = tmp_path / "b"
    other.mkdir()
    (other / "requests.jsonl").write_bytes((world["cwd"] / "in.jsonl").read_bytes())
    assert not (other / "state").exists()
    _, err = run(
        world,
        "jobs",
        "attach",
        job_id,
        "--file",
        "requests.jsonl",
        "--max-bytes-per-batch",
        str(LIMIT),
        cwd=other,
    )
    parts = len(part_steps(world))
    assert f"attached job {job_id}: {parts} parts, " in err
    assert f"job {job_id} completed" in err
    assert part_steps(world, other) == ["created"] * parts
    batches, datasets = made(world, job_id)
    assert batches == Counter(dict.fromkeys(range(1, parts + 1), 1)) and set(datasets.values()) == {
        1
    }
    every_id_once(world, job_id, other)


def test_a_job_killed_mid_split_resumes_to_its_end_with_its_records_and_step_right(
    world: dict[str, Any],
) -> None:
    proc = start(world, "jobs", "create", "in.jsonl", *SPLIT, "--watch")
    kill_when(proc, lambda: job_step(world) == "splitting", "the split began")
    (job_id,) = (r[0] for r in store_rows(world, "SELECT id FROM jobs"))
    _, err = run(world, "jobs", "resume", job_id, "--watch")
    assert "splitting" not in err, "the resumed split is reported as done"
    assert f"job {job_id} completed: {RECORDS:,}/{RECORDS:,} records" in err
    assert job_step(world) == "done", "a run that watched every part to its end marks the job done"


def test_the_input_deleted_while_jobs_create_runs_is_a_clear_error_and_nothing_is_sent(
    world: dict[str, Any],
) -> None:
    proc = start(world, "jobs", "create", "in.jsonl", *SPLIT)
    deadline = time.monotonic() + 60
    while job_step(world) != "split" and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.003)
    (world["cwd"] / "in.jsonl").unlink()  # checked and planned, not sent yet
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "a bug in cbatch" not in err
    assert err.count("error: ") == 1 and (
        "in.jsonl is gone: it was deleted or moved after cbatch began reading it" in err
        or "in.jsonl does not exist" in err  # when it is gone before the first part is read
    )
    assert requests_to(world, "POST", "/v1/datasets") == 0


def test_an_input_rewritten_while_jobs_create_runs_sends_nothing_that_was_not_checked(
    world: dict[str, Any], tmp_path: Path
) -> None:
    path: Path = world["cwd"] / "in.jsonl"
    proc = start(world, "jobs", "create", "in.jsonl", *SPLIT)
    deadline = time.monotonic() + 60
    while job_step(world) != "split" and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.003)
    proc.send_signal(signal.SIGSTOP)  # checked and planned: now the file changes under it
    try:
        data = path.read_bytes()
        with open(path, "r+b") as fh:  # in place, the same size: other custom_ids
            fh.write(data.replace(b'"custom_id": "q', b'"custom_id": "z'))
    finally:
        proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 5, err
    assert "Traceback" not in err and "in.jsonl changed after it was checked" in err
    assert "cbatch jobs resume" in err, "the error says how to go on"
    sent = [f.read_bytes() for f in (tmp_path / "sandbox").rglob("*") if f.is_file()]
    assert not any(b'"custom_id": "z' in body for body in sent), (
        "a record that was never checked was sent"
    )


def test_jobs_resume_refuses_an_input_rewritten_since_the_split_and_sends_none_of_it(
    world: dict[str, Any], tmp_path: Path
) -> None:
    path: Path = world["cwd"] / "in.jsonl"
    proc = start(world, "jobs", "create", "in.jsonl", *SPLIT)
    kill_when(proc, lambda: job_step(world) == "split", "the plan was recorded")
    (job_id,) = (r[0] for r in store_rows(world, "SELECT id FROM jobs"))
    path.write_bytes(path.read_bytes().replace(b'"custom_id": "q', b'"custom_id": "z'))
    _, err = run(world, "jobs", "resume", job_id, code=5)
    assert "in.jsonl changed after it was checked" in err and f"cbatch jobs resume {job_id}" in err
    sent = [f.read_bytes() for f in (tmp_path / "sandbox").rglob("*") if f.is_file()]
    assert not any(b'"custom_id": "z' in body for body in sent), (
        "a record that was never checked was sent"
    )
