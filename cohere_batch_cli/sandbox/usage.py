"""How the sandbox counts tokens: the exact rule docs/sandbox.md states for clients.

Validation reads each record once and keeps its model-independent *facts* (token counts
of its texts, message count, the reply's length, the request fields that matter); a
batch then turns facts into usage for its model with :func:`chat_usage` and
:func:`embed_usage`. So ``cbatch estimate`` (or any client holding the tokenizer from
``tokenizer_url``) computes the same text tokens, and the billed number is that plus
the fixed template overhead.

Chat: ``input = sum over messages of sum over text parts of len(encode(part))
+ request_overhead + message_overhead * len(messages)``, where a string content is one
text part and only parts of type ``text`` count (not ``thinking``, not images); the
reply's tokens are the output, at most ``max_tokens``. Embed: each *unit* (one string
of ``texts``, or one item of ``inputs`` counting the text parts of its ``content``) has
``len(encode(text))`` tokens, truncated to the limit unless ``truncate`` is ``NONE``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from . import structured, tokenizer

FAIL_MARKER = "[[sandbox:fail]]"
REPLY_PREFIX = "Sandbox reply to: "
REPLY_QUOTE = 60
"""The reply quotes this many characters of the last user message."""
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
TRUNCATE = ("NONE", "START", "END")


def body_hash(body: Any) -> str:
    """A stable digest of a request body: the same request sent again hashes the same,
    whatever its key order or spacing."""
    return digest(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def digest(canonical_body: str) -> str:
    """:func:`body_hash` of a body already serialised with sorted keys and no spaces."""
    return hashlib.blake2b(canonical_body.encode("utf-8"), digest_size=8).hexdigest()


def _positive_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# -- chat ---------------------------------------------------------------------------


def text_parts(message: Any) -> list[str]:
    """The text content parts of a message, the ones its usage counts."""
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [
        p["text"]
        for p in content
        if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
    ]


def _marker_texts(message: Any) -> list[str]:
    texts = text_parts(message)
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        texts += [
            p["thinking"]
            for p in content
            if isinstance(p, dict) and isinstance(p.get("thinking"), str)
        ]
    return texts


def prompt_text(body: dict[str, Any]) -> str:
    """The last user message's text parts, joined: what a reply answers."""
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return " ".join(text_parts(message))
    return ""


def _quote(body: dict[str, Any]) -> str:
    return prompt_text(body)[:REPLY_QUOTE]


def reply_text(body: dict[str, Any], *, broken: bool = False) -> str:
    """The whole reply before ``max_tokens``: a quote of the last user message.

    A structured request (``response_format`` ``json_object``) is answered with
    JSON instead (:mod:`.structured`); ``broken`` makes it break its schema.
    """
    if structured.response_format(body) is not None:
        return structured.answer(body, prompt_text(body), broken=broken)
    return f"{REPLY_PREFIX}{_quote(body)}"


def reply_tokens(body: dict[str, Any]) -> int:
    """``len(encode(reply_text(body)))``, without tokenizing the fixed prefix every time.

    The byte-level pre-tokenizer's pattern has no look-behind and the prefix ends in
    ``:`` before a space, which always ends a pre-token, so the counts of the prefix and of
    the rest add up to the count of the whole (tests/sandbox/test_usage.py checks it).
    """
    if structured.response_format(body) is not None:
        return tokenizer.count(reply_text(body))
    return _prefix_tokens() + tokenizer.count(" " + _quote(body))


@functools.lru_cache(maxsize=1)
def _prefix_tokens() -> int:
    return tokenizer.count(REPLY_PREFIX.rstrip(" "))


NOT_STRUCTURED, STRUCTURED, REFUSED = 0, 1, 2
"""What a chat request's ``response_format`` makes of it: plain text, JSON, or a failed record."""


@dataclass(frozen=True)
class ChatFacts:
    text_tokens: int
    messages: int
    reply_tokens: int
    max_tokens: int
    marker: bool
    structured: int = NOT_STRUCTURED
    broken_tokens: int = 0
    """A structured answer's length once broken by ``--invalid-output-rate``."""


def chat_facts(body: dict[str, Any]) -> ChatFacts:
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    messages = messages or []
    text_tokens = sum(tokenizer.count(t) for m in messages for t in text_parts(m))
    marker = any(FAIL_MARKER in t for m in messages for t in _marker_texts(m))
    kind, broken, reply = NOT_STRUCTURED, 0, 0
    if structured.response_format(body) is None:
        reply = reply_tokens(body)
    elif structured.refusal(body) is not None:
        kind = REFUSED
    else:
        kind = STRUCTURED
        text, broken_text = structured.answers(body, prompt_text(body))
        reply, broken = tokenizer.count(text), tokenizer.count(broken_text)
    return ChatFacts(
        text_tokens=text_tokens,
        messages=len(messages),
        reply_tokens=reply,
        max_tokens=_positive_int(body.get("max_tokens")),
        marker=marker,
        structured=kind,
        broken_tokens=broken,
    )


