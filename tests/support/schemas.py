"""The JSON Schema the typed-answer tests ask for: a review's sentiment, score and topics.

One schema, so the validator's unit tests, the sandbox's structured answers and
the command-line runs all check the same shape.
"""

from __future__ import annotations

from typing import Any

REVIEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "score": {"type": "number"},
        "topics": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["sentiment", "score", "topics"],
}
