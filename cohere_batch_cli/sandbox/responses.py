"""The body of a successful record: what the chat or embed endpoint would have answered.

The same input record always yields the same body, so tests can assert exact results
and a restarted sandbox recomputes identical output. Token counts come from the batch's
plan (:mod:`.plan`), which counted them with the rule of :mod:`.usage`, so a body's
``usage`` and the batch's totals agree.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import embeddings, tokenizer, usage

_NAMESPACE = uuid.UUID("6f0d3c1e-5b0e-4c2a-9a53-2f8f5e0b7c11")


def record_id(batch_id: str, custom_id: str) -> str:
    """A response id that is stable for one record of one batch."""
    return str(uuid.uuid5(_NAMESPACE, f"{batch_id}/{custom_id}"))


def chat_response(
    body: dict[str, Any],
    response_id: str,
    input_tokens: int,
    output_tokens: int,
    reply_tokens: int,
    *,
    broken: bool = False,
) -> dict[str, Any]:
    """A chat v2 response whose reply (``reply_tokens`` long) is cut to ``output_tokens``.

    A structured request's reply is its JSON answer (``broken``: one that breaks
    its schema); cut, it stops mid-object with ``finish_reason`` ``MAX_TOKENS``.
    """
    reply = usage.reply_text(body, broken=broken)
    finish_reason = "COMPLETE"
    if output_tokens < reply_tokens:
        reply = tokenizer.decode(tokenizer.ids(reply)[:output_tokens])
        finish_reason = "MAX_TOKENS"
    counts = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return {
        "id": response_id,
        "message": {"role": "assistant", "content": [{"type": "text", "text": reply}]},
        "finish_reason": finish_reason,
        "usage": {"billed_units": dict(counts), "tokens": dict(counts)},
    }


def embed_response(
    body: dict[str, Any], response_id: str, input_tokens: int, dimension: int
) -> dict[str, Any]:
    """An embed v2 response (``embeddings_by_type``) with one vector per unit."""
    texts, _, keys = usage.embed_units(body)
    requested = body.get("embedding_types")
    kinds = (
        [k for k in requested if k in usage.EMBEDDING_TYPES] if isinstance(requested, list) else []
    )
    response: dict[str, Any] = {
        "id": response_id,
        "embeddings": embeddings.embeddings(
            keys, dimension, list(dict.fromkeys(kinds)) or ["float"]
        ),
        "texts": texts,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": input_tokens}},
        "response_type": "embeddings_by_type",
    }
    images = [i for i in body.get("images") or [] if isinstance(i, str)]
    if images:
        response["images"] = [{"width": 1, "height": 1, "format": "png", "bit_depth": 8}] * len(
            images
        )
    return response
