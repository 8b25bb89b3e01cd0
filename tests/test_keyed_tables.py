"""A table run under an idempotency key is the same request however full the answer cache is.

A step that made a table run under a key and then wrote its results (which fills the
answer cache) may be retried whole: the same call then renders the table again, the
cache now answers rows the first call sent, and fewer requests are left to send. That
must still read as the same request, and give back the run the first call made, with its
results as they were. Driven through the Python API in-process (``cbatch
--idempotency-key`` is tested in test_idempotency.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from tests.support.keyed import job_made_for, made_for
from tests.support.quiet import nothing_printed

MODEL = "command-r-08-2024"


def _reviews(tmp_path: Path) -> Path:
    table = tmp_path / "reviews.csv"
    table.write_text("id,text\n1,great\n2,awful\n3,great\n4,fine\n", encoding="utf-8")
    return table


def test_a_keyed_table_run_made_again_once_its_answers_are_cached_is_the_same_batch(
    client: cb.Client, sandbox: Any, tmp_path: Path
) -> None:
    table = cb.PromptTable(_reviews(tmp_path), "Classify: {{ text }}", id_column="id")
    key = f"ci-table-{uuid.uuid4()}"
    with nothing_printed():
        first = client.create(table, model=MODEL, idempotency_key=key)
        first.wait(timeout=60, interval=0.1)
        first.results(tmp_path / "first.csv")  # the cache now holds 3 answers

        again = client.create(table, model=MODEL, idempotency_key=key)

        assert again.id == first.id
        batches, datasets = made_for(sandbox, key)
        assert batches == [first.id] and len(datasets) == 1  # no second upload, no second batch
        again.results(tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "first.csv").read_bytes()


def test_a_keyed_table_job_made_again_once_its_answers_are_cached_is_the_same_job(
    client: cb.Client, sandbox: Any, tmp_path: Path
) -> None:
    table = cb.PromptTable(_reviews(tmp_path), "Classify: {{ text }}")
    key = f"ci-table-job-{uuid.uuid4()}"
    split = cb.Split(max_records=2)
    with nothing_printed():
        job = client.create_job(table, model=MODEL, split=split, idempotency_key=key)
        job.wait(timeout=60, interval=0.1)
        job.results(tmp_path / "first.csv")

        again = client.create_job(table, model=MODEL, split=split, idempotency_key=key)
        assert again.id == job.id

        batches, datasets = job_made_for(sandbox, key)
        assert len(batches) == 2 and len(datasets) == 2  # 3 distinct requests, 2 a part: sent once
        again.results(tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "first.csv").read_bytes()


def test_a_keyed_table_run_asked_without_its_dedupe_is_another_request(
    client: cb.Client, sandbox: Any, tmp_path: Path
) -> None:
    table = _reviews(tmp_path)
    key = f"ci-table-dedupe-{uuid.uuid4()}"
    with nothing_printed():
        first = client.create(
            cb.PromptTable(table, "Classify: {{ text }}"), model=MODEL, idempotency_key=key
        )
        with pytest.raises(cb.KeyReused) as refused:
            client.create(
                cb.PromptTable(table, "Classify: {{ text }}", dedupe=False), model=MODEL,
                idempotency_key=key,
            )  # fmt: skip

    assert 'dedupe: not given, now "off"' in str(refused.value)
    assert made_for(sandbox, key)[0] == [first.id]


def test_a_keyed_table_run_of_a_changed_table_is_another_request(
    client: cb.Client, sandbox: Any, tmp_path: Path
) -> None:
    table = _reviews(tmp_path)
    source = cb.PromptTable(table, "Classify: {{ text }}")
    key = f"ci-table-changed-{uuid.uuid4()}"
    with nothing_printed():
        first = client.create(source, model=MODEL, idempotency_key=key)
        table.write_text(table.read_text(encoding="utf-8") + "5,meh\n", encoding="utf-8")

        with pytest.raises(cb.KeyReused) as refused:
            client.create(source, model=MODEL, idempotency_key=key)

    assert "input: fingerprint" in str(refused.value)
    assert made_for(sandbox, key)[0] == [first.id]
