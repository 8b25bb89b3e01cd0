"""Whether a record's answer is usable: the one place a schema run's invalid answer is decided.

A record of a run made with ``--schema`` can succeed on the API and still
answer with text that is not JSON, is cut off at ``MAX_TOKENS``, or breaks
the schema: an *invalid* answer. Everything that tells a usable answer from
one to send again asks here, so they never disagree:

- the table out (:mod:`.table_out`) writes the row with ``status`` ``invalid``
  and the reason in ``invalid_output``;
- a merge of attempts (:mod:`.merge`) never lets an invalid answer win as a
  success;
- a retry's selection (:mod:`cohere_batch_cli.selection`) sends it again,
  and counts it among the records still failing.

A failed record is not invalid: it failed, which every caller already tells
by its ``error``. A run without a schema has no invalid answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .records import decode_body, is_failed, reply_text

if TYPE_CHECKING:
    from .answer_columns import TypedAnswers

INVALID_PREFIX = "invalid output: "
"""How a retry's listing and error counts name an invalid answer's reason."""


def verdict(
    typed: TypedAnswers, body: Any, text: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    """A succeeded record's typed values, or None and why its answer is invalid.

    ``body`` is the record's decoded body and ``text`` its reply's text
    (:func:`.records.reply_text`), which the table out reads once for its
    ``answer`` column too.
    """
    reason = body.get("finish_reason") if isinstance(body, dict) else None
    return typed.read(text, reason if isinstance(reason, str) else None)


def invalid_reason(record: dict[str, Any], typed: TypedAnswers | None) -> str | None:
    """Why ``record``'s answer is invalid for the run's schema; None when usable, failed, or no schema."""
    if typed is None or is_failed(record):
        return None
    body = decode_body(record.get("body"))
    text = reply_text(body) if isinstance(body, dict) else None
    return verdict(typed, body, text)[1]


def usable(typed: TypedAnswers | None) -> Callable[[dict[str, Any]], bool]:
    """Whether a record is a success that counts: not failed, and (with a schema) valid."""
    if typed is None:
        return lambda record: not is_failed(record)
    return lambda record: not is_failed(record) and invalid_reason(record, typed) is None


def of_schema_text(schema: str | None) -> TypedAnswers | None:
    """The run's answer reader from its recorded schema (JSON text), or None for a run without one."""
    if schema is None:
        return None
    import json

    from .answer_columns import TypedAnswers

    return TypedAnswers.of_schema(json.loads(schema))
