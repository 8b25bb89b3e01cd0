"""A table run is a run like any other: embed tables, table jobs, estimates and dry runs (issue 25).

Each test runs against the real sandbox over loopback and reads back what a user would
see: the records the sandbox received (from its uploaded datasets), the results file, the
estimate, and for the dry runs the sandbox's request log (no POST at all). Runs, jobs and
their refusals go through the Python API in-process; what has no API value (estimates, dry
runs, ``--records``, ``jobs prune``, ``jobs resume``) goes through ``cbatch``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import Cli
from tests.sandbox.sandbox_client import Api
from tests.support.quiet import nothing_printed
from tests.support.stops import stop_after_upload

CHAT = "command-r-08-2024"
EMBED = "embed-english-v3.0"


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


DOCS = "id,title,text\nd1,One,the first document\nd2,Two,the second one\nd3,Three,a third text\n"


def sent(api: Api, run: cb.Run) -> list[dict[str, Any]]:
    """The records of the dataset the sandbox received for ``run``."""
    return [r for part in api.parts(run.batch.input_dataset_id) for r in part]


# -- embed -------------------------------------------------------------------------------------


def test_an_embed_table_is_embedded_end_to_end_and_its_results_hold_a_vector_a_row(
    client: cb.Client, cli: Cli, api: Api, tmp_path: Path, logged: Any
) -> None:
    write_csv(tmp_path / "docs.csv", DOCS)
    docs = cb.EmbedTable(
        "docs.csv", "text", id_column="id", input_type="search_document",
        types=("float", "int8"), truncate="END",
    )  # fmt: skip
    with nothing_printed():
        run = client.create(docs, model=EMBED).wait(timeout=60, interval=0.1)
    assert "docs.csv (rendered): 3 records of batch-embed-v2-input, checked" in logged()
    bodies = {r["custom_id"]: json.loads(r["body"]) for r in sent(api, run)}
    assert bodies["d2"] == {
        "inputs": [{"content": [{"type": "text", "text": "the second one"}]}],
        "input_type": "search_document",
        "embedding_types": ["float", "int8"],
        "truncate": "END",
    }
    with nothing_printed():
        run.results("vectors.jsonl")  # the table again, its vectors as columns
    rows = read_jsonl(tmp_path / "vectors.jsonl")
    assert [(r["id"], r["text"], r["status"]) for r in rows] == [
        ("d1", "the first document", "succeeded"),
        ("d2", "the second one", "succeeded"),
        ("d3", "a third text", "succeeded"),
    ]
    assert all(r["embeddings_float"] and r["embeddings_int8"] for r in rows)
    cli("results", run.id, "--records", "-o", "records.jsonl")  # no API value: through cbatch
    records = read_jsonl(tmp_path / "records.jsonl")
    assert sorted(r["custom_id"] for r in records) == ["d1", "d2", "d3"]
    for record in records:
        embeddings = record["body"]["embeddings"]
        assert len(embeddings["float"]) == 1 and len(embeddings["int8"]) == 1  # one input a row
        assert len(embeddings["float"][0]) == 1024  # embed-english-v3.0's dimension


def test_an_embed_run_sends_input_type_search_document_unless_told(
    client: cb.Client, api: Api, tmp_path: Path
) -> None:
    table = write_lines(tmp_path / "q.jsonl", [{"q": "where is it"}, {"q": "what is it"}])
    with nothing_printed():
        run = client.create(cb.EmbedTable(table, "q", max_tokens=64), model=EMBED)
    assert [json.loads(r["body"]) for r in sent(api, run)] == [
        {
            "inputs": [{"content": [{"type": "text", "text": text}]}],
            "input_type": "search_document",
            "max_tokens": 64,
        }
        for text in ("where is it", "what is it")
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [(None, "is null"), (7, "holds int, not text"), (["a"], "holds list, not text")],
)
def test_a_row_without_text_to_embed_is_refused_naming_row_and_column_and_nothing_is_sent(
    client: cb.Client, tmp_path: Path, posts: Any, value: Any, says: str
) -> None:
    table = write_lines(tmp_path / "t.jsonl", [{"text": "fine"}, {"text": value}])
    with nothing_printed(), pytest.raises(cb.CbatchError) as refused:
        client.create(cb.EmbedTable(table, "text"), model=EMBED)
    assert refused.value.exit_code == 5
    assert f"{table}: row 2: column 'text' {says} (nothing was sent)" in str(refused.value)
    assert "leave the rows without text out of the table first" in (refused.value.hint or "")
    assert posts() == []


def test_an_embed_column_the_table_lacks_is_refused_before_anything_is_sent(
    client: cb.Client, tmp_path: Path, posts: Any
) -> None:
    table = write_csv(tmp_path / "docs.csv", DOCS)
    with nothing_printed(), pytest.raises(cb.UsageError) as refused:
        client.create(cb.EmbedTable(table, "body"), model=EMBED)
    assert refused.value.exit_code == 2
    assert f"{table} has no column 'body'; its columns: id, title, text" in str(refused.value)
    assert posts() == []


# -- a table job ---------------------------------------------------------------------------------


def test_a_table_job_of_several_parts_gives_every_row_once(
    client: cb.Client, cli: Cli, api: Api, tmp_path: Path, logged: Any
) -> None:
    write_csv(tmp_path / "r.csv", "text\n" + "".join(f"line {i}\n" for i in range(7)))
    with nothing_printed():
        job = client.create_job(
            cb.PromptTable("r.csv", "Say {{ text }}"), model=CHAT, split=cb.Split(max_records=3)
        ).wait(timeout=60, interval=0.1)
        parts = job.parts()
    assert "r.csv: 7 rows, 7 distinct requests: 7 requests to send" in logged()
    assert len(parts) == 3 and all(p.status == cb.BatchStatus.COMPLETED for p in parts)
    ids = [r["custom_id"] for part in parts for r in sent(api, part)]
    assert ids == [str(n) for n in range(1, 8)]  # each row in one part, in order
    # the records, not the table: --records has no API value
    cli("jobs", "results", job.id, "--records", "-o", "all.jsonl")
    rows = read_jsonl(tmp_path / "all.jsonl")
    assert sorted(int(r["custom_id"]) for r in rows) == list(range(1, 8))
    assert all(r["body"]["message"]["content"] for r in rows)


def test_create_from_split_is_a_job_whose_requests_are_kept_until_it_is_pruned(
    client: cb.Client, cli: Cli, tmp_path: Path
) -> None:
    """The job's input is the table's rendered requests: kept in the state folder, so resume and
    retry read them again; 'jobs prune' (no API value: through cbatch) forgets the job and
    removes them."""
    from cohere_batch_cli.state.store import state_dir

    write_csv(tmp_path / "docs.csv", DOCS)
    with nothing_printed():
        job = client.create_job(
            cb.EmbedTable("docs.csv", "text"), model=EMBED, split=cb.Split(max_records=2)
        ).wait(timeout=60, interval=0.1)
        parts = job.parts()
    job_id = job.id
    assert len(parts) == 2 and all(p.status == cb.BatchStatus.COMPLETED for p in parts)
    kept = list((state_dir()[0] / "table-jobs").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith("docs-")
    assert [json.loads(line)["custom_id"] for line in kept[0].read_text().splitlines()] == [
        "1", "2", "3",
    ]  # fmt: skip
    assert table_input_rows(job_id) == (1, 1), "the table and its one file, recorded"
    time.sleep(0.02)
    assert job_id in cli("jobs", "prune", "--older-than", "0.01s").stdout
    assert list((state_dir()[0] / "table-jobs").iterdir()) == []
    assert table_input_rows(job_id) == (0, 0), "the job's table is forgotten with it"


def table_input_rows(dataset_id: str) -> tuple[int, int]:
    """How many rows of the store record ``dataset_id``'s table: its own, and its files'."""
    import sqlite3

    from cohere_batch_cli.state.store import store_path

    with sqlite3.connect(f"file:{store_path()}?mode=ro", uri=True) as db:
        return tuple(  # type: ignore[return-value]
            db.execute(
                f"SELECT COUNT(*) FROM {table} WHERE dataset_id = ?", (dataset_id,)
            ).fetchone()[0]
            for table in ("table_inputs", "table_input_files")
        )


def test_a_table_job_refused_by_the_check_keeps_no_requests(
    client: cb.Client, tmp_path: Path, posts: Any
) -> None:
    from cohere_batch_cli.state.store import state_dir

    table = write_csv(tmp_path / "r.csv", "id,text\na,one\nb,two\na,three\n")
    with nothing_printed(), pytest.raises(cb.InputRejected) as refused:
        client.create_job(
            cb.PromptTable(table, "{{ text }}", id_column="id"), model=CHAT,
            split=cb.Split(max_records=2),
        )  # fmt: skip
    assert refused.value.exit_code == 5
    assert list((state_dir()[0] / "table-jobs").iterdir()) == []
    assert posts() == []


# -- estimate ---------------------------------------------------------------------------------


def test_estimate_from_counts_the_requests_create_would_send(cli: Cli, tmp_path: Path) -> None:
    """Rendered as create renders them: rows that render alike are one request."""
    table = write_csv(tmp_path / "r.csv", "text\n" + "".join(f"line {i % 4}\n" for i in range(10)))
    result = cli(
        "estimate", "--from", str(table), "--prompt", "Say {{ text }}", "--max-tokens", "50",
        "--model", CHAT, "--json",
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert data["records"] == 4 and data["file"] == f"{table} (rendered)"
    assert data["dataset_type"] == "batch-chat-v2-input"
    assert data["input_tokens"]["total"] > 0
    assert f"{table}: 10 rows, 4 distinct requests: 4 requests to send" in result.stderr
    again = cli(
        "estimate", "--from", str(table), "--prompt", "Say {{ text }}", "--model", CHAT,
        "--no-dedupe", "--json",
    )  # fmt: skip
    every = json.loads(again.stdout)
    assert every["records"] == 10


def test_estimate_from_an_embed_table_and_its_budget(cli: Cli, tmp_path: Path) -> None:
    table = write_csv(tmp_path / "docs.csv", DOCS)
    data = json.loads(
        cli("estimate", "--from", str(table), "--embed", "text", "--model", EMBED, "--json").stdout
    )
    assert data["records"] == 3 and data["dataset_type"] == "batch-embed-v2-input"
    result = cli(
        "estimate", "--from", str(table), "--embed", "text", "--model", EMBED,
        "--max-input-tokens", "1", exit_code=5,
    )  # fmt: skip
    assert "docs.csv (rendered): 21 input tokens, over --max-input-tokens 1" in result.stderr


def test_estimate_takes_a_file_or_a_table_not_both(cli: Cli, tmp_path: Path) -> None:
    table = write_csv(tmp_path / "docs.csv", DOCS)
    result = cli(
        "estimate", str(table), "--from", str(table), "--embed", "text", "--model", EMBED,
        exit_code=2,
    )  # fmt: skip
    assert "give exactly one of FILE or --from TABLE" in result.stderr
    result = cli("estimate", "--model", EMBED, exit_code=2)
    assert "give exactly one of FILE or --from TABLE" in result.stderr


# -- dry runs: nothing is sent -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "ends"),
    [
        (
            ["create", "--embed", "text"],
            "dry run: nothing was sent; without --dry-run, {t} (rendered) would be uploaded",
        ),
        (
            ["create", "--prompt", "{{ text }}", "--max-records-per-batch", "2"],
            "dry run: nothing was sent; without --dry-run, a job of 2 parts would be uploaded",
        ),
        (
            ["jobs", "create", "--embed", "text", "--max-records-per-batch", "1"],
            "dry run: nothing was sent; without --dry-run, a job of 3 parts would be uploaded",
        ),
    ],
    ids=["create --embed", "create --split", "jobs create"],
)
def test_a_dry_run_of_a_table_renders_checks_and_posts_nothing(
    cli: Cli, tmp_path: Path, posts: Any, args: list[str], ends: str
) -> None:
    from cohere_batch_cli.state.store import state_dir

    table = write_csv(tmp_path / "docs.csv", DOCS)
    model = EMBED if "--embed" in args else CHAT
    split = 2 if args[0] == "jobs" else 1
    command, rest = args[:split], args[split:]
    result = cli(*command, "--from", str(table), *rest, "--model", model, "--dry-run")
    assert ends.format(t=table) in result.stderr.splitlines()[-1]
    assert f"{table} (rendered): 3 records of" in result.stderr
    assert posts() == []
    jobs_folder = state_dir()[0] / "table-jobs"
    assert not jobs_folder.exists() or list(jobs_folder.iterdir()) == []


# -- a table job is retried and resumed like any job ------------------------------------------


def test_a_table_job_is_retried_from_its_kept_requests_until_every_row_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logged: Any
) -> None:
    """Records fail at random (transient): the rounds send them again from the kept requests."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.conftest import TEST_KEY

    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0, queue_delay=0.0,
        validation_delay=0.0, output_ready_delay=0.0, transient_fail_rate=0.3, seed=11,
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "r.csv", "text\n" + "".join(f"line {i}\n" for i in range(12)))
    with (
        SandboxServer(settings) as server,
        cb.Client(TEST_KEY, base_url=server.base_url) as client,
        nothing_printed(),
    ):
        job = client.create_job(
            cb.PromptTable("r.csv", "Say {{ text }}"), model=CHAT, split=cb.Split(max_records=5)
        ).wait(timeout=60, interval=0.1)
        job.retry(rounds=6, pause=0.05, timeout=60, interval=0.1)
        records = list(job.records())  # the table's rows, each with its answer
        names = [part.name for part in job.parts()]
    said = logged().splitlines()
    retried = [line for line in said if line.startswith("input: part ")]
    assert retried and all("/table-jobs/r-" in line for line in retried)  # the kept requests
    assert any(" retry 1]" in name for name in names)
    assert [r["text"] for r in records] == [f"line {i}" for i in range(12)]
    assert all(r["status"] == "succeeded" for r in records), "every row succeeded once retried"


