"""Jobs: one input split over several datasets and batches of a sandbox with small limits, run as one.

The sandbox keeps the real service's behaviour with its limits made small
(a dataset of a few kilobytes), so a file of a few hundred records is split
the way a 20 GB one would be; some records fail or go missing on purpose,
and the job's retries send them again until ``jobs results`` holds every
input ``custom_id`` exactly once. A job is made, retried and read through the Python API
in-process; its views (``jobs get``, ``jobs list``, ``jobs watch``), ``jobs resume``,
``jobs prune`` and the flags' refusals through ``cbatch``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.errors import InputRejected
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from cohere_batch_cli.tasks.jobs_split import plan_split
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, write_jsonl
from tests.support.quiet import nothing_printed

LIMIT = 4000
"""The sandbox's dataset limit in these tests, in bytes: about 45 records."""


@pytest.fixture
def small(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A sandbox with a 4 KB dataset limit that fails and loses some records, and cbatch pointed at it."""
    server = SandboxServer(
        SandboxSettings(
            data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0, dataset_max_bytes=LIMIT,
            transient_fail_rate=0.15, missing_rate=0.05, seed=11, output_ready_delay=0.0,
        )
    ).start()  # fmt: skip
    client = CohereClient(TEST_KEY, server.base_url)
    cli = Cli(server.base_url, TEST_KEY)
    try:
        yield {"server": server, "client": client, "cli": cli}
    finally:
        client.close()
        server.stop()


def limited(cli: Cli, *args: str, exit_code: int = 0) -> Any:
    return cli(*args, exit_code=exit_code, env={"CBATCH_DATASET_MAX_BYTES": str(LIMIT)})


def limited_client(small: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> cb.Client:
    """The Python API pointed at the small sandbox, with its dataset limit."""
    monkeypatch.setenv("CBATCH_DATASET_MAX_BYTES", str(LIMIT))
    with nothing_printed():
        return cb.Client(TEST_KEY, base_url=small["server"].base_url)


def job_batches(client: CohereClient, job_id: str) -> Counter[tuple[int, int]]:
    """How many batches the API holds for each (part, attempt) of a job."""
    found: Counter[tuple[int, int]] = Counter()
    for batch in client.iter_batches(page_size=1000):
        lineage = naming.parse_batch_name(batch.name)[1]
        if lineage is not None and lineage.job_id == job_id:
            found[(lineage.part or 0, lineage.attempt)] += 1
    return found


# -- the split ------------------------------------------------------------------------------


def test_the_split_follows_record_boundaries_and_both_limits(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", chat_records(100))
    data = path.read_bytes()
    plan = plan_split(path, None, max_bytes=1500, max_records=12)
    assert plan.records == 100 and sum(p.records for p in plan.parts) == 100
    assert plan.parts[0].start == 0 and plan.parts[-1].stop == len(data)
    for before, after in zip(plan.parts, plan.parts[1:], strict=False):
        assert before.stop == after.start
    for part in plan.parts:
        chunk = data[part.start : part.stop]
        assert chunk.endswith(b"\n") and chunk.count(b"\n") == part.records  # whole records only
        assert part.size <= 1500 and part.records <= 12
    by_records = plan_split(path, None, max_bytes=10**9, max_records=30)
    assert [p.records for p in by_records.parts] == [30, 30, 30, 10]


def test_a_custom_id_used_in_two_parts_is_refused_before_anything_is_planned(
    tmp_path: Path,
) -> None:
    records = chat_records(40)
    records[35]["custom_id"] = records[2]["custom_id"]  # far apart: different parts
    path = write_jsonl(tmp_path / "in.jsonl", records)
    told: list[str] = []
    with pytest.raises(InputRejected, match=r"1 problem; nothing was uploaded"):
        plan_split(path, None, max_bytes=10**9, max_records=10, problems_out=told.append)
    assert told == [f'{path}:36: duplicate custom_id "{records[2]["custom_id"]}" (first on line 3)']


def test_the_check_in_two_worker_processes_plans_what_one_does_and_finds_duplicates_across_ranges(
    tmp_path: Path,
) -> None:
    records = chat_records(400)
    path = write_jsonl(tmp_path / "in.jsonl", records)
    alone = plan_split(path, None, max_bytes=3000, max_records=None, processes=0, block_bytes=2048)
    shared = plan_split(
        path, None, max_bytes=3000, max_records=None, processes=2, block_bytes=2048
    )  # 8 ranges cut on 2 KiB blocks, 2 workers
    assert shared == alone and len(alone.parts) > 8
    assert shared.fingerprint == alone.fingerprint and len(alone.blocks) > 8
    records[390]["custom_id"] = records[3]["custom_id"]
    write_jsonl(path, records)
    told: list[str] = []
    with pytest.raises(InputRejected, match=r"1 problem; nothing was uploaded"):
        plan_split(
            path, None, max_bytes=3000, max_records=None, processes=2, problems_out=told.append,
            block_bytes=2048,
        )  # fmt: skip
    assert told == [
        f'{path}:391: duplicate custom_id "{records[3]["custom_id"]}" (first on line 4)'
    ]


def test_repeats_across_ranges_and_past_what_memory_holds_are_found_with_their_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cohere_batch_cli.state import spill

    monkeypatch.setattr(spill, "MEMORY_IDS", 50)  # the caller's one check spills after 50 ids
    records = chat_records(400)
    records[390]["custom_id"] = records[3]["custom_id"]
    records[120]["custom_id"] = records[110]["custom_id"]
    path = write_jsonl(tmp_path / "in.jsonl", records)
    told: list[str] = []
    with pytest.raises(InputRejected, match=r"2 problems; nothing was uploaded"):
        plan_split(
            path, None, max_bytes=3000, max_records=None, processes=2, problems_out=told.append,
            block_bytes=2048,
        )  # fmt: skip
    assert told == [
        f'{path}:121: duplicate custom_id "r-110" (first on line 111)',
        f'{path}:391: duplicate custom_id "r-3" (first on line 4)',
    ]


def test_blank_lines_after_a_parts_last_record_never_take_it_over_max_bytes(
    tmp_path: Path,
) -> None:
    lines = [json.dumps(r) + "\n" for r in chat_records(30)]
    size = len(lines[0])
    assert all(len(line) == size for line in lines[:10])
    path = tmp_path / "in.jsonl"
    path.write_text("".join(line + "\n  \n" for line in lines), encoding="utf-8")
    data = path.read_bytes()
    limit = 3 * size + 2 * 4  # three records and the blank lines between them, not those after
    plan = plan_split(path, None, max_bytes=limit, max_records=None)
    assert sum(p.records for p in plan.parts) == 30
    for part in plan.parts:
        chunk = data[part.start : part.stop]
        assert part.size <= limit, f"a part of {part.size} bytes, over {limit}"
        assert chunk.lstrip().startswith(b"{") and chunk.rstrip().endswith(
            b"}"
        )  # records at both ends
        assert chunk.count(b'{"custom_id"') == part.records


def test_a_part_is_read_only_from_the_bytes_the_check_read(tmp_path: Path) -> None:
    from cohere_batch_cli.errors import InputChanged
    from cohere_batch_cli.tasks.jobs_split import write_part

    path = write_jsonl(tmp_path / "in.jsonl", chat_records(200))
    data = path.read_bytes()
    plan = plan_split(path, None, max_bytes=2000, max_records=None, block_bytes=1024)
    assert plan.fingerprint.startswith("sha256-blocks:") and plan.blocks[-1].stop == len(data)
    for number, part in enumerate(plan.parts):
        copy = write_part(path, part, tmp_path / f"p{number}.jsonl", plan.blocks)
        assert copy.read_bytes() == data[part.start : part.stop]
    last = plan.parts[-1]
    at = data.index(b'"r-', last.start)  # a custom_id of the last part, rewritten in place
    path.write_bytes(data[:at] + b'"x-' + data[at + 3 :])
    assert path.stat().st_size == len(data)
    first = write_part(path, plan.parts[0], tmp_path / "first.jsonl", plan.blocks)
    assert (
        first.read_bytes() == data[plan.parts[0].start : plan.parts[0].stop]
    )  # its blocks are intact
    with pytest.raises(
        InputChanged, match=r"in.jsonl changed after it was checked \(bytes .* differ"
    ):
        write_part(path, last, tmp_path / "last.jsonl", plan.blocks)


def test_a_part_read_from_an_input_that_is_gone_is_a_clear_error(tmp_path: Path) -> None:
    from cohere_batch_cli.errors import InputFileError
    from cohere_batch_cli.tasks.jobs_split import PartPlan, write_part

    with pytest.raises(InputFileError, match=r"in.jsonl is gone: it was deleted or moved"):
        write_part(tmp_path / "in.jsonl", PartPlan(0, 10, 1), tmp_path / "part.jsonl", None)


def test_a_record_larger_than_a_part_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", chat_records(3))
    with pytest.raises(
        InputRejected, match=r"line 1 is .* bytes, over the 50 bytes a part may hold"
    ):
        plan_split(path, None, max_bytes=50, max_records=None)


# -- a job end to end -----------------------------------------------------------------------


def test_a_job_over_small_limits_retries_its_failures_and_its_results_hold_every_id_once(
    small: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, client = small["cli"], small["client"]
    records = chat_records(150)
    write_jsonl(tmp_path / "requests.jsonl", records)
    refused = limited(
        cli,
        "create",
        "--file",
        "requests.jsonl",
        "--model",
        "command-r",
        exit_code=ExitCode.REFUSED,
    )
    assert "add --split to run it as one job" in refused.stderr

    with limited_client(small, monkeypatch) as lib, nothing_printed():
        job = lib.create_job("requests.jsonl", model="command-r").wait(timeout=60, interval=0.1)
        job.retry(rounds=4, pause=0.05, timeout=60, interval=0.1)
        job.results("results.jsonl")
        job.results("results.csv")
    job_id = job.id
    batches = job_batches(client, job_id)
    parts = {part for part, _ in batches}
    assert len(parts) >= 4, f"{LIMIT} bytes a dataset: 150 records need several parts ({batches})"
    assert set(batches.values()) == {1}, f"one batch per part and attempt: {batches}"
    assert any(attempt > 1 for _, attempt in batches), "some records failed and were retried"
    for part in parts:  # one input dataset per part
        suffix = naming.dataset_name("requests", naming.Lineage(job_id=job_id, part=part))
        assert sum(1 for d in client.iter_datasets() if d.name == suffix) == 1

    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    ids = Counter(line["custom_id"] for line in lines)
    assert set(ids) == {r["custom_id"] for r in records} and set(ids.values()) == {1}
    assert all(not line.get("error") for line in lines), (
        "four rounds cleared every transient failure"
    )

    shown = json.loads(cli("jobs", "get", job_id, "--json").stdout)
    assert shown["id"] == job_id and shown["status"] == "completed" and shown["succeeded"] == 150
    assert len(shown["parts"]) == len(parts) and all(p["attempts"] for p in shown["parts"])
    listed = json.loads(cli("jobs", "list", "--json").stdout)
    assert [j["id"] for j in listed] == [job_id] and listed[0]["step"] == "done"

    assert [line["custom_id"] for line in lines] != [r["custom_id"] for r in records], (
        "the service shuffles"
    )
    cli("jobs", "results", job_id, "-o", "ordered.jsonl", "--input-order")  # no API value
    ordered = [json.loads(line) for line in (tmp_path / "ordered.jsonl").read_text().splitlines()]
    assert [line["custom_id"] for line in ordered] == [r["custom_id"] for r in records]
    assert sorted(map(json.dumps, ordered)) == sorted(map(json.dumps, lines)), (
        "the same records, in input order"
    )

    header, *rows = (tmp_path / "results.csv").read_text().splitlines()
    assert header.split(",")[0] == "custom_id" and header.endswith("attempt") and len(rows) == 150


def test_jobs_create_json_prints_the_job_object_and_jobs_watch_follows_it(
    small: dict[str, Any], tmp_path: Path
) -> None:
    cli = small["cli"]
    write_jsonl(tmp_path / "in.jsonl", chat_records(30))
    made = limited(
        cli,
        "jobs",
        "create",
        "in.jsonl",
        "--model",
        "command-r",
        "--max-records-per-batch",
        "10",
        "--json",
    )
    job = json.loads(made.stdout)
    assert job["part_count"] == 3 and [p["records"] for p in job["parts"]] == [10, 10, 10]
    from cohere_batch_cli.fingerprint import file_fingerprint

    assert job["input_fingerprint"] == file_fingerprint(
        tmp_path / "in.jsonl"
    )  # hashed by the check
    assert all(p["batch_id"] for p in job["parts"]), "every part's batch is created"
    watched = cli("jobs", "watch", job["id"], "--json")
    events = [json.loads(line) for line in watched.stdout.splitlines()]
    assert events[-1]["kind"] == "job" and events[-1]["status"] == "completed"
    assert f"job {job['id']} completed" in watched.stderr


def test_jobs_list_json_reads_the_store_without_importing_httpx(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from cohere_batch_cli.main import main\n"
        "sys.argv = ['cbatch', 'jobs', 'list', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('httpx' in sys.modules, file=sys.stderr)\n"
    )
    env = {
        "CBATCH_STATE_DIR": str(tmp_path / "state"),
        "PATH": "/usr/bin:/bin",
        "CBATCH_CONFIG": str(tmp_path / "c.toml"),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.stdout.strip() == "[]" and result.stderr.strip().splitlines()[-1] == "False", (
        result.stderr
    )


def test_an_unknown_job_says_how_to_attach_it(cli: Cli) -> None:
    result = cli("jobs", "get", "nosuchjob1", exit_code=ExitCode.NOT_FOUND)
    assert (
        "no job nosuchjob1 is recorded on this machine" in result.stderr
        and "jobs attach" in result.stderr
    )


def test_jobs_resume_with_a_file_that_does_not_exist_says_so(cli: Cli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in.jsonl", chat_records(20))
    made = cli(
        "jobs", "create", "in.jsonl", "--model", "command-r", "--max-records-per-batch", "10", "-q"
    )
    job_id = made.stdout.strip()
    result = cli("jobs", "resume", job_id, "--file", "missing.jsonl", exit_code=ExitCode.USAGE)
    assert "missing.jsonl does not exist" in result.stderr and "size" not in result.stderr
    (tmp_path / "short.jsonl").write_text("{}\n")
    other = cli("jobs", "resume", job_id, "--file", "short.jsonl", exit_code=ExitCode.REFUSED)
    assert f"short.jsonl is not the file job {job_id} was split from: it is 3 bytes" in other.stderr


def test_parts_that_do_not_fit_in_storage_wait_then_the_job_stops_and_resumes_once_room_is_made(
    tmp_path: Path,
) -> None:
    server = SandboxServer(
        SandboxSettings(
            data_dir=tmp_path / "sandbox",
            port=0,
            dataset_max_bytes=LIMIT,
            org_max_bytes=3000,
            queue_delay=0.5,
            output_ready_delay=0.0,
        )
    ).start()
    cli = Cli(server.base_url, TEST_KEY)
    env = {"CBATCH_DATASET_MAX_BYTES": str(LIMIT), "CBATCH_ORG_MAX_BYTES": "3000"}
    try:
        records = chat_records(60)
        write_jsonl(tmp_path / "in.jsonl", records)
        stopped = cli(
            "jobs",
            "create",
            "in.jsonl",
            "--model",
            "command-r",
            "--max-records-per-batch",
            "15",
            "--watch",
            "-q",
            exit_code=ExitCode.REFUSED,
            env=env,
        )
        job_id = stopped.stdout.strip()
        assert "part 3 of 4: waiting for room: the organisation stores" in stopped.stderr
        assert (
            f"error: part 3 of job {job_id} needs" in stopped.stderr
            and "the job stops here" in stopped.stderr
        )
        assert f"then: cbatch jobs resume {job_id}" in stopped.stderr

        early = cli(
            "jobs", "results", job_id, "-o", "a.jsonl", "--partial", "--delete-outputs", env=env
        )
        assert (
            "parts 3, 4 not ended: left out of this file" in early.stderr
            and "deleted 2 output datasets" in early.stderr
        )
        resumed = cli("jobs", "resume", job_id, "--delete-inputs", env=env)
        assert "part 1: ended; deleted its input dataset" in resumed.stderr
        assert f"job {job_id} completed: 60/60 records" in resumed.stderr
        late = cli("jobs", "results", job_id, "-o", "b.jsonl", env=env)
        assert (
            "part 1: left out, its results were written to a.jsonl and its outputs deleted"
            in late.stderr
        )
        ids = Counter(
            json.loads(line)["custom_id"]
            for name in ("a.jsonl", "b.jsonl")
            for line in (tmp_path / name).read_text().splitlines()
        )
        assert set(ids) == {r["custom_id"] for r in records} and set(ids.values()) == {1}
    finally:
        server.stop()


def test_jobs_retry_sends_again_what_failed_in_every_part(
    small: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = small["client"]
    write_jsonl(tmp_path / "in.jsonl", chat_records(60))
    with limited_client(small, monkeypatch) as lib, nothing_printed():
        job = lib.create_job("in.jsonl", model="command-r", split=cb.Split(max_records=20))
        job.wait(timeout=60, interval=0.1)
        parts = job.parts()
        assert len(parts) == 3 and all(p.status == cb.BatchStatus.COMPLETED for p in parts)
        left = sum(p.batch.num_successful_records for p in parts)
        assert left < 60, "the sandbox failed some records on purpose"
        job.retry(rounds=4, pause=0.05, timeout=60, interval=0.1)
        merged = list(job.records())
    assert len(merged) == 60 and all("body" in r for r in merged)
    assert max(attempt for _, attempt in job_batches(client, job.id)) >= 2


def test_a_canceled_job_sends_nothing_more_and_old_jobs_are_pruned(tmp_path: Path) -> None:
    server = SandboxServer(
        SandboxSettings(data_dir=tmp_path / "sandbox", port=0, queue_delay=60.0)
    ).start()
    cli = Cli(server.base_url, TEST_KEY)
    try:
        write_jsonl(tmp_path / "in.jsonl", chat_records(20))
        job_id = cli(
            "jobs",
            "create",
            "in.jsonl",
            "--model",
            "command-r",
            "--max-records-per-batch",
            "10",
            "-q",
        ).stdout.strip()
        canceled = cli("jobs", "cancel", job_id)
        assert f"job {job_id} canceled: 2 of 2 parts were still running" in canceled.stderr
        refused = cli("jobs", "resume", job_id, "--no-watch", exit_code=ExitCode.REFUSED)
        assert f"job {job_id} was canceled: nothing more is sent" in refused.stderr
        assert cli("jobs", "prune").stdout == "", (
            "a job canceled just now is kept (30 days by default)"
        )
        assert cli("jobs", "prune", "--older-than", "1ms").stdout.split() == [job_id]
        assert json.loads(cli("jobs", "list", "--json").stdout) == []
    finally:
        server.stop()


def test_a_budget_on_a_split_create_is_refused_before_anything_is_cut(
    cli: Cli, tmp_path: Path
) -> None:
    """A budget that would cover only part of a job must not pass in silence: refused, nothing sent."""
    write_jsonl(tmp_path / "big.jsonl", chat_records(4))
    refused = cli(
        "create",
        "--file",
        "big.jsonl",
        "--model",
        "command-r",
        "--split",
        "--max-cost",
        "1",
        exit_code=ExitCode.USAGE,
    )
    assert (
        "error: --max-cost, --max-input-tokens, --strict-context and --tokenizer do not cover a job's parts yet"
        in refused.stderr
    )
    assert "cbatch estimate big.jsonl --model MODEL --max-cost AMOUNT" in refused.stderr
    assert json.loads(cli("jobs", "list", "--json").stdout) == []


def test_a_job_whose_input_is_refused_leaves_no_job_behind(
    client: cb.Client, cli: Cli, tmp_path: Path
) -> None:
    """Refused by the check, nothing will ever run: ``jobs list`` must not keep it as a job
    "splitting" with no parts (issue: every refused ``jobs create`` left one). A job stopped
    while splitting is another matter: it resumes from its record."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "x"}\n')  # no body
    table = tmp_path / "r.csv"
    table.write_text("id,text\na,one\na,two\n")  # a duplicate id
    with nothing_printed():
        for source in (bad, cb.PromptTable(table, "{{ text }}", id_column="id")):
            with pytest.raises(cb.InputRejected):
                client.create_job(source, model="command-r-08-2024", split=cb.Split(max_records=1))
        assert client.jobs() == []
    cli("jobs", "create", str(bad), "--model", "command-r-08-2024", exit_code=ExitCode.REFUSED)
    assert cli("jobs", "list", "-q").stdout == ""