def chat_usage(facts: ChatFacts, request_overhead: int, message_overhead: int) -> tuple[int, int]:
    """(input tokens, output tokens) of one chat request: the counting rule."""
    tin = facts.text_tokens + request_overhead + message_overhead * facts.messages
    tout = min(facts.reply_tokens, facts.max_tokens) if facts.max_tokens else facts.reply_tokens
    return tin, tout


# -- embed --------------------------------------------------------------------------


def embed_units(body: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    """(texts for the response, the text items of each unit, the key of each unit's vector).

    A unit is one string of ``texts``, one image of ``images`` (no text), or one item of
    ``inputs`` (its text items, and its images by URL for the vector).
    """
    texts = [t for t in body.get("texts") or [] if isinstance(t, str)]
    images = [i for i in body.get("images") or [] if isinstance(i, str)]
    unit_texts: list[list[str]] = [[t] for t in texts] + [[] for _ in images]
    keys = list(texts) + list(images)
    for item in body.get("inputs") or []:
        content = item.get("content") if isinstance(item, dict) else None
        pieces: list[str] = []
        item_texts: list[str] = []
        for part in content if isinstance(content, list) else []:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                pieces.append(part["text"])
                item_texts.append(part["text"])
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                if isinstance(url, str):
                    pieces.append(url)
        unit_texts.append(item_texts)
        keys.append("\n".join(pieces))
    return texts, unit_texts, keys


@dataclass(frozen=True)
class EmbedFacts:
    unit_tokens: tuple[int, ...]
    truncate_none: bool
    max_tokens: int
    bad_types: bool
    marker: bool


def embed_facts(body: dict[str, Any]) -> EmbedFacts:
    _, unit_texts, keys = embed_units(body)
    requested = body.get("embedding_types")
    bad_types = isinstance(requested, list) and any(t not in EMBEDDING_TYPES for t in requested)
    truncate = body.get("truncate")
    return EmbedFacts(
        unit_tokens=tuple(sum(tokenizer.count(t) for t in unit) for unit in unit_texts),
        truncate_none=isinstance(truncate, str) and truncate.upper() == "NONE",
        max_tokens=_positive_int(body.get("max_tokens")),
        bad_types=bad_types,
        marker=any(FAIL_MARKER in k for k in keys),
    )


def embed_limit(facts: EmbedFacts, context_length: int) -> int:
    return min(context_length, facts.max_tokens) if facts.max_tokens else context_length


def embed_usage(facts: EmbedFacts, context_length: int) -> tuple[int, int]:
    """(input tokens, the largest unit's excess over the limit; 0 when every unit fits)."""
    limit = embed_limit(facts, context_length)
    excess = max([u - limit for u in facts.unit_tokens] + [0])
    return sum(min(u, limit) for u in facts.unit_tokens), excess


# -- facts on disk --------------------------------------------------------------------


def facts_line(kind: str, record: Any, body_digest: str | None = None) -> list[Any]:
    """One record's facts as a compact JSON list (a line of ``facts.jsonl``)."""
    body = record.get("body") if isinstance(record, dict) else None
    if not isinstance(body, dict):
        return ["x", ""]
    key = body_digest or body_hash(body)
    if kind == "embed":
        e = embed_facts(body)
        return [
            "e",
            key,
            int(e.marker),
            list(e.unit_tokens),
            int(e.truncate_none),
            e.max_tokens,
            int(e.bad_types),
        ]
    c = chat_facts(body)
    line = ["c", key, int(c.marker), c.text_tokens, c.messages, c.reply_tokens, c.max_tokens]
    return [*line, c.structured, c.broken_tokens] if c.structured else line


def parse_facts(line: list[Any]) -> tuple[str, str, ChatFacts | EmbedFacts | None]:
    """(kind, body hash, facts) back from :func:`facts_line`; facts None for a record without a body."""
    kind, digest = line[0], line[1]
    if kind == "e":
        return (
            kind,
            digest,
            EmbedFacts(tuple(line[3]), bool(line[4]), line[5], bool(line[6]), bool(line[2])),
        )
    if kind == "c":
        more = (
            line[7:9] if len(line) >= 9 else [NOT_STRUCTURED, 0]
        )  # facts of an older sandbox lack them
        return kind, digest, ChatFacts(line[3], line[4], line[5], line[6], bool(line[2]), *more)
    return kind, digest, None