def test_a_table_job_stopped_by_its_timeout_is_resumed_from_its_kept_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--timeout stops the sending between parts; 'jobs resume' sends the rest, each part once,
    reading the requests the job kept (the table is not read again)."""
    import shlex

    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.conftest import TEST_KEY

    settings = SandboxSettings(data_dir=tmp_path / "sb", port=0, latency=0.1, queue_delay=0.0)
    monkeypatch.chdir(tmp_path)
    table = write_csv(tmp_path / "r.csv", "text\n" + "".join(f"line {i}\n" for i in range(12)))
    with SandboxServer(settings) as server:
        cli = Cli(server.base_url, TEST_KEY)
        result = cli(
            "jobs", "create", "--from", "r.csv", "--prompt", "Say {{ text }}", "--model", CHAT,
            "--max-records-per-batch", "2", "--watch", "--plain", "--timeout", "1s",
            exit_code=ExitCode.TIMEOUT,
        )  # fmt: skip
        uploads = [
            p for m, p, _ in server.request_log if m == "POST" and p.startswith("/v1/datasets")
        ]
        assert len(uploads) < 6, "the deadline stopped the sending between parts"
        table.unlink()  # the job reads its kept requests, not the table
        args = shlex.split(result.stderr.split("carry on with: ", 1)[1].splitlines()[0])
        assert args[1:3] == ["jobs", "resume"]
        args[args.index("--timeout") + 1] = "60s"
        cli(*args[1:], "--interval", "0.1s", "--max-interval", "0.2s")
        uploads = [
            p for m, p, _ in server.request_log if m == "POST" and p.startswith("/v1/datasets")
        ]
        assert len(uploads) == 6, "each part uploaded once"
        job_id = args[3]
        cli("jobs", "results", job_id, "--records", "-o", "all.jsonl")  # records, not the table
    rows = read_jsonl(tmp_path / "all.jsonl")
    assert sorted(int(r["custom_id"]) for r in rows) == list(range(1, 13))


# -- stopped between its upload and its create -------------------------------------------------


def _input_datasets(client: Any) -> list[str]:
    """The sandbox's own list of the input datasets uploaded so far, oldest first."""
    return [d.id for d in client.iter_datasets() if (d.dataset_type or "").endswith("-input")][::-1]


