"""The Python API end to end, in-process, on the real sandbox: no subprocess, no terminal.

Every call runs inside :func:`nothing_printed`, which points file descriptors 1
and 2 at files of their own (not only ``sys.stdout``: a C library, a thread or
a stray ``print`` in a task would write there) and asserts they stay empty.
What the library says goes to the ``cohere_batch_cli`` logger and to the
program's callback instead, and the tests read it there.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from tests.conftest import TEST_KEY
from tests.support.flows import chat_records, write_jsonl
from tests.support.quiet import nothing_printed
from tests.support.stops import stop_after_upload

MODEL = "command-r-08-2024"


def test_the_capture_sees_a_write_to_either_descriptor() -> None:
    """The check above can fail: a write below sys.stdout, straight to fd 2, is caught."""
    with pytest.raises(AssertionError, match="fd 2"), nothing_printed():
        os.write(2, b"leak")
    with pytest.raises(AssertionError, match="fd 1"), nothing_printed():
        print("leak", flush=True)


def test_a_file_run_end_to_end_reports_to_callbacks_and_logging_and_prints_nothing(
    sandbox: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cohere_batch_cli")
    requests = write_jsonl(tmp_path / "questions.jsonl", chat_records(12, fail={3}))
    seen: list[cb.Event] = []
    progress: list[cb.Event] = []
    with nothing_printed():
        with cb.Client(TEST_KEY, base_url=sandbox.base_url, on_event=seen.append) as client:
            run = client.create(requests, model=MODEL, name="api-e2e")
            assert run.name == "api-e2e"
            assert run.wait(timeout=60, on_progress=progress.append, interval=0.1) is run
            summary = run.results(tmp_path / "out.jsonl")
            records = list(run.records())
            failed = list(run.records(failed_only=True))
    assert run.status == cb.BatchStatus.COMPLETED
    assert run.batch.num_records == 12 and run.batch.num_failed_records == 1
    # the wait's events, typed: the batch's end with its counts, then the watch's
    done = [e for e in progress if e.kind == "batch_done"]
    assert len(done) == 1 and done[0].batch_id == run.id
    assert done[0].status == cb.BatchStatus.COMPLETED
    assert (done[0].records_total, done[0].records_done, done[0].records_failed) == (12, 12, 1)
    assert progress[-1].kind == "all_done"
    assert [e for e in seen if e.kind.startswith("batch")] == done  # the client's callback too
    assert {"step_started", "step_done"} <= {e.kind for e in seen}  # the check's, the upload's
    upload = next(
        e for e in seen if e.kind == "step_done" and e.description == "uploading questions.jsonl"
    )
    downloads = [
        e for e in seen if e.kind == "step_done" and e.description == "downloading results"
    ]
    assert len(downloads) == 1 and downloads[0].records_done == 12  # the file's; records() has none
    assert upload.bytes_done == upload.bytes_total == requests.stat().st_size
    # the file and the stream hold the same records, the failed one among them
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert (summary.written, summary.succeeded, summary.failed) == (12, 11, 1)
    assert sorted(r["custom_id"] for r in lines) == sorted(f"r-{i}" for i in range(12))
    assert sorted(records, key=lambda r: r["custom_id"]) == sorted(
        lines, key=lambda r: r["custom_id"]
    )
    assert [r["custom_id"] for r in failed] == ["r-3"] and failed[0]["error"]
    # what a command would have printed is in the log instead
    logged = [r.getMessage() for r in caplog.records if r.name == "cohere_batch_cli"]
    assert any("uploaded as dataset" in m for m in logged), logged
    assert any(m.startswith("wrote 12 records to ") for m in logged), logged  # results(): a file
    # records(): what the program read, of which batch; a library's caller has no "stdout" here
    assert f"read 12 records of batch {run.id} (11 succeeded, 1 failed)" in logged, logged
    assert any(m.startswith(f"read 1 record of batch {run.id} (") for m in logged), logged
    assert not [m for m in logged if "stdout" in m], logged
    assert all(TEST_KEY not in r.getMessage() for r in caplog.records)


def test_a_table_run_with_a_schema_end_to_end(
    client: cb.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """create --from through the API: rows rendered, typed answers, the table written again."""
    caplog.set_level(logging.INFO, logger="cohere_batch_cli")
    table = tmp_path / "reviews.csv"
    table.write_text("id,text\nr1,great phone\nr2,broke in a day\nr3,fine for the price\n")
    schema = {
        "type": "object",
        "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}},
        "required": ["sentiment"],
    }
    with nothing_printed():
        reviews = cb.PromptTable(
            table, "Classify: {{ text }}", id_column="id", schema=schema, max_tokens=50
        )
        run = client.create(reviews, model=MODEL)
        run.wait(timeout=60, interval=0.1)
        summary = run.results(tmp_path / "reviews.out.csv")
        rows = list(run.records())
        with pytest.raises(cb.UsageError, match="max_tokens must be 1 or more"):
            cb.PromptTable(table, "x", max_tokens=0)
        with pytest.raises(TypeError, match="a source is a path"):
            client.create({"table": table}, model=MODEL)  # type: ignore[arg-type]
    assert run.name == "reviews" and run.batch.num_records == 3
    assert [row["id"] for row in rows] == ["r1", "r2", "r3"]  # the table's rows, in its order
    assert all(row["status"] == "succeeded" for row in rows)
    assert {row["sentiment"] for row in rows} <= {"positive", "negative"}
    assert summary.written == 3
    logged = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith(f"read 3 rows of reviews.csv, the answers of batch {run.id} (") for m in logged
    )
    header = (tmp_path / "reviews.out.csv").read_text().splitlines()[0]
    assert header.startswith("id,text,answer,sentiment")
    with nothing_printed():
        arrow = run.to_arrow()
        reader = run.arrow_batches(batch_size=2)
        sizes = [batch.num_rows for batch in reader]
    assert arrow.column("id").to_pylist() == ["r1", "r2", "r3"]
    assert set(arrow.column("sentiment").to_pylist()) <= {"positive", "negative"}
    assert sizes == [2, 1] and reader.schema == arrow.schema


def test_an_arrow_reader_dropped_unread_leaves_no_file(
    client: cb.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    requests = write_jsonl(tmp_path / "arrow.jsonl", chat_records(3))
    with nothing_printed():
        run = client.create(requests, model=MODEL).wait(timeout=60, interval=0.1)
        reader = run.arrow_batches()
        assert [p.name[:13] for p in scratch.iterdir()] == ["cbatch-arrow-"]
        del reader
        gc.collect()
    assert list(scratch.iterdir()) == []


def test_a_run_is_found_by_id_prefix_and_name_and_listed(client: cb.Client, tmp_path: Path) -> None:
    requests = write_jsonl(tmp_path / "find-me.jsonl", chat_records(2))
    with nothing_printed():
        made = client.create(requests, model=MODEL)
        by_id = client.batch(made.id)
        by_prefix = client.batch(made.id[:8])
        listed = [run.id for run in client.runs(limit=5)]
    assert made.name == "find-me"  # the file's name, as the command line names it
    assert by_id.id == by_prefix.id == made.id
    assert made.id in listed and len(listed) <= 5
    assert repr(by_id).startswith(f"Run(id={made.id!r}")


def test_errors_share_one_base_and_carry_the_cli_exit_code(client: cb.Client) -> None:
    with nothing_printed(), pytest.raises(cb.CbatchError) as caught:
        client.batch("no-such-batch")
    assert isinstance(caught.value, cb.NotFoundError)
    assert caught.value.exit_code == cb.ExitCode.NOT_FOUND == 4
    from cohere_batch_cli.cli._errors import exit_code_for

    assert exit_code_for(caught.value) == caught.value.exit_code  # the command line's code


def test_results_of_a_running_batch_are_not_ready_and_a_wait_times_out(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    slow = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("slow"), port=0, queue_delay=3600.0, validation_delay=0.0
    )
    requests = write_jsonl(tmp_path / "slow.jsonl", chat_records(3))
    with SandboxServer(slow) as server, cb.Client(TEST_KEY, base_url=server.base_url) as client:
        with nothing_printed():
            run = client.create(requests, model=MODEL)
            with pytest.raises(cb.WaitTimeout) as late:
                run.wait(timeout=0.5, interval=0.1)
            with pytest.raises(cb.NotReady) as early:
                run.results(tmp_path / "never.jsonl")
            with pytest.raises(cb.NotReady):
                next(run.records())
            run.cancel()
            run.wait(timeout=30, interval=0.1)
            job = client.create_job(requests, model=MODEL, split=cb.Split(max_records=2))
            running = job.status
            with pytest.raises(cb.NotReady) as job_early:
                job.results(tmp_path / "never.jsonl")
            job.cancel()
    assert late.value.exit_code == 10 and run.id in str(late.value)
    assert run.status == cb.BatchStatus.CANCELED
    assert not (tmp_path / "never.jsonl").exists()
    # what to do next, in a program's words: it has no 'cbatch watch' nor --wait
    assert early.value.hint == "wait for it with Run.wait(), then read them"
    assert running == "running" and job_early.value.hint == "wait for it with Job.wait()"


def test_a_create_stopped_after_its_upload_is_carried_on_by_the_same_call(
    sandbox: Any, client: cb.Client, tmp_path: Path
) -> None:
    """The send engine's promise, kept through the API: the second create uploads nothing."""
    requests = write_jsonl(tmp_path / "stopped.jsonl", chat_records(4))

    with nothing_printed():
        with cb.Client(TEST_KEY, base_url=sandbox.base_url, on_event=stop_after_upload) as first:
            with pytest.raises(KeyboardInterrupt):
                first.create(requests, model=MODEL, name="carried-on")
        run = client.create(requests, model=MODEL, name="carried-on")
        datasets = [d for d in client._api.iter_datasets() if d.name == "carried-on"]
        batches = [b for b in client._api.iter_batches() if b.name == "carried-on"]
    assert len(datasets) == 1 and [b.id for b in batches] == [run.id]
    assert run.batch.input_dataset_id == datasets[0].id


