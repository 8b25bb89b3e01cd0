"""Embed tables and table jobs through the Python API, in-process on the sandbox (issue 26).

``client.create(cb.EmbedTable(...))`` and ``client.create_job(cb.PromptTable(...))``
take the command line's table path (the same spec, the same rendering, the
same refusals, raised when the value is built); every call runs inside :func:`nothing_printed`, which proves
nothing reaches file descriptors 1 and 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from tests.sandbox.sandbox_client import Api
from tests.support.quiet import nothing_printed

CHAT = "command-r-08-2024"
EMBED = "embed-english-v3.0"


def test_an_embed_table_run_gives_every_row_its_vectors_in_the_tables_order(
    client: cb.Client, api: Api, tmp_path: Path
) -> None:
    table = tmp_path / "docs.csv"
    table.write_text("id,text\nd1,the first document\nd2,the second one\nd3,a third text\n")
    with nothing_printed():
        docs = cb.EmbedTable(
            table, "text", id_column="id", input_type="search_query", types=["float", "int8"],
            truncate="END",
        )  # fmt: skip
        run = client.create(docs, model=EMBED)
        run.wait(timeout=60, interval=0.1)
        arrow = run.to_arrow()
        summary = run.results(tmp_path / "vectors.jsonl")
    assert run.name == "docs" and run.batch.num_records == 3
    sent = [r for part in api.parts(run.batch.input_dataset_id) for r in part]
    assert {r["custom_id"]: json.loads(r["body"]) for r in sent}["d2"] == {
        "inputs": [{"content": [{"type": "text", "text": "the second one"}]}],
        "input_type": "search_query",
        "embedding_types": ["float", "int8"],
        "truncate": "END",
    }  # the command line's body, from the same spec
    rows = arrow.to_pylist()
    assert [(r["id"], r["text"], r["status"]) for r in rows] == [
        ("d1", "the first document", "succeeded"),
        ("d2", "the second one", "succeeded"),
        ("d3", "a third text", "succeeded"),
    ]
    for row in rows:  # one input a row: one vector of each type asked for
        assert len(row["embeddings_float"]) == 1 and len(row["embeddings_float"][0]) == 1024
        assert len(row["embeddings_int8"]) == 1 and len(row["embeddings_int8"][0]) == 1024
    written = [json.loads(line) for line in (tmp_path / "vectors.jsonl").read_text().splitlines()]
    assert [r["id"] for r in written] == ["d1", "d2", "d3"] and summary.written == 3
    for line, row in zip(written, rows, strict=True):  # the same vectors (Parquet's float32)
        assert line["embeddings_float"][0] == pytest.approx(row["embeddings_float"][0], rel=1e-6)


def test_a_table_job_of_several_parts_gives_every_row_once_in_order(
    client: cb.Client, tmp_path: Path
) -> None:
    from cohere_batch_cli.state.store import state_dir

    table = tmp_path / "r.csv"
    table.write_text("text\n" + "".join(f"line {i}\n" for i in range(7)))
    with nothing_printed():
        job = client.create_job(
            cb.PromptTable(table, "Say {{ text }}", max_tokens=20), model=CHAT,
            split=cb.Split(max_records=3),
        )  # fmt: skip
        job.wait(timeout=60, interval=0.1)
        parts = job.parts()
        records = list(job.records())
    assert job.name == "r"
    assert [p.batch.num_records for p in parts] == [3, 3, 1]
    assert all(p.batch.status == cb.BatchStatus.COMPLETED for p in parts)
    assert [(r["text"], r["status"]) for r in records] == [
        (f"line {i}", "succeeded") for i in range(7)
    ]  # the table again, every row once and in its order, across the parts
    assert [r["answer"] for r in records] == [f"Sandbox reply to: Say line {i}" for i in range(7)]
    kept = list((state_dir()[0] / "table-jobs").iterdir())  # the requests each part reads
    assert len(kept) == 1 and kept[0].name.startswith("r-")
    assert [json.loads(line)["custom_id"] for line in kept[0].read_text().splitlines()] == [
        str(n) for n in range(1, 8)
    ]


def test_an_embed_table_job_and_the_refusals_the_command_line_makes(
    client: cb.Client, tmp_path: Path
) -> None:
    table = tmp_path / "docs.csv"
    table.write_text("text\nalpha\nbeta\ngamma\n")
    with nothing_printed():
        with pytest.raises(cb.UsageError) as refused:
            cb.EmbedTable(table, "text", types=["floats"])
        assert str(refused.value) == (  # the command line's words, from the same builder
            "--embed-types: floats is not an embedding type; "
            "give float, int8, uint8, binary, ubinary, base64"
        )
        with pytest.raises(cb.UsageError, match="truncate 'MIDDLE' is not one of NONE, START"):
            cb.EmbedTable(table, "text", truncate="MIDDLE")
        with pytest.raises(cb.UsageError, match="input type 'query' is not one of"):
            cb.EmbedTable(table, "text", input_type="query")
        with pytest.raises(cb.UsageError, match=r"the schema argument: .*"):
            cb.PromptTable(table, "{{ text }}", schema={"type": "object", "properties": 3})
        with pytest.raises(cb.UsageError, match="the prompt argument: line 1"):
            cb.PromptTable(table, "{{ text ")
        with pytest.raises(cb.UsageError, match="max_records must be 1 or more"):
            cb.Split(max_records=0)
        with pytest.raises(cb.UsageError, match="max_bytes: 'lots' is not a size"):
            cb.Split(max_bytes="lots")
        assert cb.Split(max_bytes="800MB").max_bytes == 800_000_000
        assert cb.EmbedTable(table, "text", types="float").types == ("float",)
        with pytest.raises(cb.UsageError, match="not a Dataset"):
            client.create_job(cb.Dataset("requests"), model=EMBED)  # type: ignore[arg-type]
        job = client.create_job(
            cb.EmbedTable(table, "text"), model=EMBED, split=cb.Split(max_records=2)
        )
        job.wait(timeout=60, interval=0.1)
        records = list(job.records())
        parts = job.parts()
    assert len(parts) == 2
    assert [(r["text"], r["status"]) for r in records] == [
        ("alpha", "succeeded"), ("beta", "succeeded"), ("gamma", "succeeded"),
    ]  # fmt: skip
    assert all(len(r["embeddings_float"][0]) == 1024 for r in records)


def test_a_keyed_table_job_called_again_is_the_same_job_and_another_prompt_is_refused(
    client: cb.Client, tmp_path: Path
) -> None:
    """The key covers the table's options (the prompt here), as ``--idempotency-key`` does."""
    table = tmp_path / "t.csv"
    table.write_text("text\none\ntwo\nthree\n")
    args: dict[str, Any] = {"model": CHAT, "split": cb.Split(max_records=2)}
    say, echo = cb.PromptTable(table, "Say {{ text }}"), cb.PromptTable(table, "Echo {{ text }}")
    with nothing_printed():
        job = client.create_job(say, idempotency_key="tjob-1", **args)
        made = sorted(b.id for b in client._api.iter_batches())
        again = client.create_job(say, idempotency_key="tjob-1", **args)
        with pytest.raises(cb.KeyReused, match="prompt"):
            client.create_job(echo, idempotency_key="tjob-1", **args)
        after = sorted(b.id for b in client._api.iter_batches())
    assert again.id == job.id and len(job.parts()) == 2
    assert after == made  # nothing sent twice
    from cohere_batch_cli.state.store import state_dir

    kept = list((state_dir()[0] / "table-jobs").iterdir())
    assert len(kept) == 1, f"each call again left a copy of the table's requests: {kept}"


