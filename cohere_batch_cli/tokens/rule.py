"""Which text of a request counts as its input tokens: the API's rule, as far as a client can know it.

Cohere bills a chat request for the text of its messages plus template tokens of its
own, and an embed request for the text of each of its units (one string of ``texts``,
or one item of ``inputs``), each cut to the model's limit unless ``truncate`` is
``NONE``. Images are billed by neither endpoint as text, and a client cannot count
them, so they are counted apart and reported. docs/sandbox.md ("How usage is
counted") states the same rule, which the sandbox bills by; this module is cbatch's
own reading of it, not the sandbox's code.

A byte-level BPE (the kind Cohere publishes: every byte a token, no normalizer) never
makes more tokens than the UTF-8 bytes of a text, and a JSON line is never shorter than
the UTF-8 text it encodes (an escape only lengthens a character). So a line's length
bounds the tokens of every text in it, which is what lets ``create --file`` prove most
records fit without a tokenizer (:func:`line_bound`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CHAT = "chat"
EMBED = "embed"


@dataclass(frozen=True, slots=True)
class RecordTexts:
    """What of one request is counted.

    ``texts`` are the counted texts in order. For embed, ``units`` says how many of
    them each unit holds (an image unit holds none); for chat it is empty and every
    text counts towards the one input. ``max_tokens`` is 0 when the request sets no
    positive value.
    """

    texts: tuple[str, ...]
    units: tuple[int, ...] = ()
    messages: int = 0
    images: int = 0
    max_tokens: int = 0
    truncate_none: bool = False


def kind_of(dataset_type: str | None) -> str:
    """``embed`` for an embed input type, ``chat`` for every chat one."""
    return EMBED if dataset_type == "batch-embed-v2-input" else CHAT


def _positive_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def chat_texts(body: Any) -> RecordTexts:
    """The text parts of every message: a string content is one part; in a list, ``text`` parts.

    ``thinking`` parts, tools, documents and every other field count nothing here;
    ``image_url`` parts are counted as images.
    """
    if not isinstance(body, dict):
        return RecordTexts(())
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    texts: list[str] = []
    images = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif kind == "image_url":
                    images += 1
    return RecordTexts(
        tuple(texts),
        messages=len(messages),
        images=images,
        max_tokens=_positive_int(body.get("max_tokens")),
    )


def embed_texts(body: Any) -> RecordTexts:
    """The units of an embed request: each string of ``texts``, each image, each item of ``inputs``."""
    if not isinstance(body, dict):
        return RecordTexts(())
    texts: list[str] = [t for t in _list(body.get("texts")) if isinstance(t, str)]
    units = [1] * len(texts)
    images = sum(1 for i in _list(body.get("images")) if isinstance(i, str))
    units += [0] * images
    for item in _list(body.get("inputs")):
        content = item.get("content") if isinstance(item, dict) else None
        held = 0
        for part in _list(content):
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
                held += 1
            elif part.get("type") == "image_url":
                images += 1
        units.append(held)
    truncate = body.get("truncate")
    return RecordTexts(
        tuple(texts),
        units=tuple(units),
        images=images,
        max_tokens=_positive_int(body.get("max_tokens")),
        truncate_none=isinstance(truncate, str) and truncate.upper() == "NONE",
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def record_texts(body: Any, kind: str) -> RecordTexts:
    return embed_texts(body) if kind == EMBED else chat_texts(body)


def unit_tokens(texts: RecordTexts, counts: list[int]) -> list[int]:
    """The tokens of each embed unit, from the counts of ``texts.texts`` in order."""
    out, at = [], 0
    for held in texts.units:
        out.append(sum(counts[at : at + held]))
        at += held
    return out


def embed_limit(texts: RecordTexts, context_length: int) -> int:
    """A unit's limit: the context length, or ``max_tokens`` when that is set and smaller."""
    return min(context_length, texts.max_tokens) if texts.max_tokens else context_length


# -- the byte bound -------------------------------------------------------------------------

_MAX_TOKENS = re.compile(rb'"max_tokens"\s*:\s*(-?\d+)')
_ESCAPED_NAME = re.compile(rb"\\u00[4-7][0-9a-fA-F]")
"""A ``\\u`` escape of an ASCII letter or ``_``: a key could hide behind one (``"max\\u005ftokens"``)."""


@dataclass(frozen=True, slots=True)
class LineBound:
    """What a line's bytes alone prove: an upper bound of its input tokens and output bound.

    ``decided`` is False when the bytes cannot settle a question the exact count can
    (a key spelled with escapes); the caller then parses and counts the line.
    """

    input_tokens: int
    output_tokens: int
    fits: bool
    decided: bool = True


def line_bound(raw: bytes, kind: str, context_length: int, assumed_output: int) -> LineBound:
    """Bound one JSON line's tokens by its bytes, without parsing it.

    Every ``"max_tokens": N`` in the line is a candidate for the request's own (a nested
    object may hold one too), so the bound takes the largest of them and the assumed
    bound; an embed limit takes the smallest. Both err on the side of "may not fit".
    """
    size = len(raw)
    found = [int(m) for m in _MAX_TOKENS.findall(raw)] if b'"max_tokens"' in raw else []
    hidden = b"\\u00" in raw and _ESCAPED_NAME.search(raw) is not None
    if kind == EMBED:
        # Only a unit over its limit with truncate NONE fails; any other is cut to fit.
        if b'"truncate"' not in raw and not hidden:
            return LineBound(size, 0, True)
        positive = [n for n in found if n > 0]
        limit = min([context_length, *positive])
        return LineBound(size, 0, size <= limit, decided=not hidden)
    output = max([assumed_output, *found])
    return LineBound(size, output, size + output <= context_length, decided=not hidden)


def block_fits(block: bytes, kind: str, context_length: int, assumed_output: int) -> bool:
    """Whether every line of ``block`` (whole lines) is proven to fit by its bytes alone.

    The block-wide version of :func:`line_bound`, erring the same way: the longest line
    stands for all, and the largest ``max_tokens`` anywhere in it (the smallest, for an
    embed limit). A block no longer than the context less the output bound needs no
    look at its lines at all, which makes the check cost a few operations per block.
    """
    if _ESCAPED_NAME.search(block):
        return False
    found = [int(m) for m in _MAX_TOKENS.findall(block)]  # a regular expression outruns ``in`` here
    if kind == EMBED:
        if b'"truncate"' not in block:
            return True
        limit = min([context_length, *(n for n in found if n > 0)])
        return _longest(block, limit) <= limit
    room = context_length - max([assumed_output, *found])
    return _longest(block, room) <= room


def _longest(block: bytes, room: int) -> int:
    """The longest line of ``block``; its whole length when that already fits in ``room``."""
    if len(block) <= room:
        return len(block)
    return max(map(len, block.split(b"\n")))
