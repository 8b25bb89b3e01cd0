"""Safe to call again: a create under an idempotency key, killed and run again, makes one batch.

The program under test is plain library code in a child Python process (the
kill is a real SIGKILL: no ``finally`` runs, nothing is recorded after it),
run against the session's sandbox over loopback. What the tests read is the
sandbox's own batch and dataset lists: the names carry the key's run id, so
the batches and datasets of one key are counted there, whatever this machine
remembers. "The same store" is the first run's ``CBATCH_STATE_DIR``; "an empty
store" is a fresh one, as on another machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.idempotency import run_id_of
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import chat_records, write_jsonl
from tests.support.keyed import job_made_for, made_for
from tests.support.quiet import nothing_printed
from tests.support.stops import stop_after_upload

MODEL = "command-r-08-2024"

PROGRAM = """
import os, signal, sys
import cohere_batch_cli as cb

path, key, kill = sys.argv[1:4]


def on_event(event):
    # the hardest window a program can hit on purpose: the dataset is uploaded, no batch exists
    if kill == "upload" and event.kind == "step_done" and event.description.startswith("uploading"):
        os.kill(os.getpid(), signal.SIGKILL)


with cb.Client(on_event=on_event) as client:
    run = client.create(path, model="command-r-08-2024", name="nightly", idempotency_key=key)
    if kill == "create":
        os.kill(os.getpid(), signal.SIGKILL)
    print(run.id)