def test_a_table_run_stopped_after_its_upload_is_carried_on_by_the_same_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A table's requests are a temporary file of the run's, so the same call run again rendered them
    into another and uploaded a second dataset (a new user's trial: Ctrl-C after the upload, then the
    same command). The run is now found by the table's fingerprint, its options, the model and the
    name, and the bytes rendered again: one dataset, one batch, and the table written whole."""
    import logging

    from cohere_batch_cli.api.client import CohereClient
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.conftest import TEST_KEY

    caplog.set_level(logging.INFO, logger="cohere_batch_cli")
    write_csv(tmp_path / "docs.csv", DOCS)
    table = cb.PromptTable("docs.csv", "Sum up: {{ text }}", id_column="id")
    settings = SandboxSettings(
        data_dir=tmp_path / "sb", port=0, validation_delay=0.0, queue_delay=0.0,
        records_per_second=2000.0,
    )  # fmt: skip
    with SandboxServer(settings) as server, CohereClient(TEST_KEY, server.base_url) as api:
        with nothing_printed():
            with cb.Client(TEST_KEY, base_url=server.base_url, on_event=stop_after_upload) as first:
                with pytest.raises(KeyboardInterrupt):
                    first.create(table, model=CHAT)
        (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped")]
        (left,) = _input_datasets(api)
        assert list(api.iter_batches()) == [], "stopped before its create"
        assert said == (
            f"stopped after the upload, before the batch was created: dataset {left} holds the "
            "requests of docs.csv; the same create run again carries on from it, uploading nothing "
            "(unless the answer cache answers other rows by then: it then says so and uploads the "
            "requests it renders)"
        )
        with nothing_printed(), cb.Client(TEST_KEY, base_url=server.base_url) as again:
            run = again.create(table, model=CHAT).wait(timeout=60, interval=0.1)
            run.results("summed.jsonl")
        assert (
            f"uploaded the requests of docs.csv as dataset {left}; nothing is uploaded again"
            in ("\n".join(r.getMessage() for r in caplog.records))
        )
        assert _input_datasets(api) == [left], "the dataset the stopped run left, and no other"
        (batch,) = list(api.iter_batches())
        assert batch.id == run.id and batch.input_dataset_id == left
    rows = read_jsonl(tmp_path / "summed.jsonl")
    assert [(r["id"], r["status"]) for r in rows] == [
        ("d1", "succeeded"), ("d2", "succeeded"), ("d3", "succeeded"),
    ]  # fmt: skip
    assert all(r["answer"] for r in rows)


def test_a_table_run_whose_requests_render_otherwise_now_is_not_carried_on_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Between the stop and the same call again, another run's results taught the answer cache one of
    the rows: the requests rendered now leave it out, so the earlier dataset (all three) is not this
    input. It is said, and the requests rendered now are uploaded: never a batch of other requests."""
    import logging

    from cohere_batch_cli.api.client import CohereClient
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.conftest import TEST_KEY

    caplog.set_level(logging.INFO, logger="cohere_batch_cli")
    write_csv(tmp_path / "docs.csv", DOCS)
    write_csv(tmp_path / "one.csv", "id,title,text\nd1,One,the first document\n")

    def table(name: str) -> cb.PromptTable:
        return cb.PromptTable(name, "Sum up: {{ text }}", id_column="id")

    settings = SandboxSettings(
        data_dir=tmp_path / "sb", port=0, validation_delay=0.0, queue_delay=0.0,
        records_per_second=2000.0,
    )  # fmt: skip
    with SandboxServer(settings) as server, CohereClient(TEST_KEY, server.base_url) as api:
        with nothing_printed():
            with cb.Client(TEST_KEY, base_url=server.base_url, on_event=stop_after_upload) as first:
                with pytest.raises(KeyboardInterrupt):
                    first.create(table("docs.csv"), model=CHAT)
            (left,) = _input_datasets(api)
            with cb.Client(TEST_KEY, base_url=server.base_url) as other:
                one = other.create(table("one.csv"), model=CHAT)
                one.wait(timeout=60, interval=0.1).results(
                    "one.jsonl"
                )  # the cache learns d1's answer
                caplog.clear()
                run = other.create(table("docs.csv"), model=CHAT)
                run.wait(timeout=60, interval=0.1).results("summed.jsonl")
        said = "\n".join(r.getMessage() for r in caplog.records)
        assert (
            f"an earlier run of this table with these options left dataset {left}, but the requests "
            "rendered now differ from its (the answer cache answers other rows now): not carrying on "
            "from it; uploading these"
        ) in said
        assert "nothing is uploaded again" not in said
        made = run.batch.input_dataset_id
        assert made not in (left, one.batch.input_dataset_id)
        assert made is not None and api.get_dataset(made).num_rows == 2, "d1 is the cache's: d2, d3"
    rows = read_jsonl(tmp_path / "summed.jsonl")
    assert [(r["id"], r["status"]) for r in rows] == [
        ("d1", "succeeded"), ("d2", "succeeded"), ("d3", "succeeded"),
    ]  # fmt: skip