def test_a_table_runs_summary_counts_records_and_rows_apart(
    client: cb.Client, tmp_path: Path
) -> None:
    """Rows that ask the same thing are sent once: the summary's record counts are the API's, its rows the file's."""
    table = tmp_path / "asks.csv"
    table.write_text("q\nsame\nsame\nfails [[sandbox:fail]]\nother\n")
    with nothing_printed():
        run = client.create(cb.PromptTable(table, "Answer: {{ q }}"), model=CHAT)
        run.wait(timeout=60, interval=0.1)
        whole = run.results(tmp_path / "asks.out.csv")
        failed = run.results(tmp_path / "asks.failed.csv", failed_only=True)
    assert run.batch.num_records == 3  # "same" sent once
    assert (whole.records_total, whole.succeeded, whole.failed) == (3, 2, 1)  # records
    assert whole.written == 4 and whole.rows is not None  # rows
    rows = whole.rows
    assert (rows.written, rows.table_rows, rows.answered, rows.failed, rows.shared) == (
        4,
        4,
        3,
        1,
        1,
    )
    assert (failed.records_total, failed.failed, failed.written) == (3, 1, 1)
    assert failed.rows is not None and (failed.rows.written, failed.rows.table_rows) == (1, 4)


def test_a_table_value_built_wrong_is_refused_in_words_not_a_type_error(tmp_path: Path) -> None:
    """A schema given as its file (as ``--schema FILE`` takes it) and an empty prompt are refused
    where the value is built, with what to give instead (issue: a ``TypeError`` from ``json.dumps``,
    and a prompt that asked the model nothing of every row)."""
    table = tmp_path / "docs.csv"
    table.write_text("text\nalpha\n")
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object"}')
    with nothing_printed():
        for given in (schema, str(schema)):
            with pytest.raises(cb.UsageError) as refused:
                cb.PromptTable(table, "{{ text }}", schema=given)  # type: ignore[arg-type]
            assert refused.value.exit_code == 2
            assert str(refused.value) == (
                f"the schema argument is the JSON Schema itself, a dict, not a {type(given).__name__}; "
                "json.loads(Path(FILE).read_text()) reads one from a file"
            )
        with pytest.raises(cb.UsageError, match=r"^the prompt argument is empty: give a template"):
            cb.PromptTable(table, " \n")


