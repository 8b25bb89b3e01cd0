"""Deterministic stand-ins for what the chat and embed endpoints would answer.

The same input record always yields the same body, token counts and outcome, so tests
can assert exact results and a restarted sandbox recomputes identical output. A record
fails on purpose when any of its text contains :data:`FAIL_MARKER`.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import uuid
from typing import Any

FAIL_MARKER = "[[sandbox:fail]]"
FAIL_MESSAGE = "sandbox: failure requested by [[sandbox:fail]] marker"
EMBED_DIM = 8
_NAMESPACE = uuid.UUID("6f0d3c1e-5b0e-4c2a-9a53-2f8f5e0b7c11")
_EMBED_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")


def record_id(batch_id: str, custom_id: str) -> str:
    """A response id that is stable for one record of one batch."""
    return str(uuid.uuid5(_NAMESPACE, f"{batch_id}/{custom_id}"))


def _words(text: str) -> int:
    return len(text.split())


# -- chat ---------------------------------------------------------------------------


def _message_texts(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    texts = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                for key in ("text", "thinking"):
                    if isinstance(part.get(key), str):
                        texts.append(part[key])
    return texts


def chat_response(
    body: dict[str, Any], response_id: str
) -> tuple[dict[str, Any] | None, str | None, int, int]:
    """(body, error, input_tokens, output_tokens) for one chat request body."""
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    texts = [t for m in messages for t in _message_texts(m)]
    if any(FAIL_MARKER in t for t in texts):
        return None, FAIL_MESSAGE, 0, 0
    last_user = ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            last_user = " ".join(_message_texts(message))
            break
    words = f"Sandbox reply to: {last_user[:60]}".split()
    finish_reason = "COMPLETE"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and 0 < max_tokens < len(words):
        words = words[:max_tokens]
        finish_reason = "MAX_TOKENS"
    reply = " ".join(words)
    input_tokens = sum(_words(t) for t in texts)
    output_tokens = len(words)
    response = {
        "id": response_id,
        "message": {"role": "assistant", "content": [{"type": "text", "text": reply}]},
        "finish_reason": finish_reason,
        "usage": {
            "billed_units": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            "tokens": {"input_tokens": input_tokens + 6, "output_tokens": output_tokens + 1},
        },
    }
    return response, None, input_tokens, output_tokens


# -- embed --------------------------------------------------------------------------


def _embed_inputs(body: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(texts, images, everything to embed in order) of an embed body."""
    texts = [t for t in body.get("texts") or [] if isinstance(t, str)]
    images = [i for i in body.get("images") or [] if isinstance(i, str)]
    units = list(texts) + list(images)
    for item in body.get("inputs") or []:
        content = item.get("content") if isinstance(item, dict) else None
        pieces = []
        for part in content if isinstance(content, list) else []:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                pieces.append(part["text"])
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                if isinstance(url, str):
                    pieces.append(url)
        units.append("\n".join(pieces))
    return texts, images, units


def vector(text: str) -> list[float]:
    """Eight floats in [-1, 1] derived from a hash of the text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [round(b / 127.5 - 1.0, 6) for b in digest[:EMBED_DIM]]


def _encode(vec: list[float], kind: str) -> Any:
    if kind == "float":
        return vec
    if kind == "int8":
        return [max(-128, min(127, round(v * 127))) for v in vec]
    if kind == "uint8":
        return [max(0, min(255, round((v + 1) * 127.5))) for v in vec]
    if kind in ("binary", "ubinary"):
        byte = 0
        for v in vec:
            byte = (byte << 1) | (1 if v > 0 else 0)
        return [byte - 128 if kind == "binary" else byte]
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode("ascii")


def embed_response(
    body: dict[str, Any], response_id: str
) -> tuple[dict[str, Any] | None, str | None, int, int]:
    """(body, error, input_tokens, output_tokens) for one embed request body."""
    texts, images, units = _embed_inputs(body)
    if any(FAIL_MARKER in u for u in units):
        return None, FAIL_MESSAGE, 0, 0
    requested = body.get("embedding_types") or ["float"]
    kinds = [k for k in requested if k in _EMBED_TYPES] or ["float"]
    vectors = [vector(u) for u in units]
    input_tokens = sum(_words(u) for u in units)
    response: dict[str, Any] = {
        "id": response_id,
        "embeddings": {k: [_encode(v, k) for v in vectors] for k in kinds},
        "texts": texts,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": input_tokens}},
        "response_type": "embeddings_by_type",
    }
    if images:
        response["images"] = [{"width": 1, "height": 1, "format": "png", "bit_depth": 8}] * len(images)
    return response, None, input_tokens, 0


def respond(
    kind: str, record: Any, response_id: str
) -> tuple[dict[str, Any] | None, str | None, int, int]:
    """The stand-in result of one input record; ``kind`` is ``chat`` or ``embed``."""
    body = record.get("body") if isinstance(record, dict) else None
    if not isinstance(body, dict):
        return None, "sandbox: record has no request body", 0, 0
    if kind == "embed":
        return embed_response(body, response_id)
    return chat_response(body, response_id)
