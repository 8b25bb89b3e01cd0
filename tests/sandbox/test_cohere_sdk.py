"""Cohere's official Python SDK, pointed at the sandbox, reads it as it reads the real API:
batches list and get, datasets get and list, an output saved with ``utils.save_dataset``,
and offline token counts from the model's ``tokenizer_url`` (benchmarks/sdk_results.py
uses the SDK the same way)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cohere
import httpx
import pytest

from tests.sandbox.sandbox_client import KEY, chat_lines, embed_lines


@pytest.fixture(scope="module")
def sdk(shared: Any) -> Iterator[cohere.ClientV2]:
    with httpx.Client(timeout=30) as http:  # ours, so it is closed when the module ends
        yield cohere.ClientV2(
            api_key=KEY,
            base_url=shared.server.base_url,
            httpx_client=http,
            log_warning_experimental_features=False,
        )


def test_batches_list_and_get(shared: Any, sdk: cohere.ClientV2) -> None:
    done = shared.run(chat_lines(4, fail={2}), model="command-r-08-2024")
    listed = sdk.batches.list(page_size=1000)
    assert done["id"] in [b.id for b in listed.batches or []]
    got = sdk.batches.retrieve(done["id"]).batch
    assert got.status == "BATCH_STATUS_COMPLETED"
    assert (got.num_successful_records, got.num_failed_records) == (3, 1)
    assert (
        got.input_tokens == done["input_tokens"]
        and got.output_dataset_id == done["output_dataset_id"]
    )


def test_datasets_get_list_and_save_an_output(
    shared: Any, sdk: cohere.ClientV2, tmp_path: Path
) -> None:
    done = shared.run(chat_lines(5, fail={1}))
    shared.wait_dataset(done["output_dataset_id"])
    dataset = sdk.datasets.get(done["output_dataset_id"]).dataset
    assert (
        dataset.validation_status == "validated" and dataset.dataset_type == "batch-chat-v2-output"
    )
    assert done["output_dataset_id"] in [d.id for d in sdk.datasets.list().datasets or []]
    out = tmp_path / "out.jsonl"
    sdk.utils.save_dataset(dataset, str(out), format="jsonl")
    rows = {r["custom_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(rows) == [f"r{i}" for i in range(5)]
    assert rows["r1"]["body"] is None and rows["r1"]["error"]
    assert (
        rows["r0"]["error"] == ""
        and json.loads(rows["r0"]["body"])["message"]["role"] == "assistant"
    )


def test_an_embed_output_and_an_input_dataset_read_back(
    shared: Any, sdk: cohere.ClientV2, tmp_path: Path
) -> None:
    done = shared.run(
        embed_lines(["a", "b"], embedding_types=["float"]),
        type_="batch-embed-v2-input",
        model="embed-v4.0",
    )
    shared.wait_dataset(done["output_dataset_id"])
    for dataset_id in (done["output_dataset_id"], done["input_dataset_id"]):
        out = tmp_path / f"{dataset_id}.jsonl"
        sdk.utils.save_dataset(sdk.datasets.get(dataset_id).dataset, str(out), format="jsonl")
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(r["custom_id"] for r in rows) == ["e0", "e1"]
    request = json.loads(rows[0]["body"])  # the input dataset: each record's request body
    assert request["texts"] in (["a"], ["b"]) and request["embedding_types"] == ["float"]


def test_offline_token_counts_are_the_billed_tokens_less_the_overhead(
    shared: Any, sdk: cohere.ClientV2
) -> None:
    text = "What is the capital of France? Answer in one word."
    tokens = sdk.tokenize(text=text, model="command-r-08-2024", offline=True).tokens
    row = {"custom_id": "t", "body": {"messages": [{"role": "user", "content": text}]}}
    done = shared.run((json.dumps(row) + "\n").encode())
    assert int(done["input_tokens"]) == len(tokens) + 3 + 4 * 1
