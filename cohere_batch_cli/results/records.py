"""The shapes one output record is written in: a JSONL line, a joined line; what a reply says.

Pure functions of a decoded Avro record (a dict), so they are tested without
a server. What each shape holds is documented in the package docstring and
in ``cbatch results --help``; the columns of CSV and Parquet are in :mod:`.columns`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson as _orjson

_PLAIN_SUCCESS_KEYS = frozenset({"custom_id", "body", "error"})
_SPLICED_KEYS = _PLAIN_SUCCESS_KEYS | {"attempt"}
"""Merged results (:mod:`.merge`) add the attempt a record came from; such a line is spliced too."""
_TAILS = {n: f',"attempt":{n}}}' for n in range(1, 33)}
"""The end of a spliced line of merged results, made once for the attempts most chains have."""
_quote = (
    json.encoder.encode_basestring
)  # a str as a JSON string, in C: what the encoder does for one


def is_failed(record: dict[str, Any]) -> bool:
    """A record failed when it carries a non-empty ``error``."""
    error = record.get("error")
    return error is not None and error != "" and error != {}


def decode_body(value: Any) -> Any:
    """``body`` as JSON: a nested record as is, a JSON-encoded string (or bytes) decoded.

    A string that is not JSON (``{oops}``, or ``NaN``, which Python's parser
    would take) stays the string it is, so the line written around it is
    still JSON; :func:`body_not_json` tells the writer to count it.
    """
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text, parse_constant=_not_json)
            except (ValueError, RecursionError):
                return value
    return value


def body_not_json(record: dict[str, Any], decoded: Any) -> bool:
    """Whether a record's body came as text that is not JSON (and so was kept as a string)."""
    return isinstance(record.get("body"), (str, bytes, bytearray)) and isinstance(decoded, str)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def is_json(text: str) -> bool:
    """Whether ``text`` is one JSON document, by a strict parser: no NaN, no Infinity.

    orjson proves it about ten times faster than the
    standard library (docs/performance.md, P4); what it refuses and the
    standard library accepts as valid JSON (an integer past 64 bits) is
    asked of the standard library, which has the last word.
    """
    try:
        _orjson.loads(text)
    except _orjson.JSONDecodeError:
        pass
    else:
        return True
    try:
        json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return False
    return True


def jsonl_record(record: dict[str, Any]) -> dict[str, Any]:
    """The JSONL shape of one output record: ``custom_id``, then ``body`` or ``error``, then the rest."""
    out: dict[str, Any] = {"custom_id": record.get("custom_id")}
    body = record.get("body")
    error = record.get("error")
    if body is not None:
        out["body"] = decode_body(body)
    if is_failed(record):
        out["error"] = error
    if "body" not in out and "error" not in out:
        out["body"] = None
    out.update((key, value) for key, value in record.items() if key not in _PLAIN_SUCCESS_KEYS)
    return out


def spliced_jsonl_line(record: dict[str, Any]) -> str | None:
    """The JSONL line of a plain success record with its body text kept as received.

    Most records are a custom_id and a body that is one JSON object as text.
    Decoding that body only to encode it again was over half of a results
    run (docs/performance.md, P4), so such a body is spliced into the line
    as it came, once :func:`is_json` has proved it is JSON (a body of
    ``{oops}`` must not become an invalid line). Anything else (an error,
    extra fields, a body that is not a one-line JSON object) returns None and
    takes the general path. Written for speed: it runs once per record.
    """
    body = record.get("body")
    if type(body) is not str or not record.keys() <= _SPLICED_KEYS:
        return None
    attempt = record.get("attempt")
    if attempt is not None and type(attempt) is not int:
        return None
    error = record.get("error")
    if error is not None and error != "" and error != {}:
        return None
    custom_id = record.get("custom_id")
    if type(custom_id) is not str:
        return None
    text = body if body[:1] == "{" and body[-1:] == "}" else body.strip()
    if text[:1] != "{" or text[-1:] != "}" or "\n" in text or "\r" in text:
        return None
    try:
        _orjson.loads(text)
    except _orjson.JSONDecodeError:
        if not is_json(text):
            return None  # ``{oops}`` spliced in would make the line invalid
    tail = "}" if attempt is None else _TAILS.get(attempt) or f',"attempt":{attempt}}}'
    return '{"custom_id":' + _quote(custom_id) + ',"body":' + text + tail


def joined_record(record: dict[str, Any], request: Any) -> dict[str, Any]:
    """The joined JSONL shape: always ``custom_id``, ``request``, ``response``, ``error``."""
    body = record.get("body")
    out = {
        "custom_id": record.get("custom_id"),
        "request": request,
        "response": None if body is None else decode_body(body),
        "error": record.get("error") if is_failed(record) else None,
    }
    if "attempt" in record:  # merged results: the attempt the record came from
        out["attempt"] = record["attempt"]
    return out


def reply_text(body: Any) -> str:
    """The chat reply's text: text content parts joined; empty for embeddings and failures.

    Reads the v2 shape (``message.content`` parts), the v1 shape (``text``) and
    the OpenAI shape (``choices[0].message.content``). Thinking parts are left out.
    """
    if not isinstance(body, dict):
        return ""
    message = body.get("message")
    if isinstance(message, dict):
        return _content_text(message.get("content"))
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0].get("message")
        if isinstance(first, dict):
            return _content_text(first.get("content"))
    text = body.get("text")
    return text if isinstance(text, str) else ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    if len(content) == 1:  # the usual reply, one text part: no generator to join
        part = content[0]
        if isinstance(part, dict) and part.get("type", "text") == "text":
            text = part.get("text")
            return text if isinstance(text, str) else ""
        return ""
    return "".join(
        part["text"]
        for part in content
        if isinstance(part, dict)
        and part.get("type", "text") == "text"
        and isinstance(part.get("text"), str)
    )


def usage(body: Any) -> tuple[Any, Any]:
    """(input tokens, output tokens): billed units first, then counted tokens, then OpenAI's names."""
    if not isinstance(body, dict):
        return None, None
    holder = body.get("usage") if isinstance(body.get("usage"), dict) else body.get("meta")
    if not isinstance(holder, dict):
        return None, None
    for key in ("billed_units", "tokens"):
        units = holder.get(key)
        if isinstance(units, dict) and ("input_tokens" in units or "output_tokens" in units):
            return units.get("input_tokens"), units.get("output_tokens")
    if "prompt_tokens" in holder or "completion_tokens" in holder:
        return holder.get("prompt_tokens"), holder.get("completion_tokens")
    return holder.get("input_tokens"), holder.get("output_tokens")


def _default(value: Any) -> Any:
    """JSON for what Avro can hold and JSON cannot: bytes, decimals, dates, UUIDs."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_default, allow_nan=False
)


def dumps(value: Any) -> str:
    """Compact UTF-8 JSON; one shared encoder, since building one per record costs a tenth of the run.

    Never ``NaN`` or ``Infinity``, which are not JSON: an Avro double can hold
    them, and such a value is written as the string ``"NaN"``, ``"Infinity"``
    or ``"-Infinity"``.
    """
    try:
        return _ENCODER.encode(value)
    except ValueError:
        return _ENCODER.encode(finite(value))


def finite(value: Any) -> Any:
    """``value`` with every float that JSON cannot hold (NaN, infinities) as a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value