"""


def run_program(sandbox: Any, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, CO_API_KEY=TEST_KEY, CO_API_URL=sandbox.base_url, CBATCH_STATE_DIR=str(state)
    )
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("store", ["the same store", "an empty store"])
@pytest.mark.parametrize("kill", ["upload", "create"])
def test_a_create_killed_and_run_again_makes_one_batch_and_one_dataset(
    sandbox: Any, tmp_path: Path, kill: str, store: str
) -> None:
    requests = write_jsonl(tmp_path / "requests.jsonl", chat_records(3))
    key = f"nightly-{uuid.uuid4()}"
    first_state = tmp_path / "state-1"
    killed = run_program(sandbox, first_state, str(requests), key, kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    batches, datasets = made_for(sandbox, key)
    assert (len(batches), len(datasets)) == ((0, 1) if kill == "upload" else (1, 1))

    again_state = first_state if store == "the same store" else tmp_path / "state-2"
    again = run_program(sandbox, again_state, str(requests), key, "none")
    assert again.returncode == 0, again.stderr
    batch_id = again.stdout.strip()
    assert made_for(sandbox, key) == ([batch_id], datasets)  # nothing uploaded, nothing made twice
    if kill == "create":
        assert batch_id == batches[0]

    third = run_program(sandbox, again_state, str(requests), key, "none")
    assert third.stdout.strip() == batch_id
    assert made_for(sandbox, key) == ([batch_id], datasets)


def test_the_same_key_with_another_request_is_refused_naming_each_field_that_differs(
    client: cb.Client, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = write_jsonl(tmp_path / "requests.jsonl", chat_records(3))
    other = write_jsonl(tmp_path / "other.jsonl", chat_records(4))
    key = f"nightly-{uuid.uuid4()}"
    with nothing_printed():
        run = client.create(requests, model=MODEL, name="nightly", idempotency_key=key)
        assert (
            client.create(requests, model=MODEL, name="nightly", idempotency_key=key).id == run.id
        )
        # this machine recorded the request: each field that differs is named, with both values
        with pytest.raises(cb.KeyReused) as refused:
            client.create(other, model="command-a-03-2025", name="nightly", idempotency_key=key)
    text = str(refused.value)
    assert "this machine's record" in text
    assert "input: fingerprint" in text
    assert 'model: "command-r-08-2024", now "command-a-03-2025"' in text
    assert "name:" not in text  # what is the same is not named
    assert refused.value.exit_code == ExitCode.KEY_REUSED == 17

    # another machine, no record: what the API shows is named (its model, its record count)
    monkeypatch.setenv("CBATCH_STATE_DIR", str(tmp_path / "elsewhere"))
    with nothing_printed(), pytest.raises(cb.KeyReused) as from_api:
        client.create(other, model="command-a-03-2025", name="nightly", idempotency_key=key)
    text = str(from_api.value)
    assert f"batch {run.id} on the API" in text
    assert 'model: "command-r-08-2024", now "command-a-03-2025"' in text
    assert "records: 3, now 4" in text
    # an option the API cannot show is still told apart, by the digest the name carries
    with nothing_printed(), pytest.raises(cb.KeyReused) as renamed:
        client.create(requests, model=MODEL, name="renamed", idempotency_key=key)
    assert "the input or an option differs" in str(renamed.value)
    assert made_for(sandbox, key)[0] == [run.id]


def test_a_table_run_with_a_key_is_refused_when_its_prompt_changes(
    client: cb.Client, sandbox: Any, tmp_path: Path
) -> None:
    table = tmp_path / "reviews.csv"
    table.write_text("id,text\n1,great\n2,awful\n", encoding="utf-8")
    key = f"reviews-{uuid.uuid4()}"
    with nothing_printed():
        run = client.create(
            cb.PromptTable(table, "Classify: {{ text }}", max_tokens=20),
            model=MODEL,
            idempotency_key=key,
        )
        again = client.create(
            cb.PromptTable(table, "Classify: {{ text }}", max_tokens=20),
            model=MODEL,
            idempotency_key=key,
        )
        assert again.id == run.id
        moved = (
            tmp_path / "elsewhere" / "reviews.csv"
        )  # another runner's checkout: the same request
        moved.parent.mkdir()
        moved.write_bytes(table.read_bytes())
        elsewhere = client.create(
            cb.PromptTable(moved, "Classify: {{ text }}", max_tokens=20),
            model=MODEL,
            idempotency_key=key,
        )
        assert elsewhere.id == run.id
        with pytest.raises(cb.KeyReused) as refused:
            client.create(
                cb.PromptTable(table, "Summarize: {{ text }}", max_tokens=20),
                model=MODEL,
                idempotency_key=key,
            )
    text = str(refused.value)
    assert 'prompt: "Classify: {{ text }}", now "Summarize: {{ text }}"' in text
    assert "max_tokens" not in text


def test_the_cli_with_the_same_idempotency_key_prints_the_same_batch(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    requests = write_jsonl(tmp_path / "requests.jsonl", chat_records(2))
    key = f"ci-step-{uuid.uuid4()}"
    command = ("create", "--file", str(requests), "--model", MODEL, "--idempotency-key", key)
    first = cli(*command, "-q").stdout.strip()
    second = cli(*command, "-q")
    assert second.stdout.strip() == first
    assert made_for(sandbox, key)[0] == [first]
    write_jsonl(requests, chat_records(3))
    refused = cli(*command, "-q", exit_code=ExitCode.KEY_REUSED)
    assert refused.stdout == ""
    error = refused.stderr.splitlines()[-1]
    assert error.startswith(f"error: idempotency key '{key}' names run {run_id_of(key)}"), error
    assert "input: fingerprint" in error
    assert made_for(sandbox, key)[0] == [first]


def test_an_empty_key_is_refused(cli: Cli, tmp_path: Path) -> None:
    requests = write_jsonl(tmp_path / "requests.jsonl", chat_records(1))
    refused = cli(
        "create", "--file", str(requests), "--model", MODEL, "--idempotency-key", " ",
        exit_code=ExitCode.USAGE,
    )  # fmt: skip
    assert refused.stderr.strip() == "error: the idempotency key is empty"


def test_a_key_given_again_after_a_retry_gives_back_the_original_batch(
    client: cb.Client, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = write_jsonl(tmp_path / "requests.jsonl", chat_records(3, fail={1}))
    key = f"retried-{uuid.uuid4()}"
    with nothing_printed():
        run = client.create(requests, model=MODEL, idempotency_key=key).wait(
            timeout=60, interval=0.1
        )
        retried = run.retry(timeout=60, interval=0.1)
        assert retried.id != run.id and f"[key {run_id_of(key)} " in retried.name
        # the retry's name keeps the key's tag in its label, but it is not the key's run: on
        # another machine (no record of the run), the newest batch carrying the tag is the retry's
        monkeypatch.setenv("CBATCH_STATE_DIR", str(tmp_path / "elsewhere"))
        assert client.create(requests, model=MODEL, idempotency_key=key).id == run.id


STORES = ("the same store", "an empty store")

JOB_PROGRAM = """
import logging, os, signal, sys
import cohere_batch_cli as cb

