"""Embed tables and table jobs through the Python API, in-process on the sandbox (issue 26).

``client.create(table=..., embed=...)`` and ``client.create_job(table=...)``
take the command line's table path (the same spec, the same rendering, the
same refusals); every call runs inside :func:`nothing_printed`, which proves
nothing reaches file descriptors 1 and 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from tests.conftest import TEST_KEY
from tests.sandbox.sandbox_client import Api
from tests.support.quiet import nothing_printed

CHAT = "command-r-08-2024"
EMBED = "embed-english-v3.0"


@pytest.fixture
def client(sandbox: Any) -> Iterator[cb.Client]:
    with nothing_printed():
        made = cb.Client(TEST_KEY, base_url=sandbox.base_url)
    yield made
    made.close()


def test_an_embed_table_run_gives_every_row_its_vectors_in_the_tables_order(
    client: cb.Client, api: Api, tmp_path: Path
) -> None:
    table = tmp_path / "docs.csv"
    table.write_text("id,text\nd1,the first document\nd2,the second one\nd3,a third text\n")
    with nothing_printed():
        run = client.create(
            table=table, embed="text", id_column="id", model=EMBED,
            embed_input_type="search_query", embed_types=["float", "int8"], embed_truncate="END",
        )  # fmt: skip
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
    assert [r["id"] for r in written] == ["d1", "d2", "d3"] and summary.records_written == 3
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
            table=table, prompt="Say {{ text }}", model=CHAT, max_tokens=20,
            max_records_per_batch=3,
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
    from cohere_batch_cli.tasks.table_prompts import EMBED_WITH_PROMPT

    table = tmp_path / "docs.csv"
    table.write_text("text\nalpha\nbeta\ngamma\n")
    before = [b.id for b in client._api.iter_batches()]
    with nothing_printed():
        for make in (client.create, client.create_job):
            with pytest.raises(cb.UsageError) as refused:
                make(table=table, embed="text", prompt="{{ text }}", model=EMBED)
            assert str(refused.value) == EMBED_WITH_PROMPT  # the command line's words
            with pytest.raises(cb.UsageError, match="schema go with prompt, not embed"):
                make(table=table, embed="text", schema={"type": "object"}, model=EMBED)
            with pytest.raises(cb.UsageError, match="embed_types go with embed"):
                make(table=table, prompt="{{ text }}", embed_types=["float"], model=CHAT)
            with pytest.raises(cb.UsageError, match="not an embedding type"):
                make(table=table, embed="text", embed_types=["floats"], model=EMBED)
        assert [b.id for b in client._api.iter_batches()] == before  # nothing was sent
        job = client.create_job(table=table, embed="text", model=EMBED, max_records_per_batch=2)
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
    args: dict[str, Any] = {"table": table, "model": CHAT, "max_records_per_batch": 2}
    with nothing_printed():
        job = client.create_job(prompt="Say {{ text }}", idempotency_key="tjob-1", **args)
        made = sorted(b.id for b in client._api.iter_batches())
        again = client.create_job(prompt="Say {{ text }}", idempotency_key="tjob-1", **args)
        with pytest.raises(cb.KeyReused, match="prompt"):
            client.create_job(prompt="Echo {{ text }}", idempotency_key="tjob-1", **args)
        after = sorted(b.id for b in client._api.iter_batches())
    assert again.id == job.id and len(job.parts()) == 2
    assert after == made  # nothing sent twice
    from cohere_batch_cli.state.store import state_dir

    kept = list((state_dir()[0] / "table-jobs").iterdir())
    assert len(kept) == 1, f"each call again left a copy of the table's requests: {kept}"
