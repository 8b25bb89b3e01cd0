"""No request paid for twice (issue 25): rows that render alike are sent once, cached answers not at all.

Each test makes a table run against the real sandbox (through the Python API, in-process;
the dry run and the flags through ``cbatch``) and reads back, through the API, the records
of the dataset the sandbox received: that is what was paid for. What the run said of its
rows (how many were sent, how many the cache answered) is read from the library's log.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from cohere_batch_cli import engine
from tests.conftest import TEST_KEY, Cli
from tests.sandbox.sandbox_client import Api
from tests.support.quiet import nothing_printed

MODEL = "command-r-08-2024"


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in rows), encoding="utf-8")
    return path


def create(cli: Cli, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    run = cli("create", *args, "--model", MODEL, "--json", env=env)
    return json.loads(run.stdout), run.stderr


def table_run(
    client: cb.Client, table: Path, prompt: str = "Rate: {{ text }}", **options: Any
) -> cb.Run:
    """``create --from TABLE --id-column id --prompt PROMPT`` through the API: the run, queued."""
    with nothing_printed():
        return client.create(cb.PromptTable(table, prompt, id_column="id", **options), model=MODEL)


def received(api: Api, batch: dict[str, Any] | cb.Run) -> list[tuple[str, str]]:
    """The (custom_id, prompt) of every record of the dataset the sandbox received."""
    dataset = (
        batch.batch.input_dataset_id if isinstance(batch, cb.Run) else batch["input_dataset_id"]
    )
    records = [r for part in api.parts(dataset) for r in part]
    return [(r["custom_id"], json.loads(r["body"])["messages"][-1]["content"]) for r in records]


def test_rows_that_render_alike_are_sent_once_and_the_summary_counts_them(
    client: cb.Client, api: Api, tmp_path: Path, logged: Any
) -> None:
    table = write_csv(
        tmp_path / "reviews.csv",
        [("a", "good"), ("b", "bad"), ("c", "good"), ("d", "good"), ("e", "meh"), ("f", "bad")],
    )
    run = table_run(client, table, cache=False)
    assert received(api, run) == [("a", "Rate: good"), ("b", "Rate: bad"), ("e", "Rate: meh")]
    assert "6 rows, 3 distinct requests: 3 requests to send" in logged()


def test_no_dedupe_sends_every_row(cli: Cli, api: Api, tmp_path: Path) -> None:
    table = write_csv(tmp_path / "t.csv", [("a", "x"), ("b", "x"), ("c", "x")])
    batch, err = create(
        cli,
        "--from",
        str(table),
        "--id-column",
        "id",
        "--prompt",
        "{{ text }}",
        "--no-dedupe",
        "--temperature",
        "0.9",
    )
    assert [cid for cid, _ in received(api, batch)] == ["a", "b", "c"]
    assert "each row its own request (--no-dedupe)" in err


PRICES = {"CBATCH_INPUT_PRICE": "2.50", "CBATCH_OUTPUT_PRICE": "10"}


def keep_answers(prompts: list[str]) -> None:
    """Answers of these prompts in the cache, as results of an earlier run keep them (30 tokens in, 5 out)."""
    from cohere_batch_cli.state.answer_cache import Entry, canonical, open_cache, request_key

    body = json.dumps(
        {"message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
         "usage": {"billed_units": {"input_tokens": 30, "output_tokens": 5}}}
    ).encode()  # fmt: skip
    with open_cache() as cache:
        cache.put(
            Entry(
                request_key(MODEL, canonical({"messages": [{"role": "user", "content": p}]})),
                MODEL,
                body,
                30,
                5,
            )
            for p in prompts
        )


def test_a_rerun_sends_only_the_requests_the_cache_cannot_answer_and_says_what_it_saved(
    sandbox: Any, api: Api, tmp_path: Path, logged: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [(f"r{i}", f"text {i % 40}") for i in range(50)]  # 40 distinct texts, 10 duplicate rows
    keep_answers([f"Rate: {t}" for _, t in rows])
    rows[3] = ("r3", "changed three")
    rows[17] = ("r17", "changed seventeen")
    rows[44] = ("r44", "changed three")  # a changed row that repeats another changed row
    table = write_csv(tmp_path / "again.csv", rows)
    for name, value in PRICES.items():
        monkeypatch.setenv(name, value)
    with cb.Client(TEST_KEY, base_url=sandbox.base_url) as client:  # reads the prices set
        batch = table_run(client, table)
    err = logged()
    assert received(api, batch) == [
        ("r3", "Rate: changed three"),
        ("r17", "Rate: changed seventeen"),
    ]
    assert "50 rows, 41 distinct requests, 39 answered by the cache: 2 requests to send" in err
    assert (
        "the answer cache saved 39 requests (1,170 input and 195 output tokens, 0.004875 at the prices set)"
        in err
    )


def test_no_cache_sends_what_the_cache_holds_and_keeps_the_dedupe(
    client: cb.Client, api: Api, tmp_path: Path, logged: Any
) -> None:
    keep_answers(["Rate: a", "Rate: b"])
    table = write_csv(tmp_path / "t.csv", [("1", "a"), ("2", "b"), ("3", "a")])
    batch = table_run(client, table, cache=False)
    assert received(api, batch) == [("1", "Rate: a"), ("2", "Rate: b")]
    err = logged()
    assert "answered by the cache" not in err and "cache saved" not in err


def test_when_the_cache_answers_every_row_the_first_is_sent_so_the_run_has_a_batch(
    client: cb.Client, api: Api, tmp_path: Path, logged: Any
) -> None:
    keep_answers(["Rate: a", "Rate: b"])
    table = write_csv(tmp_path / "t.csv", [("1", "a"), ("2", "b"), ("3", "a")])
    batch = table_run(client, table)
    err = logged()
    assert received(api, batch) == [("1", "Rate: a")]
    assert "the cache answers every row: the first is sent all the same" in err
    assert "2 distinct requests, 1 answered by the cache: 1 request to send" in err
    assert "the answer cache saved 1 request (30 input and 5 output tokens)" in err, (
        "the row sent after all saved nothing"
    )


def test_a_dry_run_says_what_would_be_sent_and_sends_nothing(
    cli: Cli, tmp_path: Path, sandbox: Any
) -> None:
    keep_answers(["Rate: a"])
    table = write_csv(tmp_path / "t.csv", [("1", "a"), ("2", "b"), ("3", "b")])
    start = len(sandbox.request_log)
    result = cli(
        "create",
        "--from",
        str(table),
        "--prompt",
        "Rate: {{ text }}",
        "--model",
        MODEL,
        "--dry-run",
    )
    assert (
        "3 rows, 2 distinct requests, 1 answered by the cache: 1 request to send" in result.stderr
    )
    assert [m for m, _, _ in sandbox.request_log[start:] if m == "POST"] == []


def test_no_dedupe_and_no_cache_go_with_from(cli: Cli, tmp_path: Path) -> None:
    refused = cli(
        "create", "--file", str(tmp_path / "x.jsonl"), "--model", MODEL, "--no-dedupe", exit_code=2
    )
    assert "--no-dedupe goes with --from TABLE" in refused.stderr


# -- results: every row gets its answer; the answers go to the cache --------------------------


def run_to_end(
    client: cb.Client, table: Path, prompt: str = "Rate: {{ text }}", **options: Any
) -> cb.Run:
    """``create --from TABLE --watch`` to the end, through the API: the run, ended."""
    run = table_run(client, table, prompt, **options)
    with nothing_printed():
        return run.wait(timeout=60, interval=0.1)


def table_out(run: cb.Run, path: Path) -> list[dict[str, Any]]:
    """``results RUN -o PATH``: the table again, read back."""
    import pyarrow.parquet as pq

    with nothing_printed():
        run.results(path)
    return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]


def cache_entries() -> int:
    """How many answers the answer cache holds (``cache stats``)."""
    with engine.open_cache() as cache:
        return cache.stats().entries


def test_duplicate_rows_get_their_first_rows_answer_marked_cached_with_no_billed_tokens(
    client: cb.Client, tmp_path: Path
) -> None:
    table = write_csv(
        tmp_path / "t.csv",
        [
            ("a", "good"),
            ("b", "bad"),
            ("c", "good"),
            ("d", "fine [[sandbox:fail]]"),
            ("e", "fine [[sandbox:fail]]"),
        ],
    )
    rows = table_out(run_to_end(client, table, cache=False), tmp_path / "out.parquet")
    assert [r["id"] for r in rows] == ["a", "b", "c", "d", "e"]
    a, b, c, d, e = rows
    assert a["status"] == c["status"] == "succeeded" and c["answer"] == a["answer"]
    assert (a["cached"], c["cached"], b["cached"]) == (False, True, False)
    assert a["input_tokens"] > 0 and a["output_tokens"] > 0
    assert (c["input_tokens"], c["output_tokens"]) == (0, 0), (
        "billed once, on the row that was sent"
    )
    assert (
        d["status"] == e["status"] == "failed" and e["cached"] is True and e["error"] == d["error"]
    )
    assert cache_entries() == 0, "cache=False keeps nothing"


def test_rows_with_their_own_ids_that_ask_one_thing_are_sent_once_and_each_keeps_its_id(
    client: cb.Client, api: Api, tmp_path: Path
) -> None:
    """Every row's id is checked for repeats, not only the rows sent: distinct ids still let rows
    that render alike go as one request, under the first row's id, and the table out gives each
    row its own id and the one answer."""
    table = write_csv(tmp_path / "t.csv", [("r1", "same"), ("r2", "same"), ("r3", "other")])
    run = run_to_end(client, table, cache=False)
    assert received(api, run) == [("r1", "Rate: same"), ("r3", "Rate: other")]
    rows = table_out(run, tmp_path / "out.parquet")
    assert [(r["id"], r["status"], r["cached"]) for r in rows] == [
        ("r1", "succeeded", False), ("r2", "succeeded", True), ("r3", "succeeded", False),
    ]  # fmt: skip
    assert rows[0]["answer"] and rows[1]["answer"] == rows[0]["answer"]


def test_a_rerun_with_changed_rows_sends_only_those_and_the_table_out_has_every_answer(
    client: cb.Client, api: Api, tmp_path: Path, logged: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [(f"r{i}", f"text {i % 8}") for i in range(12)]  # 8 distinct requests, 4 duplicate rows
    rows[5] = ("r5", "text 5 [[sandbox:fail]]")  # a failed answer is never kept
    table = write_csv(tmp_path / "t.csv", rows)
    first = run_to_end(client, table)
    assert "12 rows, 8 distinct requests: 8 requests to send" in logged()
    before = {r["id"]: r for r in table_out(first, tmp_path / "first.parquet")}
    assert cache_entries() == 7  # not the failed one

    rows[2] = ("r2", "changed two")  # its old text is still r10's
    rows[7] = ("r7", "changed seven")
    rows[9] = ("r9", "changed seven")  # a changed row that repeats another changed row
    write_csv(table, rows)
    caplog.clear()
    second = run_to_end(client, table)
    assert received(api, second) == [
        ("r2", "Rate: changed two"),
        ("r5", "Rate: text 5 [[sandbox:fail]]"),
        ("r7", "Rate: changed seven"),
    ]
    assert "12 rows, 9 distinct requests, 6 answered by the cache: 3 requests to send" in logged()
    after = {r["id"]: r for r in table_out(second, tmp_path / "second.parquet")}
    assert list(after) == [r for r, _ in rows]
    for row_id in ("r0", "r1", "r3", "r4", "r6", "r8", "r10", "r11"):  # answered by the cache
        assert after[row_id]["answer"] == before[row_id]["answer"], row_id
        assert after[row_id]["cached"] is True and after[row_id]["input_tokens"] == 0
        assert after[row_id]["status"] == "succeeded"
    assert after["r2"]["cached"] is False and after["r2"]["input_tokens"] > 0
    assert after["r9"]["answer"] == after["r7"]["answer"] and after["r9"]["cached"] is True
    assert after["r5"]["status"] == "failed"


def test_a_run_keeps_the_answers_the_cache_gave_it_so_clearing_the_cache_loses_no_row(
    client: cb.Client, tmp_path: Path, logged: Any
) -> None:
    """The cache is cleared between create and results: the cache-answered rows still have
    their answers, since create copied them into the run's own map."""
    rows = [(f"r{i}", f"text {i % 5}") for i in range(8)]  # 5 distinct requests, 3 duplicate rows
    keep_answers([f"Rate: text {n}" for n in (1, 2, 3)])
    table = write_csv(tmp_path / "t.csv", rows)
    batch = run_to_end(client, table)
    assert "8 rows, 5 distinct requests, 3 answered by the cache: 2 requests to send" in logged()
    engine.remove_cache()  # cache clear
    out = {r["id"]: r for r in table_out(batch, tmp_path / "out.parquet")}
    assert list(out) == [r for r, _ in rows]
    assert all(r["status"] == "succeeded" and r["answer"] for r in out.values()), out
    for row_id in ("r1", "r2", "r3", "r6", "r7"):  # the cache's answers, and their duplicates'
        assert out[row_id]["answer"] == "ok", row_id
        assert out[row_id]["cached"] is True, row_id
        assert (out[row_id]["input_tokens"], out[row_id]["output_tokens"]) == (0, 0), row_id
    for row_id in ("r0", "r4"):  # sent
        assert out[row_id]["cached"] is False and out[row_id]["input_tokens"] > 0
    assert out["r5"]["answer"] == out["r0"]["answer"] and out["r5"]["cached"] is True