def test_an_empty_prompt_is_refused_before_anything_is_sent(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "docs.csv").write_text("text\nalpha\n")
    result = cli(
        "create", "--from", str(tmp_path / "docs.csv"), "--prompt", "", "--model", CHAT,
        exit_code=2,
    )  # fmt: skip
    assert result.stderr.startswith(
        "error: --prompt is empty: give a template of the table's columns"
    )


def test_a_table_with_columns_named_like_the_answers_is_read_with_an_answer_prefix(
    client: cb.Client, tmp_path: Path
) -> None:
    """A table that has a ``status`` column is refused in a program's words, and read with
    ``answer_prefix`` by every way a run's results are read (issue: only ``--answer-prefix`` could)."""
    table = tmp_path / "tickets.csv"
    table.write_text("text,status\nbroken screen,open\nrefund asked,closed\n")
    out = tmp_path / "tickets.out.csv"
    with nothing_printed():
        run = client.create(cb.PromptTable(table, "Triage: {{ text }}"), model=CHAT)
        run.wait(timeout=60, interval=0.1)
        with pytest.raises(cb.UsageError) as refused:
            run.results(out)
        written = run.results(out, answer_prefix="llm_")
        records = list(run.records(answer_prefix="llm_"))
        arrow = run.to_arrow(answer_prefix="llm_")
        batches = list(run.arrow_batches(batch_size=1, answer_prefix="llm_"))
    assert (
        str(refused.value)
        == "tickets.csv has column status already: the answers would take their place"
    )
    assert refused.value.hint == (
        'answer_prefix="P" puts P before every column results adds (e.g. answer_prefix="llm_")'
    )
    assert written.written == 2
    assert out.read_text().splitlines()[0].startswith("text,status,llm_answer,llm_status,")
    assert [(r["status"], r["llm_status"]) for r in records] == [
        ("open", "succeeded"),
        ("closed", "succeeded"),
    ]
    assert arrow.column("status").to_pylist() == ["open", "closed"]
    assert arrow.column("llm_status").to_pylist() == ["succeeded", "succeeded"]
    assert [b.num_rows for b in batches] == [1, 1] and batches[0].schema == arrow.schema