def test_a_retry_sends_only_what_failed_and_the_newest_attempt_holds_every_record(
    client: cb.Client, tmp_path: Path
) -> None:
    requests = write_jsonl(tmp_path / "retried.jsonl", chat_records(6, fail={1, 4}))
    with nothing_printed():
        run = client.create(requests, model=MODEL).wait(timeout=60, interval=0.1)
        newest = run.retry(rounds=2, pause=0.1, interval=0.1, timeout=120)
        again = run.retry(rounds=2, pause=0.1, interval=0.1)  # the API holds 2 already
        merged = list(newest.records())
        failed = sorted(r["custom_id"] for r in newest.records(failed_only=True))
    assert newest.name == f"retried [retry 2 of {run.id}]"  # each round sent the 2 failures
    assert newest.batch.num_records == 2 and newest.status == cb.BatchStatus.FAILED  # all 2 failed
    assert again.id == newest.id  # nothing sent a third time
    assert sorted(r["custom_id"] for r in merged) == sorted(f"r-{i}" for i in range(6))
    assert failed == ["r-1", "r-4"]  # the sandbox fails these every time


def test_a_retry_of_a_batch_still_running_waits_for_it_first(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """As ``cbatch retry --watch``: the batch is watched to its end, then what failed is sent again."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    queued = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("queued"), port=0, queue_delay=1.0,
        records_per_second=2000.0, validation_delay=0.0,
    )  # fmt: skip
    requests = write_jsonl(tmp_path / "early.jsonl", chat_records(4, fail={2}))
    heard: list[cb.Event] = []
    with SandboxServer(queued) as server, cb.Client(TEST_KEY, base_url=server.base_url) as client:
        with nothing_printed():
            run = client.create(requests, model=MODEL)
            newest = run.retry(rounds=1, interval=0.1, timeout=60, on_progress=heard.append)
    assert not run.status.is_terminal  # as created: the retry did not refuse it
    ended = [e.batch_id for e in heard if e.kind == "batch_done"]
    assert ended == [run.id, newest.id]  # the batch waited for, then its retry
    assert newest.name == f"early [retry 1 of {run.id}]" and newest.batch.num_records == 1


def test_a_job_of_parts_waited_retried_and_read_as_one(
    client: cb.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cohere_batch_cli")
    requests = write_jsonl(tmp_path / "big.jsonl", chat_records(10, fail={2, 7}))
    with nothing_printed():
        job = client.create_job(requests, model=MODEL, split=cb.Split(max_records=4))
        same = client.job(job.id[:6])
        job.wait(timeout=60, interval=0.1)
        parts = job.parts()
        job.retry(rounds=1, pause=0.1, interval=0.1, timeout=120)
        retried = job.parts()
        summary = job.results(tmp_path / "big.out.jsonl")
        records = list(job.records())
        failed = sorted(r["custom_id"] for r in job.records(failed_only=True))
    assert same.id == job.id and job.name == "big"
    assert job.id in [listed.id for listed in client.jobs()]
    assert [p.batch.num_records for p in parts] == [4, 4, 2]
    assert all(f"[job {job.id} part " in p.name for p in parts)
    assert [p.name.endswith("retry 1]") for p in retried] == [True, True, False]  # part 3 all ok
    assert summary.written == 10 and summary.failed == 2
    assert sorted(r["custom_id"] for r in records) == sorted(f"r-{i}" for i in range(10))
    assert failed == ["r-2", "r-7"]
    logged = [r.getMessage() for r in caplog.records]
    assert f"read 10 records of job {job.id} (8 succeeded, 2 failed)" in logged, logged


def test_a_job_is_attached_from_an_empty_store_and_nothing_is_sent_twice(
    client: cb.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another machine (here: an empty state store) takes the job up by its id and its input."""
    requests = write_jsonl(tmp_path / "shared.jsonl", chat_records(6))
    with nothing_printed():
        job = client.create_job(requests, model=MODEL, split=cb.Split(max_records=3))
        made = [part.id for part in job.parts()]
    monkeypatch.setenv("CBATCH_STATE_DIR", str(tmp_path / "another-machine"))
    with nothing_printed():
        with pytest.raises(cb.NoMatch) as unknown:
            client.job(job.id)  # this "machine" has no record of it
        attached = client.attach_job(job.id, requests, split=cb.Split(max_records=3))
        attached.wait(timeout=60, interval=0.1)
        records = list(attached.records())
        on_api = [b for b in client._api.iter_batches() if f"[job {job.id} " in b.name]
    assert unknown.value.hint == (
        f"list jobs with Client.jobs(); a job made elsewhere: Client.attach_job('{job.id}', FILE)"
    )
    assert attached.id == job.id and attached.name == "shared"
    assert [part.id for part in attached.parts()] == made
    assert sorted(b.id for b in on_api) == sorted(made)  # no batch made twice
    assert sorted(r["custom_id"] for r in records) == sorted(f"r-{i}" for i in range(6))


def test_ctrl_c_in_a_wait_is_raised_and_cancels_nothing(client: cb.Client, tmp_path: Path) -> None:
    """The watch task turns Ctrl-C into an exit code for a command; a program gets it back as raised."""
    requests = write_jsonl(tmp_path / "interrupted.jsonl", chat_records(2))

    def press_ctrl_c(event: cb.Event) -> None:
        raise KeyboardInterrupt

    with nothing_printed():
        run = client.create(requests, model=MODEL)
        with pytest.raises(KeyboardInterrupt):
            run.wait(timeout=60, on_progress=press_ctrl_c, interval=0.1)
        run.wait(timeout=60, interval=0.1)
    assert run.status == cb.BatchStatus.COMPLETED  # not cancelled


def test_one_client_serves_runs_from_several_threads(
    client: cb.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An orchestrator's workers share a client: each thread gets its own state store connection."""
    from concurrent.futures import ThreadPoolExecutor

    def one_run(number: int) -> int:
        requests = write_jsonl(tmp_path / f"worker-{number}.jsonl", chat_records(3 + number))
        run = client.create(requests, model=MODEL).wait(timeout=60, interval=0.1)
        return run.results(tmp_path / f"worker-{number}.out.jsonl").written

    with nothing_printed(), ThreadPoolExecutor(max_workers=3) as pool:
        written = list(pool.map(one_run, range(3)))
    assert written == [3, 4, 5]
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == []  # a state store shared across threads would be "not writable" here


def test_leaving_the_records_early_stops_the_download(client: cb.Client, tmp_path: Path) -> None:
    requests = write_jsonl(tmp_path / "many.jsonl", chat_records(300))
    with nothing_printed():
        run = client.create(requests, model=MODEL).wait(timeout=60, interval=0.1)
        before = threading.active_count()
        stream = run.records()
        first = next(stream)
        stream.close()
    assert first["custom_id"].startswith("r-")
    assert threading.active_count() == before  # the download thread ended with the stream


def test_the_client_reads_the_cli_settings_and_its_arguments_win(
    sandbox: Any, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text(
        f'[profiles.ci]\napi_key = "{TEST_KEY}"\nbase_url = "{sandbox.base_url}"\n'
        '[profiles.other]\napi_key = "other-key-0000"\nbase_url = "http://127.0.0.1:9"\n',
        encoding="utf-8",
    )
    isolated_env.chmod(0o600)
    with nothing_printed():
        with cb.Client(profile="ci") as from_profile:
            assert from_profile.base_url == sandbox.base_url.rstrip("/")
            assert from_profile.profile == "ci"
            list(from_profile.runs(limit=1))  # the key from the profile is accepted
        monkeypatch.setenv("CBATCH_PROFILE", "other")
        with cb.Client(TEST_KEY, base_url=sandbox.base_url) as explicit:
            assert explicit.profile == "other"  # chosen by the environment...
            assert explicit.base_url == sandbox.base_url.rstrip("/")  # ...the arguments win
            list(explicit.runs(limit=1))
            assert TEST_KEY not in repr(explicit)
        monkeypatch.delenv("CBATCH_PROFILE")
        with pytest.raises(cb.ConfigError) as no_key:
            cb.Client(base_url=sandbox.base_url)
        with pytest.raises(cb.ConfigError) as bad_key:
            cb.Client("two words", base_url=sandbox.base_url)
    assert no_key.value.exit_code == 3 and "no API key" in str(no_key.value)
    assert "api_key argument" in str(bad_key.value) and "two words" not in str(bad_key.value)


def test_every_public_name_resolves_and_is_listed() -> None:
    assert set(cb.__all__) == {"__version__", *cb._PUBLIC}
    for name in cb.__all__:
        assert getattr(cb, name) is not None, name
    assert set(cb.__all__) <= set(dir(cb))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        cb.Nope  # type: ignore[attr-defined]  # noqa: B018
    errors = [getattr(cb, n) for n in cb.__all__ if n.endswith(("Error", "Match", "Timeout"))]
    errors += [cb.NotReady, cb.InputRejected, cb.ResultsExpired, cb.MissingExtra]
    for error in errors:
        assert issubclass(error, cb.CbatchError), error
        assert error.exit_code != cb.ExitCode.OK, error


def test_a_batch_is_made_from_a_dataset_by_its_id_a_prefix_or_its_name(
    client: cb.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``cb.Dataset`` is ``cbatch create --dataset``: resolved as the command resolves it."""
    caplog.set_level(logging.INFO, logger="cohere_batch_cli")
    requests = write_jsonl(tmp_path / "reused.jsonl", chat_records(3))
    with nothing_printed():
        first = client.create(requests, model=MODEL, name="reused-input")
        dataset_id = first.batch.input_dataset_id
        assert dataset_id
        named = client._api.get_dataset(dataset_id).name
        by_id = client.create(cb.Dataset(dataset_id), model=MODEL)
        by_prefix = client.create(cb.Dataset(dataset_id[:-4]), model=MODEL, name="again")
        by_name = client.create(cb.Dataset(named), model=MODEL)
        with pytest.raises(
            cb.UsageError, match=r"idempotency_key goes with a file .* not a Dataset"
        ):
            client.create(cb.Dataset(dataset_id), model=MODEL, idempotency_key="from-a-dataset")
        with pytest.raises(cb.NotFoundError):
            client.create(cb.Dataset("no-dataset-has-this"), model=MODEL)
        with pytest.raises(cb.UsageError, match="ref is empty"):
            cb.Dataset(" ")
        by_prefix.wait(timeout=60, interval=0.1)
        answers = sorted(record["custom_id"] for record in by_prefix.records())
    made = {by_id.id, by_prefix.id, by_name.id, first.id}
    assert len(made) == 4  # a batch each, all of the one dataset
    assert {run.batch.input_dataset_id for run in (by_id, by_prefix, by_name)} == {dataset_id}
    assert by_id.name == dataset_id and by_prefix.name == "again" and by_name.name == named
    assert answers == ["r-0", "r-1", "r-2"]
    assert any(dataset_id in record.getMessage() for record in caplog.records)  # the match, logged


def test_a_job_stopped_while_sending_is_resumed_and_no_part_is_sent_twice(
    sandbox: Any, client: cb.Client, tmp_path: Path
) -> None:
    """``jobs resume`` through the API: the parts not sent are sent, the ones sent are kept.

    The first call stops as a kill would, as part 2's upload starts: part 1 is
    sent, part 2 recorded as uploading, part 3 only planned.
    """
    requests = write_jsonl(tmp_path / "stopped-job.jsonl", chat_records(9, fail={4}))

    def stop_at_part_2(event: cb.Event) -> None:
        if event.kind == "step_started" and event.description == "uploading part 2 of 3":
            raise KeyboardInterrupt

    with nothing_printed():
        with cb.Client(TEST_KEY, base_url=sandbox.base_url, on_event=stop_at_part_2) as first:
            with pytest.raises(KeyboardInterrupt):
                first.create_job(requests, model=MODEL, split=cb.Split(max_records=3))
        (recorded,) = client.jobs()
        job = client.job(recorded.id)
        stopped = (job.status, len(job.parts()))
        moved = requests.rename(tmp_path / "moved.jsonl")
        with pytest.raises(cb.InputRejected) as missing:
            job.resume()  # part 2 is not uploaded, and the input is not where the job was made
        assert job.resume(file=moved) is job
        sent = job.status
        job.wait(timeout=60, interval=0.1)
        ended = (job.status, job.records_total, job.succeeded, job.failed)
        again = [part.id for part in job.resume().parts()]  # every part sent: nothing is
        batches = [b for b in client._api.iter_batches() if f"[job {job.id} " in b.name]
        datasets = [
            d.name
            for d in client._api.iter_datasets()
            if job.id in d.name and d.dataset_type.endswith("-input")
        ]
    assert stopped[0] == "sending" and stopped[1] <= 1
    assert missing.value.hint == (
        f"give the file it was made from: client.job({job.id!r}).resume(file=FILE)"
    )
    assert sent in ("running", "completed")
    assert ended == ("completed", 9, 8, 1)
    assert sorted(b.name for b in batches) == [
        f"stopped-job [job {job.id} part {n}]" for n in (1, 2, 3)
    ]
    assert sorted(again) == sorted(b.id for b in batches)
    assert len(datasets) == len(set(datasets)) == 3  # part 2's upload started once, made once


def test_the_library_names_what_to_do_in_a_programs_words_not_the_command_lines(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, logged: Callable[[], str]
) -> None:
    """A task's words that name a flag reach a program as the argument it has; a retry's last line reaches it too."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    flaky = SandboxSettings(
        data_dir=tmp_path_factory.mktemp("flaky"), port=0, records_per_second=5000.0,
        output_ready_delay=0.0, transient_fail_rate=0.3, seed=5,
    )  # fmt: skip
    requests = write_jsonl(tmp_path / "flaky.jsonl", chat_records(20))
    table = tmp_path / "twice.csv"
    table.write_text("q\nsame\nsame\n")
    with SandboxServer(flaky) as server, cb.Client(TEST_KEY, base_url=server.base_url) as client:
        with nothing_printed():
            run = client.create(requests, model=MODEL).wait(timeout=60, interval=0.1)
            with pytest.raises(cb.UsageError) as no_schema:
                run.retry(only_invalid=True)
            newest = run.retry(rounds=5, pause=0.05, interval=0.1, timeout=120)
            sampled = client.create(cb.PromptTable(table, "{{ q }}", dedupe=False), model=MODEL)
            client.create(
                write_jsonl(tmp_path / "any.jsonl", chat_records(1)), model="batch-only-model"
            )
    said = logged()
    assert run.batch.num_failed_records and newest.name.startswith("flaky [retry ")
    assert newest.batch.num_failed_records == 0
    assert re.search(r"^every record succeeded after \d+ retr(y|ies)$", said, re.M), said
    assert "twice.csv: 2 rows, each row its own request (dedupe=False): 2 requests to send" in said
    assert sampled.batch.num_records == 2
    skipped = "the context check was skipped: the API lists no model 'batch-only-model'"
    assert re.search(f"^{re.escape(skipped)}.*; going on$", said, re.M), (
        said
    )  # no strict mode to offer
    assert "--no-dedupe" not in said and "cbatch " not in said
    assert str(no_schema.value).startswith("only_invalid=True picks answers that break")
    assert f"batch {run.id} was not made with a schema on this machine" in str(no_schema.value)
    assert no_schema.value.hint == "leave out only_invalid=True to send again what failed"


def test_a_wait_retry_or_reader_given_a_value_it_cannot_use_raises_a_usage_error(
    client: cb.Client, tmp_path: Path
) -> None:
    """As ``cb.Split(max_records=0)`` does: a ``cb.CbatchError`` with exit code 2 at the call, never
    a bare ``ValueError`` (nor pyarrow's, once the results were downloaded)."""
    requests = tmp_path / "one.jsonl"
    requests.write_text(
        json.dumps({"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}})
        + "\n"
    )
    with nothing_printed():
        run = client.create(requests, model="command-r-08-2024").wait(timeout=60, interval=0.1)
        calls = {
            "timeout must be a positive number of seconds, not -1": lambda: run.wait(timeout=-1),
            "interval must be a positive number of seconds, not 0": lambda: run.wait(interval=0),
            "rounds must be 1 or more, not 0": lambda: run.retry(rounds=0),
            "batch_size must be 1 or more, not 0": lambda: run.arrow_batches(batch_size=0),
        }
        for says, call in calls.items():
            with pytest.raises(cb.UsageError) as refused:
                call()
            assert refused.value.exit_code == 2 and str(refused.value) == says


def test_a_job_stopped_while_its_parts_are_sent_logs_the_call_that_carries_on(
    sandbox: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``create_job`` stopped (Ctrl-C) after its first upload never returned a ``Job``: the words
    name the call that finds it again, ``client.job(ID).resume()``, which sends the rest once."""
    caplog.set_level(logging.INFO, logger="cohere_batch_cli")
    requests = write_jsonl(tmp_path / "big.jsonl", chat_records(4))

    with nothing_printed():
        with cb.Client(TEST_KEY, base_url=sandbox.base_url, on_event=stop_after_upload) as first:
            with pytest.raises(KeyboardInterrupt):
                first.create_job(requests, model="command-r-08-2024", split=cb.Split(max_records=2))
        (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped")]
        with cb.Client(TEST_KEY, base_url=sandbox.base_url) as client:
            (job,) = client.jobs()
            assert said.endswith(f"carry on with: client.job({job.id!r}).resume()")
            job.resume().wait(timeout=60, interval=0.1)
            assert [part.batch.num_records for part in job.parts()] == [2, 2]
