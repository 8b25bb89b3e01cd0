"""Usage counted by the rule docs/sandbox.md states, checked the way a client would check it:
with the tokenizer downloaded from ``tokenizer_url``, plus the documented overheads."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohere_batch_cli.sandbox import tokenizer as sandbox_tokenizer
from cohere_batch_cli.sandbox import usage
from tests.sandbox.sandbox_client import jsonl

REQUEST, MESSAGE = 3, 4  # the documented defaults


@pytest.fixture(scope="module")
def tok(shared: Any) -> Any:
    from tokenizers import Tokenizer

    url = shared.http.get("/v1/models/command-r-08-2024").json()["tokenizer_url"]
    return Tokenizer.from_str(httpx.get(url).text)


def n(tok: Any, text: str) -> int:
    return len(tok.encode(text, add_special_tokens=False).ids)


CHATS = [
    {"custom_id": "plain", "body": {"messages": [{"role": "user", "content": "What is the capital of France?"}]}},
    {"custom_id": "parts", "body": {"messages": [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": [
            {"type": "text", "text": "Describe "}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": "this picture, café ☕"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "not counted"}, {"type": "text", "text": "A cup."}]},
        {"role": "user", "content": "And the saucer?"}]}},
    {"custom_id": "capped", "body": {"max_tokens": 2, "messages": [{"role": "user", "content": "Tell me a long story"}]}},
]  # fmt: skip


def expected_chat(
    tok: Any, body: dict[str, Any], request: int = REQUEST, message: int = MESSAGE
) -> tuple[int, int]:
    texts = []
    for m in body["messages"]:
        content = m["content"]
        texts += (
            [content]
            if isinstance(content, str)
            else [p["text"] for p in content if p["type"] == "text"]
        )
    last_user = next(m for m in reversed(body["messages"]) if m["role"] == "user")
    quote = (
        last_user["content"]
        if isinstance(last_user["content"], str)
        else " ".join(p["text"] for p in last_user["content"] if p["type"] == "text")
    )
    reply = n(tok, "Sandbox reply to: " + quote[:60])
    return sum(n(tok, t) for t in texts) + request + message * len(body["messages"]), min(
        reply, body.get("max_tokens", reply)
    )


def test_chat_usage_is_the_text_tokens_plus_the_template_overhead(shared: Any, tok: Any) -> None:
    done = shared.run(jsonl(CHATS))
    records = shared.by_id(done["output_dataset_id"])
    total_in = total_out = 0
    for row in CHATS:
        body = json.loads(records[row["custom_id"]]["body"])
        tin, tout = expected_chat(tok, row["body"])
        assert body["usage"]["billed_units"] == {"input_tokens": tin, "output_tokens": tout}, row[
            "custom_id"
        ]
        assert body["usage"]["tokens"] == body["usage"]["billed_units"]
        total_in, total_out = total_in + tin, total_out + tout
    assert (done["input_tokens"], done["output_tokens"]) == (str(total_in), str(total_out))
    capped = json.loads(records["capped"]["body"])
    assert capped["finish_reason"] == "MAX_TOKENS"
    ids = tok.encode("Sandbox reply to: Tell me a long story", add_special_tokens=False).ids
    assert capped["message"]["content"][0]["text"] == tok.decode(ids[:2])


def test_the_overheads_are_settings(start: Any, tok: Any) -> None:
    api = start(chat_request_overhead=0, chat_message_overhead=0)
    done = api.run(jsonl(CHATS))
    assert int(done["input_tokens"]) == sum(expected_chat(tok, r["body"], 0, 0)[0] for r in CHATS)


def test_chat_over_the_context_length_fails_as_the_api_words_it(start: Any, tok: Any) -> None:
    api = start(context_length=30)
    rows = [
        {"custom_id": "short", "body": {"messages": [{"role": "user", "content": "hi"}]}},
        {"custom_id": "long", "body": {"messages": [{"role": "user", "content": "word " * 40}]}},
    ]
    done = api.run(jsonl(rows))
    records = api.by_id(done["output_dataset_id"])
    tin = expected_chat(tok, rows[1]["body"])[0]
    assert records["long"]["body"] is None
    assert records["long"]["error"] == (
        f"too many tokens: size limit exceeded by {tin - 30} tokens. "
        "Try using shorter or fewer inputs. The limit for this model is 30 tokens."
    )
    assert records["short"]["error"] == "" and done["num_failed_records"] == 1
    assert done["input_tokens"] == str(expected_chat(tok, rows[0]["body"])[0]), (
        "failed records bill nothing"
    )


def test_embed_usage_counts_each_text_truncated_unless_none(start: Any, tok: Any) -> None:
    api = start(context_length=8)
    long = "one two three four five six seven eight nine ten eleven twelve"
    rows = [
        {"custom_id": "texts", "body": {"texts": ["hello world", long], "input_type": "search_document", "embedding_types": ["float"]}},
        {"custom_id": "inputs", "body": {"inputs": [{"content": [{"type": "text", "text": "a b"}, {"type": "image_url", "image_url": {"url": "data:x"}}, {"type": "text", "text": "c"}]}],
                                         "input_type": "search_document"}},
        {"custom_id": "capped", "body": {"texts": [long], "max_tokens": 3, "input_type": "search_document"}},
        {"custom_id": "none", "body": {"texts": ["ok", long], "truncate": "NONE", "input_type": "search_document"}},
    ]  # fmt: skip
    done = api.run(jsonl(rows), type_="batch-embed-v2-input", model="embed-english-v3.0")
    records = api.by_id(done["output_dataset_id"])

    def billed(cid: str) -> int:
        return int(json.loads(records[cid]["body"])["meta"]["billed_units"]["input_tokens"])

    assert n(tok, long) > 8
    assert billed("texts") == n(tok, "hello world") + 8
    assert billed("inputs") == n(tok, "a b") + n(tok, "c")
    assert billed("capped") == 3
    assert records["none"]["error"] == (
        f"too many tokens: size limit exceeded by {n(tok, long) - 8} tokens. "
        "Try using shorter or fewer inputs. The limit for this model is 8 tokens."
    )
    assert done["input_tokens"] == str(billed("texts") + billed("inputs") + billed("capped"))
    assert done["output_tokens"] == "0"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_the_reply_count_shortcut_equals_tokenizing_the_whole_reply(text: str) -> None:
    body = {"messages": [{"role": "user", "content": text}]}
    assert usage.reply_tokens(body) == sandbox_tokenizer.count(usage.reply_text(body))
