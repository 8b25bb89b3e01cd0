"""Retries against the real sandbox: what is sent again, where it is read from, rounds that
end with every transient failure cleared, merged results that hold each custom_id once, and
lineage shown by get and rebuilt from names alone.

What a retry sends, finds and refuses is driven through the Python API in-process
(``run.retry``); what has no API value (``--dry-run``, ``--input``, ``--match``,
``--own``, ``--no-missing``), the views of ``get`` and ``watch``'s exit codes go through
``cbatch``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from cohere_batch_cli import naming
from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.models import Batch
from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
from cohere_batch_cli.tasks.datasets import wait_for_dataset
from tests.conftest import TEST_KEY, Cli
from tests.sandbox.sandbox_client import Api
from tests.support.flows import chat_records, wait_terminal, write_jsonl
from tests.support.quiet import nothing_printed

PERMANENT = re.compile(r"invalid request: .+|too many tokens: .+")
TRANSIENT = re.compile(r"internal server error, .+|request timed out")


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[Callable[..., SandboxServer]]:
    """A fresh sandbox of the test's own with the failure settings asked for (its decisions repeat)."""
    started: list[SandboxServer] = []

    def start(**settings: Any) -> SandboxServer:
        base: dict[str, Any] = {"data_dir": tmp_path / f"sandbox-{len(started)}", "port": 0,
                                "records_per_second": 5000.0, "output_ready_delay": 0.0}  # fmt: skip
        server = SandboxServer(SandboxSettings(**{**base, **settings})).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


_CLIENTS: list[CohereClient] = []


def client_of(server: Any) -> CohereClient:
    client = CohereClient(TEST_KEY, server.base_url)
    _CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def attempts_of(client: CohereClient, root_id: str) -> dict[int, list[Batch]]:
    """Every batch of the sandbox that is an attempt of ``root_id``, by attempt number."""
    found: dict[int, list[Batch]] = {}
    for batch in client.iter_batches(page_size=1000):
        lineage = naming.parse_batch_name(batch.name)[1]
        if batch.id == root_id:
            found.setdefault(1, []).append(batch)
        elif lineage is not None and lineage.root_batch_id == root_id:
            found.setdefault(lineage.attempt, []).append(batch)
    return found


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def upload(client: CohereClient, path: Path, *, keep_original: bool) -> str:
    dataset_id = client.upload_dataset(
        path,
        name=path.stem,
        dataset_type="batch-chat-v2-input",
        keep_fields=["custom_id"],
        keep_original_file=keep_original,
    )
    assert wait_for_dataset(client, dataset_id, timeout=30).validation_status == "validated"
    return dataset_id


def finished_batch(
    client: CohereClient,
    tmp_path: Path,
    name: str,
    count: int,
    fail: set[int],
    *,
    keep_original: bool,
) -> tuple[Batch, Path]:
    """A batch created straight through the API (the state store knows nothing of it), ended."""
    path = write_jsonl(tmp_path / f"{name}.jsonl", chat_records(count, fail=fail))
    dataset_id = upload(client, path, keep_original=keep_original)
    batch = client.create_batch(name=name, input_dataset_id=dataset_id, model="command-r")
    return wait_terminal(client, batch.id), path


# -- Done when: rounds end with every transient failure cleared ----------------------------------


def test_create_with_retry_rounds_clears_transient_failures_and_reports_the_permanent_ones(
    faulty: Callable[..., SandboxServer], tmp_path: Path, logged: Any
) -> None:
    # The seed makes every decision repeat: with it, three rounds clear every transient failure.
    server = faulty(transient_fail_rate=0.3, permanent_fail_rate=0.1, missing_rate=0.05, seed=1)
    inputs = chat_records(60)
    write_jsonl(tmp_path / "requests.jsonl", inputs)
    with cb.Client(TEST_KEY, base_url=server.base_url) as lib, nothing_printed():
        root = lib.create("requests.jsonl", model="command-r").wait(timeout=60, interval=0.1)
        newest = root.retry(rounds=3, pause=0.05, timeout=60, interval=0.1)
        root.results("merged.jsonl")
    root_id = root.id
    client = client_of(server)
    chain = attempts_of(client, root_id)
    assert all(len(batches) == 1 for batches in chain.values()), "exactly one batch per attempt"
    assert sorted(chain) == list(range(1, len(chain) + 1)) and 2 <= len(chain) <= 4
    assert newest.id == chain[max(chain)][0].id, "the newest attempt comes back"

    transient: set[str] = set()
    sandbox_api = Api(server)
    try:
        for number, (batch,) in chain.items():  # each attempt's own output, as the sandbox holds it
            own = sandbox_api.results(batch.output_dataset_id)
            transient |= {r["custom_id"] for r in own if TRANSIENT.fullmatch(r.get("error") or "")}
            if number == 1:
                missing = {r["custom_id"] for r in inputs} - {r["custom_id"] for r in own}
    finally:
        sandbox_api.close()
    assert transient and missing, "the sandbox failed records of each kind"

    merged = records(tmp_path / "merged.jsonl")
    ids = [r["custom_id"] for r in merged]
    assert sorted(ids) == sorted(r["custom_id"] for r in inputs), (
        "each input custom_id exactly once"
    )
    by_id = {r["custom_id"]: r for r in merged}
    assert all("body" in by_id[cid] and "error" not in by_id[cid] for cid in transient), (
        "every transient failure succeeded"
    )
    assert all(
        "error" not in by_id[cid] or PERMANENT.fullmatch(by_id[cid]["error"]) for cid in missing
    )
    failures = [r for r in merged if "error" in r]
    assert failures and all(PERMANENT.fullmatch(r["error"]) for r in failures)
    assert all(r["attempt"] in chain for r in merged)
    said = logged()
    assert f"{len(failures)} records of batch {root_id} still fail after the last round" in said
    assert f"merged {len(chain)} attempts of batch {root_id}" in said


