"""An interrupted ``create --file`` says which dataset it left, and how to go on from it (issue 24, item 19).

SIGTERM (CI cancelling a job) or Ctrl-C reaches the installed ``cbatch`` after the upload,
while it waits for validation, before any batch exists. The line names the dataset left;
the same command run again takes that dataset (found by the file's path and fingerprint
in the state store, checked on the API) and uploads nothing (issue 23: an interrupted
``create --file`` after its upload reuses that dataset), and so does the
``cbatch create --dataset ...`` it prints.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from tests.conftest import TEST_KEY
from tests.support.flows import chat_records, write_jsonl
from tests.support.installed import cbatch_env, cbatch_path, run_cbatch

MODEL = "command-r-08-2024"


def test_sigterm_after_the_upload_names_the_dataset_left_and_the_create_that_uses_it(
    tmp_path: Path,
) -> None:
    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, validation_delay=1.0, queue_delay=0.0,
        records_per_second=2000.0,
    )  # fmt: skip
    write_jsonl(tmp_path / "faq.jsonl", chat_records(3))
    with SandboxServer(settings) as server:
        with subprocess.Popen(
            [cbatch_path(), "create", "--file", "faq.jsonl", "--model", MODEL, "--name", "faq"],
            cwd=tmp_path, env=cbatch_env(server.base_url, tmp_path), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as proc:  # fmt: skip
            assert proc.stderr is not None
            seen = []
            for (
                line
            ) in proc.stderr:  # the moment is read from cbatch itself, never guessed by a timer
                seen.append(line)
                if line.startswith("uploaded as dataset "):
                    break
            proc.send_signal(signal.SIGTERM)
            rest = proc.stderr.read()
            proc.wait(timeout=30)
        said = "".join(seen) + rest
        assert proc.returncode == 143, said
        left = re.search(r"dataset (\S+) holds the file", said)
        assert left is not None, said
        assert "before the batch was created" in said
        assert "the same command run again uses it (it uploads nothing)" in said
        again = re.search(r"and so does: (.+)$", said, re.M)
        assert again is not None, said
        command = shlex.split(again.group(1))
        assert command[:4] == ["cbatch", "create", "--dataset", left.group(1)]
        with CohereClient(TEST_KEY, server.base_url) as client:
            assert list(client.iter_batches()) == [], "no batch was created"
            deadline = time.monotonic() + 30
            while client.get_dataset(left.group(1)).validation_status != "validated":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        uploads = sum(
            1 for m, p, _ in server.request_log if m == "POST" and p.split("?")[0] == "/v1/datasets"
        )
        done = run_cbatch(server.base_url, [*command[1:], "-q"], tmp_path)
        assert done.returncode == 0, done.stderr
        assert (
            sum(
                1
                for m, p, _ in server.request_log
                if m == "POST" and p.split("?")[0] == "/v1/datasets"
            )
            == uploads
        )


def test_the_same_create_run_again_after_a_stop_between_upload_and_create_uploads_nothing(
    tmp_path: Path,
) -> None:
    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, validation_delay=1.0, queue_delay=0.0,
        records_per_second=2000.0,
    )  # fmt: skip
    write_jsonl(tmp_path / "faq.jsonl", chat_records(3))
    command = ["create", "--file", "faq.jsonl", "--model", MODEL, "--name", "faq", "-q"]
    with SandboxServer(settings) as server:
        with subprocess.Popen(
            [cbatch_path(), *command], cwd=tmp_path, env=cbatch_env(server.base_url, tmp_path),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as proc:  # fmt: skip
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.startswith("uploaded as dataset "):
                    left = line.split()[-1]
                    break
            proc.send_signal(signal.SIGTERM)
            proc.stderr.read()
            proc.wait(timeout=30)

        def uploads() -> int:
            return sum(
                1
                for m, p, _ in server.request_log
                if m == "POST" and p.split("?")[0] == "/v1/datasets"
            )

        before = uploads()
        again = run_cbatch(server.base_url, command, tmp_path)
        assert again.returncode == 0, again.stderr
        assert f"as dataset {left}; nothing is uploaded again" in again.stderr
        assert uploads() == before, "the dataset the stopped run left is used, not a new upload"
        with CohereClient(TEST_KEY, server.base_url) as client:
            (batch,) = list(client.iter_batches())
            assert batch.input_dataset_id == left and again.stdout.split() == [batch.id]
        # Once a batch was made from it, the same command makes a new batch, as it always has.
        third = run_cbatch(server.base_url, command, tmp_path)
        assert third.returncode == 0, third.stderr
        assert uploads() == before + 1 and "nothing is uploaded again" not in third.stderr


def test_a_table_create_stopped_by_ctrl_c_after_its_upload_is_carried_on_by_the_same_command(
    tmp_path: Path,
) -> None:
    """A new user's trial: Ctrl-C after ``create --from``'s upload, then the same command. It rendered
    the table into another temporary file and uploaded a second dataset; now it takes the one left."""
    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, validation_delay=1.0, queue_delay=0.0,
        records_per_second=2000.0,
    )  # fmt: skip
    (tmp_path / "reviews.csv").write_text("id,text\nr1,good soup\nr2,cold tea\n", encoding="utf-8")
    command = [
        "create", "--from", "reviews.csv", "--id-column", "id", "--prompt", "Sum up: {{ text }}",
        "--model", MODEL, "-q",
    ]  # fmt: skip
    with SandboxServer(settings) as server:
        with subprocess.Popen(
            [cbatch_path(), *command], cwd=tmp_path, env=cbatch_env(server.base_url, tmp_path),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as proc:  # fmt: skip
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.startswith("uploaded as dataset "):
                    left = line.split()[-1]
                    break
            proc.send_signal(signal.SIGINT)
            said = proc.stderr.read()
            proc.wait(timeout=30)
        assert proc.returncode == 130, said
        assert (
            f"dataset {left} holds the requests of reviews.csv; the same create run again carries on "
            "from it, uploading nothing"
        ) in said
        again = run_cbatch(server.base_url, command, tmp_path)
        assert again.returncode == 0, again.stderr
        assert f"uploaded the requests of reviews.csv as dataset {left}" in again.stderr
        with CohereClient(TEST_KEY, server.base_url) as client:
            inputs = [
                d.id for d in client.iter_datasets() if (d.dataset_type or "").endswith("-input")
            ]
            assert inputs == [left], "one dataset: the one the stopped run left"
            (batch,) = list(client.iter_batches())
            assert batch.input_dataset_id == left and again.stdout.split() == [batch.id]


def test_a_job_stopped_while_its_parts_are_sent_names_the_resume_that_carries_on(
    tmp_path: Path,
) -> None:
    """Ctrl-C (here SIGINT) while a job's parts wait for validation said only "interrupted": the
    line now says what is kept and names ``cbatch jobs resume JOB``, which sends the rest."""
    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, validation_delay=1.0, queue_delay=0.0,
        records_per_second=2000.0,
    )  # fmt: skip
    write_jsonl(tmp_path / "big.jsonl", chat_records(4))
    command = ["jobs", "create", "big.jsonl", "--model", MODEL, "--max-records-per-batch", "2"]
    with SandboxServer(settings) as server:
        with subprocess.Popen(
            [cbatch_path(), *command], cwd=tmp_path, env=cbatch_env(server.base_url, tmp_path),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as proc:  # fmt: skip
            assert proc.stderr is not None
            seen = []
            for line in proc.stderr:  # the moment is read from cbatch itself, never guessed
                seen.append(line)
                if line.startswith("part 1 of 2: ") and "uploaded as dataset" in line:
                    break
            proc.send_signal(signal.SIGINT)
            said = "".join(seen) + proc.stderr.read()
            proc.wait(timeout=30)
        assert proc.returncode == 130, said
        job = re.search(r"stopped while job (\S+) was sent: ", said)
        assert job is not None, said
        assert f"; carry on with: cbatch jobs resume {job.group(1)}\n" in said
        resumed = run_cbatch(server.base_url, ["jobs", "resume", job.group(1)], tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        with CohereClient(TEST_KEY, server.base_url) as client:
            assert len(list(client.iter_batches())) == 2  # each part once