def map_files() -> list[Path]:
    from cohere_batch_cli.state.store import state_dir

    folder = state_dir()[0] / "table-requests"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_jobs_prune_removes_the_maps_of_runs_whose_table_was_written(
    client: cb.Client, cli: Cli, tmp_path: Path
) -> None:
    """A map is kept until results wrote the run's table and it is older than --older-than;
    a run whose table was never written keeps its map unless --all. (``jobs prune`` has no
    API: the runs are made through it, the pruning and what it says through ``cbatch``.)"""
    written = run_to_end(client, write_csv(tmp_path / "w.csv", [("1", "a"), ("2", "a")])).id
    unwritten = run_to_end(client, write_csv(tmp_path / "u.csv", [("1", "b"), ("2", "b")])).id
    assert len(map_files()) == 2
    table_out(client.batch(written), tmp_path / "w.parquet")
    kept = cli("jobs", "prune")  # the default 30 days: both are too young
    assert len(map_files()) == 2 and "row maps" not in kept.stderr
    time.sleep(0.02)
    pruned = cli("jobs", "prune", "--older-than", "0.01s")
    assert "removed the row maps of 1 table run" in pruned.stderr
    assert pruned.stdout == "", "stdout lists forgotten jobs alone"
    assert len(map_files()) == 1
    again = cli("results", written, "-o", str(tmp_path / "again.parquet"))
    assert "removed by jobs prune: those rows show as missing" in again.stderr
    import pyarrow.parquet as pq

    statuses = [r["status"] for r in pq.read_table(tmp_path / "again.parquet").to_pylist()]
    assert statuses == ["succeeded", "missing"], "the row that was sent keeps its answer"
    assert (
        "removed the row maps of 1 table run"
        in cli("jobs", "prune", "--all", "--older-than", "0.01s").stderr
    )
    assert map_files() == [] and unwritten