def test_a_table_create_out_of_time_before_its_create_offers_no_create_dataset(
    tmp_path: Path,
) -> None:
    """``create --from --watch --timeout`` ran out while the requests' dataset was validated: the hint
    is not ``create --dataset`` (that batch's results would be records, not the table)."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings
    from tests.conftest import TEST_KEY

    settings = SandboxSettings(data_dir=tmp_path / "sb", port=0, validation_delay=1.0)
    table = write_csv(tmp_path / "docs.csv", DOCS)
    with SandboxServer(settings) as server:
        out_of_time = Cli(server.base_url, TEST_KEY)(
            "create", "--from", str(table), "--prompt", "Sum up: {{ text }}", "--model", CHAT,
            "--watch", "--plain", "--timeout", "0.3s", exit_code=ExitCode.TIMEOUT,
        )  # fmt: skip
    assert "--dataset" not in out_of_time.stderr
    assert out_of_time.stderr.splitlines()[-1].endswith(
        "holds the requests of docs.csv; the same create run again carries on from it, uploading "
        "nothing (unless the answer cache answers other rows by then: it then says so and uploads "
        "the requests it renders)"
    )


def test_estimate_from_json_says_what_the_rows_came_to(cli: Cli, tmp_path: Path) -> None:
    """``records`` counts the requests sent; a script also needs the rows they stand for (the words
    on stderr said it, the JSON did not)."""
    table = write_csv(tmp_path / "r.csv", "text\none\none\ntwo\n")
    result = cli(
        "estimate", "--from", str(table), "--prompt", "Say {{ text }}", "--model", CHAT, "--json"
    )
    data = json.loads(result.stdout)
    assert data["records"] == 2
    assert data["table"] == {"rows": 3, "distinct": 2, "cached": 0, "sent": 2}