def test_a_run_not_made_from_a_table_takes_no_answer_prefix(
    client: cb.Client, tmp_path: Path
) -> None:
    requests = tmp_path / "plain.jsonl"
    requests.write_text(
        json.dumps({"custom_id": "p1", "body": {"messages": [{"role": "user", "content": "hi"}]}})
        + "\n"
    )
    with nothing_printed():
        run = client.create(requests, model=CHAT).wait(timeout=60, interval=0.1)
        with pytest.raises(cb.UsageError) as refused:
            run.results(tmp_path / "plain.out.jsonl", answer_prefix="x_")
    assert str(refused.value).startswith("answer_prefix names the columns added to a table run's")
    assert "--" not in f"{refused.value} {refused.value.hint}"  # a program has no flags
    assert not (tmp_path / "plain.out.jsonl").exists()


def test_a_table_job_is_read_as_arrow_whole_or_a_batch_at_a_time(
    client: cb.Client, tmp_path: Path
) -> None:
    """``Job.to_arrow`` and ``Job.arrow_batches``: every part's rows, once and in the table's order."""
    table = tmp_path / "lines.csv"
    table.write_text("text,status\n" + "".join(f"line {i},new\n" for i in range(5)))
    with nothing_printed():
        job = client.create_job(
            cb.PromptTable(table, "Say {{ text }}"), model=CHAT, split=cb.Split(max_records=2)
        )
        job.wait(timeout=60, interval=0.1)
        with pytest.raises(cb.UsageError, match="has column status already"):
            job.to_arrow()
        arrow = job.to_arrow(answer_prefix="llm_")
        reader = job.arrow_batches(batch_size=2, answer_prefix="llm_")
        sizes = [batch.num_rows for batch in reader]
        parts = job.parts()
    assert len(parts) == 3
    assert arrow.column("text").to_pylist() == [f"line {i}" for i in range(5)]
    assert arrow.column("llm_answer").to_pylist() == [
        f"Sandbox reply to: Say line {i}" for i in range(5)
    ]
    assert sizes == [2, 2, 1] and reader.schema == arrow.schema


GENERATION = {
    "max_tokens": 30, "temperature": 1, "p": 0.5, "k": 40, "seed": 7,
    "frequency_penalty": 0.25, "presence_penalty": 0.5, "stop_sequences": ["END", "###"],
    "safety_mode": "STRICT", "thinking_budget": 256, "priority": 3,
}  # fmt: skip
"""Every generation option of ``cb.PromptTable``, as keyword fields (the command line's flags)."""