path, key, kill = sys.argv[1:4]
model = sys.argv[4] if len(sys.argv) > 4 else "command-r-08-2024"


def on_event(event):
    # part 1 uploaded, not created: the job's hardest window
    if kill == "upload" and event.kind == "step_done" and event.description.startswith("uploading"):
        os.kill(os.getpid(), signal.SIGKILL)
    # the job is recorded (step "splitting") and its input is being checked and cut
    if kill == "split" and event.kind == "step_started" and event.description.startswith("checking"):
        os.kill(os.getpid(), signal.SIGKILL)


class PlanWritten(logging.Handler):
    # the split's summary is logged once its plan is in the store, before any part is sent
    def emit(self, record):
        if kill == "plan" and "checked; job" in record.getMessage():
            os.kill(os.getpid(), signal.SIGKILL)


logging.getLogger("cohere_batch_cli").addHandler(PlanWritten())
logging.getLogger("cohere_batch_cli").setLevel(logging.INFO)

with cb.Client(on_event=on_event) as client:
    try:
        job = client.create_job(
            path, model=model, name="nightly", split=cb.Split(max_records=2), idempotency_key=key
        )
    except cb.KeyReused as error:
        print(error, file=sys.stderr)
        sys.exit(int(error.exit_code))
    if kill == "create":
        os.kill(os.getpid(), signal.SIGKILL)
    print(job.id)