def test_a_rerun_after_the_cache_is_cleared_sends_every_distinct_request(
    client: cb.Client, api: Api, tmp_path: Path
) -> None:
    table = write_csv(tmp_path / "t.csv", [("1", "a"), ("2", "b"), ("3", "a")])
    table_out(run_to_end(client, table), tmp_path / "first.parquet")
    engine.remove_cache()  # cache clear
    assert received(api, table_run(client, table)) == [("1", "Rate: a"), ("2", "Rate: b")]


def test_answers_that_break_the_schema_are_never_cached_and_a_rerun_sends_them_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox of its own breaks 40 % of the answers; only the valid ones go to the cache."""
    from cohere_batch_cli.sandbox.server import SandboxServer, SandboxSettings

    count = 20
    table = tmp_path / "reviews.csv"
    table.write_text("id,review\n" + "".join(f"r{i:02d},review {i}\n" for i in range(count)))
    schema = {
        "type": "object",
        "properties": {"sentiment": {"type": "string"}},
        "required": ["sentiment"],
    }
    settings = SandboxSettings(
        data_dir=tmp_path / "sandbox", port=0, records_per_second=5000.0, queue_delay=0.0,
        validation_delay=0.0, invalid_output_rate=0.4, seed=5,
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    with SandboxServer(settings) as server, cb.Client(TEST_KEY, base_url=server.base_url) as client:
        first = run_to_end(client, table, prompt="{{ review }}", schema=schema)
        invalid = [
            r["id"] for r in table_out(first, tmp_path / "first.parquet") if r["invalid_output"]
        ]
        assert 0 < len(invalid) < count
        assert cache_entries() == count - len(invalid)
        again = table_run(client, table, "{{ review }}", schema=schema)
        api = Api(server)
        try:
            assert [cid for cid, _ in received(api, again)] == invalid
        finally:
            api.close()