def test_every_generation_option_reaches_every_part_of_a_table_job(
    client: cb.Client, api: Api, tmp_path: Path
) -> None:
    table = tmp_path / "r.csv"
    table.write_text("text\none\ntwo\nthree\n")
    with nothing_printed():
        source = cb.PromptTable(table, "Say {{ text }}", **GENERATION)
        job = client.create_job(source, model=CHAT, split=cb.Split(max_records=2))
        job.wait(timeout=60, interval=0.1)
        parts = job.parts()
        records = list(job.records())
    assert source.stop_sequences == ("END", "###")  # kept as a tuple: the value stays hashable
    bodies = [
        json.loads(r["body"]) for p in parts for part in api.parts(p.batch.input_dataset_id)
        for r in part
    ]  # fmt: skip
    fields = {
        "max_tokens": 30, "temperature": 1.0, "p": 0.5, "k": 40, "seed": 7,
        "frequency_penalty": 0.25, "presence_penalty": 0.5, "stop_sequences": ["END", "###"],
        "safety_mode": "STRICT", "thinking": {"type": "enabled", "token_budget": 256},
        "priority": 3,
    }  # fmt: skip
    assert bodies == [
        {"messages": [{"role": "user", "content": f"Say {t}"}], **fields}
        for t in ("one", "two", "three")
    ]
    assert [r["status"] for r in records] == ["succeeded"] * 3


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"temperature": 1.5}, "temperature must be from 0.0 to 1.0, not 1.5"),
        ({"temperature": float("nan")}, "temperature must be from 0.0 to 1.0, not nan"),
        ({"p": 1}, "p must be from 0.01 to 0.99, not 1"),
        ({"k": -1}, "k must be from 0 to 500, not -1"),
        ({"k": 2.5}, "k must be an integer, not 2.5"),
        ({"seed": 2**64}, "seed must be from 0 to 18446744073709551615, not 18446744073709551616"),
        ({"frequency_penalty": "0.5"}, "frequency_penalty must be a number, not '0.5'"),
        ({"presence_penalty": True}, "presence_penalty must be a number, not True"),
        ({"priority": 1000}, "priority must be from 0 to 999, not 1000"),
        ({"max_tokens": 0}, "max_tokens must be 1 or more, not 0"),
        ({"thinking_budget": 0}, "thinking_budget must be 1 or more, not 0"),
        ({"stop_sequences": list("abcdef")}, "6 stop sequences given; the API takes at most 5"),
        ({"stop_sequences": [""]}, "a stop sequence must be text, and not empty"),
        ({"safety_mode": "NONE"}, "safety mode 'NONE' is not one of CONTEXTUAL, STRICT, OFF"),
        ({"thinking": "on"}, "thinking 'on' is not one of enabled, disabled"),
        (
            {"thinking": "disabled", "thinking_budget": 9},
            "a thinking budget goes with thinking enabled, not disabled",
        ),
    ],
    ids=lambda v: ",".join(v) if isinstance(v, dict) else None,
)
def test_a_generation_option_outside_the_apis_bounds_is_refused_when_the_table_is_built(
    tmp_path: Path, given: dict[str, Any], says: str
) -> None:
    with pytest.raises(cb.UsageError) as refused:
        cb.PromptTable(tmp_path / "t.csv", "{{ text }}", **given)
    assert str(refused.value) == says


def test_a_keyed_table_run_with_another_seed_is_another_request(
    client: cb.Client, tmp_path: Path
) -> None:
    """The key covers every generation option: here a seed, as ``--idempotency-key`` does."""
    table = tmp_path / "t.csv"
    table.write_text("text\none\n")
    with nothing_printed():
        client.create(
            cb.PromptTable(table, "{{ text }}", seed=1), model=CHAT, idempotency_key="s-1"
        )
        with pytest.raises(cb.KeyReused) as refused:
            client.create(
                cb.PromptTable(table, "{{ text }}", seed=2), model=CHAT, idempotency_key="s-1"
            )
    assert 'seed: "1", now "2"' in str(refused.value)


def test_an_empty_system_message_is_refused_on_both_doors(cli: Any, tmp_path: Path) -> None:
    """``--system ''`` (or an empty ``--system-file``) put an empty system message before every
    prompt: refused where the value is built, as an empty prompt is."""
    table = tmp_path / "docs.csv"
    table.write_text("text\nalpha\n")
    (tmp_path / "system.txt").write_text("\n")
    with nothing_printed(), pytest.raises(cb.UsageError, match=r"^the system message is empty"):
        cb.PromptTable(table, "{{ text }}", system="  ")
    for flags in (("--system", ""), ("--system-file", str(tmp_path / "system.txt"))):
        said = cli(
            "create", "--from", str(table), "--prompt", "{{ text }}", *flags, "--model", CHAT,
            exit_code=2,
        )  # fmt: skip
        assert said.stderr == "error: the system message is empty: give its text, or none\n"