"""


@pytest.mark.parametrize(
    ("kill", "store"),
    [
        *((kill, store) for kill in ("upload", "create") for store in STORES),
        # killed before any part was sent: another machine sees nothing, so only this one
        ("split", "the same store"),
        ("plan", "the same store"),
    ],
)
def test_a_job_killed_and_created_again_with_its_key_sends_each_part_once(
    sandbox: Any, tmp_path: Path, kill: str, store: str
) -> None:
    """Killed while its input is split (the job recorded, or its plan just written: no part sent,
    the key not yet bound), after a part's upload, or after every create: the same call again
    sends each part once, under the key's names, and another request under the key is refused."""
    requests = write_jsonl(tmp_path / "requests.jsonl", chat_records(5))
    key = f"job-{uuid.uuid4()}"
    env = dict(os.environ, CO_API_KEY=TEST_KEY, CO_API_URL=sandbox.base_url)

    def run(state: Path, kill: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", JOB_PROGRAM, str(requests), key, kill, *extra],
            env=dict(env, CBATCH_STATE_DIR=str(state)), capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    killed = run(tmp_path / "state-1", kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if kill in ("split", "plan"):
        assert job_made_for(sandbox, key) == ([], []), "killed before any part was sent"
    state = tmp_path / ("state-1" if store == "the same store" else "state-2")
    again = run(state, "none")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == run_id_of(key)  # the job's id is the key's run id
    batches, datasets = job_made_for(sandbox, key)
    with CohereClient(TEST_KEY, sandbox.base_url) as api:
        names = {api.get_batch(b).name for b in batches}
    assert all(f"[key {run_id_of(key)} " in n for n in names), names  # the request's digest too
    assert len(batches) == 3 and len(datasets) == 3  # 5 records, 2 a part: each part once
    refused = run(state, "none", "command-a-03-2025")
    assert refused.returncode == ExitCode.KEY_REUSED, refused.stderr
    assert job_made_for(sandbox, key) == (batches, datasets)


def test_jobs_create_with_the_same_idempotency_key_prints_the_same_job(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    requests = write_jsonl(tmp_path / "requests.jsonl", chat_records(3))
    key = f"ci-job-{uuid.uuid4()}"
    command = ("jobs", "create", str(requests), "--model", MODEL, "--max-records-per-batch", "2")
    first = cli(*command, "--idempotency-key", key, "-q").stdout.strip()
    assert first == run_id_of(key)
    assert cli(*command, "--idempotency-key", key, "-q").stdout.strip() == first
    split = cli("create", "--file", str(requests), "--model", MODEL, "--max-records-per-batch", "2",
                "--idempotency-key", key, "-q")  # fmt: skip
    assert split.stdout.strip() == first  # create --split is the same job
    assert len(job_made_for(sandbox, key)[0]) == 2


def test_a_key_names_one_batch_or_one_job_never_both(
    client: cb.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = write_jsonl(tmp_path / "requests.jsonl", chat_records(3))
    batch_key, job_key = f"one-{uuid.uuid4()}", f"job-{uuid.uuid4()}"
    with nothing_printed():
        client.create(requests, model=MODEL, idempotency_key=batch_key)
        client.create_job(
            requests, model=MODEL, split=cb.Split(max_records=2), idempotency_key=job_key
        )
        # this machine's record of each key, then (another machine) the API's names alone
        for said_job, said_batch in (
            ("this machine's record", "this machine's record"),
            ("one batch, not a job of parts", "a job of parts, not one batch"),
        ):
            with pytest.raises(cb.KeyReused, match=said_job):
                client.create_job(
                    requests, model=MODEL, split=cb.Split(max_records=2), idempotency_key=batch_key
                )
            with pytest.raises(cb.KeyReused, match=said_batch):
                client.create(requests, model=MODEL, idempotency_key=job_key)
            monkeypatch.setenv("CBATCH_STATE_DIR", str(tmp_path / "elsewhere"))


def test_a_keyed_create_stopped_after_its_upload_says_to_run_it_again_with_its_key(
    sandbox: Any, client: cb.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not ``create --dataset``: that batch would not carry the key's names, and the key, called
    again, would make a second one. The same call with the same key makes the one batch."""
    import logging

    caplog.set_level(logging.INFO, logger="cohere_batch_cli")
    requests = write_jsonl(tmp_path / "stopped.jsonl", chat_records(3))
    key = f"stopped-{uuid.uuid4()}"

    with nothing_printed():
        with cb.Client(TEST_KEY, base_url=sandbox.base_url, on_event=stop_after_upload) as first:
            with pytest.raises(KeyboardInterrupt):
                first.create(requests, model=MODEL, idempotency_key=key)
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped")]
        assert made_for(sandbox, key)[0] == []  # stopped before the create
        run = client.create(requests, model=MODEL, idempotency_key=key)
    (dataset,) = made_for(sandbox, key)[1]
    assert said == [
        f"stopped after the upload, before the batch was created: dataset {dataset} holds the file; "
        "run the same create again with the same idempotency key: it carries on from it "
        "(it uploads nothing)"
    ]
    assert made_for(sandbox, key) == ([run.id], [dataset])  # the advice kept: one of each


def test_a_keyed_create_out_of_time_before_its_create_says_to_run_it_again_with_its_key(
    tmp_path: Path,
) -> None:
    """``create --watch --timeout`` ran out while the keyed run's dataset was validated: the hint
    is the same command with the same key, which then makes the one batch from that dataset."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    settings = SandboxSettings(data_dir=tmp_path / "sb", port=0, validation_delay=1.0)
    requests = write_jsonl(tmp_path / "slow.jsonl", chat_records(2))
    key = f"slow-{uuid.uuid4()}"
    command = ("create", "--file", str(requests), "--model", MODEL, "--idempotency-key", key)
    with SandboxServer(settings) as server:
        cli = Cli(server.base_url, TEST_KEY)
        out_of_time = cli(
            *command, "--watch", "--plain", "--timeout", "0.3s", exit_code=ExitCode.TIMEOUT
        )
        (dataset,) = made_for(server, key)[1]
        assert out_of_time.stderr.splitlines()[-1].endswith(
            "no batch was created; run the same create again with the same idempotency key: "
            f"it carries on from dataset {dataset} (it uploads nothing)"
        )
        assert "--dataset" not in out_of_time.stderr
        again = cli(*command, "-q")  # the advice kept: the one batch, from that dataset
        assert made_for(server, key) == ([again.stdout.strip()], [dataset])