def test_rounds_end_at_zero_when_every_record_succeeds(
    faulty: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    server = faulty(transient_fail_rate=0.3, seed=5)
    cli = Cli(server.base_url, TEST_KEY)
    write_jsonl(tmp_path / "requests.jsonl", chat_records(20))
    result = cli(
        "create",
        "--file",
        "requests.jsonl",
        "--model",
        "command-r",
        "--retry-failed",
        "5",
        "--watch",
        "--pause",
        "0.05s",
        "--interval",
        "0.1s",
        "--max-interval",
        "0.2s",
    )
    assert "every record succeeded after" in result.stderr
    cli("results", _root_of(result.stdout), "-o", "all.jsonl")
    assert all("body" in r for r in records(tmp_path / "all.jsonl"))


def _root_of(stdout: str) -> str:
    (line,) = [row for row in stdout.splitlines() if row.startswith("ID:")]
    return line.split()[1]


# -- Done when: retry works with an empty state store, from the input dataset alone ---------------


@pytest.mark.parametrize(
    ("keep_original", "source"), [(True, "its original_url"), (False, "parsed records")]
)
def test_a_retry_with_an_empty_store_reads_the_input_dataset(
    sandbox: Any, tmp_path: Path, keep_original: bool, source: str, logged: Any
) -> None:
    client = client_of(sandbox)
    batch, path = finished_batch(
        client, tmp_path, f"nostore-{keep_original}", 6, {1, 4}, keep_original=keep_original
    )
    with cb.Client(TEST_KEY, base_url=sandbox.base_url) as lib, nothing_printed():
        retry = lib.batch(batch.id).retry(timeout=60, interval=0.1).batch
    assert source in logged() and "input: " in logged()
    assert retry.name == f"nostore-{keep_original} [retry 1 of {batch.id}]"
    assert retry.num_records == 2
    assert retry.input_dataset_id is not None
    dataset = client.get_dataset(retry.input_dataset_id)
    assert (
        dataset.name == f"nostore-{str(keep_original).lower()}-retry1-{batch.id[:8]}"
        and len(dataset.name) < 50
    )
    import httpx

    sent = [
        json.loads(line)
        for line in httpx.get(dataset.parts[0].raw["original_url"]).text.splitlines()
    ]
    originals = {
        r["custom_id"]: r for r in (json.loads(line) for line in path.read_text().splitlines())
    }
    assert sent == [originals["r-1"], originals["r-4"]], "same custom_ids, same bodies"

    # a retry of the retry, on a machine that has never seen either: the lineage is in the names
    from cohere_batch_cli.state.store import close_all, store_path

    close_all()
    shutil.rmtree(store_path().parent, ignore_errors=True)
    with cb.Client(TEST_KEY, base_url=sandbox.base_url) as lib, nothing_printed():
        # rounds count the chain's retries: a second one is the next attempt
        again = lib.batch(retry.id).retry(rounds=2, pause=0.05, timeout=60, interval=0.1).batch
    assert again.name == f"nostore-{keep_original} [retry 2 of {batch.id}]"
    assert again.num_records == 2
    assert {n: len(b) for n, b in attempts_of(client, batch.id).items()} == {1: 1, 2: 1, 3: 1}


# -- sources ------------------------------------------------------------------------------------


def test_the_recorded_file_is_used_while_unchanged_and_refused_once_changed(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "requests.jsonl", chat_records(5, fail={2}))
    created = json.loads(
        cli("create", "--file", "requests.jsonl", "--model", "command-r", "--json").stdout
    )
    wait_terminal(client_of(sandbox), created["id"])
    dry = cli("retry", created["id"], "--dry-run")
    assert f"(recorded when batch {created['id']} was created from it; unchanged)" in dry.stderr
    original = (tmp_path / "requests.jsonl").read_bytes()
    (tmp_path / "requests.jsonl").write_bytes(original.replace(b'"r-3"', b'"x-3"'))  # same size
    same_size = cli("retry", created["id"], exit_code=ExitCode.REFUSED)
    assert "its content changed (another fingerprint)" in same_size.stderr
    (tmp_path / "requests.jsonl").write_bytes(original)
    with open(tmp_path / "requests.jsonl", "a") as fh:
        fh.write(json.dumps(chat_records(6)[5]) + "\n")
    refused = cli("retry", created["id"], exit_code=ExitCode.REFUSED)
    assert refused.stderr.splitlines()[-1].startswith(
        f"error: {(tmp_path / 'requests.jsonl').resolve()} has changed since batch {created['id']} was created from it"
    )
    assert "--input FILE" in refused.stderr and "Traceback" not in refused.stderr
    given = cli("retry", created["id"], "--input", "requests.jsonl", "--dry-run", "-q")
    assert (
        given.stdout.split() == ["r-2", "r-5"] and "(--input)" in given.stderr
    )  # r-5 has no result: it is new
    assert cli(
        "retry", created["id"], "--input", "requests.jsonl", "--dry-run", "-q", "--no-missing"
    ).stdout.split() == ["r-2"]


def test_a_file_that_is_not_the_batch_s_input_is_refused(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    batch, _ = finished_batch(
        client_of(sandbox), tmp_path, "wrong-input", 3, {0}, keep_original=False
    )
    write_jsonl(tmp_path / "other.jsonl", chat_records(4, prefix="x"))
    result = cli("retry", batch.id, "--input", "other.jsonl", exit_code=ExitCode.REFUSED)
    assert "none of the 4 records of other.jsonl has a result in the batch" in result.stderr


# -- what is sent, and the dry run -------------------------------------------------------------


def test_a_dry_run_says_what_and_why_and_sends_nothing(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    client = client_of(sandbox)
    batch, _ = finished_batch(client, tmp_path, "dry", 5, {0, 3}, keep_original=True)
    before = sum(1 for _ in client.iter_batches(page_size=1000))
    plain = cli("retry", batch.id, "--dry-run")
    assert [line.split("\t")[:3] for line in plain.stdout.splitlines()] == [
        ["r-0", "failed", "1"],
        ["r-3", "failed", "1"],
    ]
    assert "sandbox: failure requested by [[sandbox:fail]] marker" in plain.stdout
    assert (
        'would send again 2 of 5 records: 2 failed (2 "sandbox: failure requested by [[sandbox:fail]] marker")'
        in plain.stderr
    )
    listed = json.loads(cli("retry", batch.id, "--dry-run", "--json").stdout)
    assert [r["custom_id"] for r in listed] == ["r-0", "r-3"] and listed[0]["reason"] == "failed"
    assert cli("retry", batch.id, "--dry-run", "--match", "timed out", "-q").stdout == ""
    assert sum(1 for _ in client.iter_batches(page_size=1000)) == before


def test_match_picks_failures_by_text_and_nothing_picked_with_failures_left_is_12(
    cli: Cli, sandbox: Any, tmp_path: Path
) -> None:
    batch, _ = finished_batch(client_of(sandbox), tmp_path, "match", 4, {1}, keep_original=True)
    result = cli("retry", batch.id, "--match", "timed out", exit_code=ExitCode.RECORDS_FAILED)
    assert (
        "1 records still fail and none of them is picked (failures matching 'timed out'"
        in result.stderr
    )
    picked = json.loads(cli("retry", batch.id, "--match", "(?i)MARKER", "--json").stdout)
    assert picked["num_records"] == 1


def test_a_batch_still_running_is_not_retried(
    cli: Cli, faulty: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    server = faulty(queue_delay=60.0)
    client = client_of(server)
    path = write_jsonl(tmp_path / "slow.jsonl", chat_records(2))
    batch = client.create_batch(
        name="slow", input_dataset_id=upload(client, path, keep_original=True), model="command-r"
    )
    result = Cli(server.base_url, TEST_KEY)("retry", batch.id, exit_code=ExitCode.REFUSED)
    assert (
        f"error: batch {batch.id} (attempt 1 of {batch.id}) is still queued; wait for it with: cbatch watch {batch.id}"
        in result.stderr
    )


def test_nothing_to_send_when_every_record_succeeded(
    client: cb.Client, sandbox: Any, tmp_path: Path, logged: Any
) -> None:
    api = client_of(sandbox)
    batch, _ = finished_batch(api, tmp_path, "clean", 3, set(), keep_original=True)
    with nothing_printed():
        assert client.batch(batch.id).retry(timeout=60, interval=0.1).id == batch.id
    assert "nothing to send again: all 3 records succeeded" in logged()
    assert [b.id for b in attempts_of(api, batch.id)[1]] == [batch.id] and 2 not in attempts_of(
        api, batch.id
    )


# -- lineage and merged results -----------------------------------------------------------------


def test_get_shows_the_lineage_and_results_merge_by_default(
    client: cb.Client, cli: Cli, tmp_path: Path, logged: Any
) -> None:
    """The attempts made and their merged results through the API; ``get``'s view and
    ``--own`` (no API value) through cbatch."""
    write_jsonl(tmp_path / "requests.jsonl", chat_records(4, fail={2}))
    with nothing_printed():
        first = client.create("requests.jsonl", model="command-r", name="lineage")
        first.wait(timeout=60, interval=0.1)
        second = first.retry(timeout=60, interval=0.1)
    root, retry = {"id": first.id}, {"id": second.id}
    shown_root = cli("get", root["id"]).stdout
    assert re.search(r"^Attempt:\s+1 \(the original\)$", shown_root, re.M)
    assert re.search(rf"^Retried by:\s+{retry['id']}$", shown_root, re.M)
    shown = cli("get", retry["id"]).stdout
    assert re.search(rf"^Attempt:\s+2 \(retry 1 of {root['id']}\)$", shown, re.M)
    assert re.search(rf"^Retry of:\s+{root['id']}$", shown, re.M)
    assert "attempt" not in json.loads(cli("get", retry["id"], "--json").stdout), (
        "--json is the API's own object"
    )

    with nothing_printed():
        first.results("merged.jsonl")
    rows = records(tmp_path / "merged.jsonl")
    assert sorted((r["custom_id"], r["attempt"]) for r in rows) == [
        ("r-0", 1),
        ("r-1", 1),
        ("r-2", 2),
        ("r-3", 1),
    ]
    assert (
        f"merged 2 attempts of batch {root['id']}: 3 from attempt 1, 1 from attempt 2" in logged()
    )
    own = cli("results", root["id"], "--own", "-o", "own.jsonl")
    assert "merged" not in own.stderr and all(
        "attempt" not in r for r in records(tmp_path / "own.jsonl")
    )
    with nothing_printed():
        second.results("failed.csv", failed_only=True)
    lines = (tmp_path / "failed.csv").read_text().splitlines()
    assert (
        lines[0].endswith(",attempt")
        and lines[1].startswith("r-2,failed,")
        and lines[1].endswith(",2")
    )

    # Parquet goes through the same pipeline: the merged rows, each id once, with their attempt as a number
    pq = pytest.importorskip("pyarrow.parquet")
    with nothing_printed():
        first.results("merged.parquet")
    table = pq.read_table(tmp_path / "merged.parquet").to_pydict()
    assert sorted(zip(table["custom_id"], table["attempt"], table["status"], strict=True)) == [
        ("r-0", 1, "succeeded"), ("r-1", 1, "succeeded"), ("r-2", 2, "failed"), ("r-3", 1, "succeeded"),
    ]  # fmt: skip


def test_watch_can_make_failed_records_count(cli: Cli, sandbox: Any, tmp_path: Path) -> None:
    batch, _ = finished_batch(client_of(sandbox), tmp_path, "ci", 3, {0}, keep_original=True)
    assert cli("watch", batch.id).exit_code == 0
    strict = cli("watch", batch.id, "--fail-on-records", exit_code=ExitCode.RECORDS_FAILED)
    assert f"batch {batch.id}: 1 of 3 records failed or have no result" in strict.stderr
    cli("watch", batch.id, "--fail-on-records", "--no-exit-status")


def test_one_retry_of_a_root_at_a_time_on_a_machine(
    client: cb.Client, sandbox: Any, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from cohere_batch_cli.state.runlock import lock_file
    from cohere_batch_cli.state.store import store_path

    batch, _ = finished_batch(client_of(sandbox), tmp_path, "locked", 3, {0}, keep_original=True)
    lock = lock_file(store_path().parent, f"batch {batch.id}")
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with nothing_printed(), pytest.raises(cb.CbatchError) as refused:
            client.batch(batch.id).retry()
        assert refused.value.exit_code == ExitCode.REFUSED
        assert (
            f"batch {batch.id} is being sent by another cbatch on this machine (pid unknown)"
            in str(refused.value)
        ), "a holder that wrote no record is still refused"
    finally:
        holder.kill()
        holder.communicate()
    with nothing_printed():
        assert client.batch(batch.id).retry(timeout=60, interval=0.1).batch.num_records == 1
