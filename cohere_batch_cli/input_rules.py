"""The rules a batch input file must follow, in one place.

Both sides use this module: ``cbatch datasets validate`` checks a file before
anything is uploaded, and the sandbox validates uploads with the same rules, so
a file the local check passes is a file the sandbox accepts, and the problem
messages read the same on both sides. It imports only the standard library.

The rules come from the contract: one JSON object a line, a unique
``custom_id``, a ``body`` holding only the fields the endpoint accepts, and the
model set on the batch rather than in the body.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

import orjson as _orjson

from . import generation_options

_UNPARSED = object()

CHAT_V2_INPUT = "batch-chat-v2-input"
EMBED_V2_INPUT = "batch-embed-v2-input"
LEGACY_CHAT_INPUT = "batch-chat-input"
OPENAI_CHAT_INPUT = "batch-openai-chat-input"
BATCH_INPUT_TYPES = frozenset({CHAT_V2_INPUT, EMBED_V2_INPUT, LEGACY_CHAT_INPUT, OPENAI_CHAT_INPUT})
CHAT_V2_OUTPUT = "batch-chat-v2-output"
EMBED_V2_OUTPUT = "batch-embed-v2-output"

MAX_DATASET_BYTES = 1_500_000_000
"""Cohere's published limit for one dataset (1.5 GB)."""

CHAT_BODY_FIELDS = frozenset(
    {
        "messages",
        "tools",
        "strict_tools",
        "documents",
        "citation_options",
        "response_format",
        "safety_mode",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "k",
        "p",
        "logprobs",
        "tool_choice",
        "thinking",
        "priority",
    }
)
"""Every field of the spec's ``ChatRequestBodyV2`` (bodies.yaml) but ``model`` and ``stream``."""
CLIENT_ONLY_CHAT_FIELDS = frozenset(
    {"max_input_tokens", "reasoning", "thinking_budget", "return_prompt"}
)
"""Fields clients have sent that the spec lacks: accepted, with a warning, never refused."""
RESPONSE_FORMAT_TYPES = frozenset({"text", "json_object"})
SAFETY_MODES = frozenset(generation_options.SAFETY_MODES)
TOOL_CHOICES = frozenset({"REQUIRED", "NONE"})
EMBED_BODY_FIELDS = frozenset(
    {"texts", "images", "inputs", "input_type", "embedding_types", "max_tokens", "truncate"}
)
MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool"})
CONTENT_PART_TYPES = frozenset({"text", "thinking", "image_url"})
_UTF16 = "the file is UTF-16 encoded; save it as UTF-8"
MAX_PROBLEMS = 1000
"""Past this many problems a report stops listing them: nobody reads more."""

_NUMBER_FIELDS = {"temperature", "p", "frequency_penalty", "presence_penalty"}
_INTEGER_FIELDS = {"k", "seed", "max_tokens", "max_input_tokens", "thinking_budget", "priority"}
_BOOLEAN_FIELDS = {"return_prompt", "logprobs", "strict_tools"}
_LIST_FIELDS = {"tools", "documents", "stop_sequences"}
_OBJECT_FIELDS = {"citation_options", "thinking"}
_CHOICES = {"safety_mode": SAFETY_MODES, "tool_choice": TOOL_CHOICES}
_TYPED_FIELDS = frozenset(
    _NUMBER_FIELDS
    | _INTEGER_FIELDS
    | _BOOLEAN_FIELDS
    | _LIST_FIELDS
    | _OBJECT_FIELDS
    | set(_CHOICES)
)
"""Every field :func:`_check_scalars` has a rule for: the others (``messages``) cost one look-up a record."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file; ``line`` is 1-based, 0 for the whole file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def infer_type(record: Any) -> str | None:
    """Guess the dataset type from one record's body, or None when it tells nothing."""
    body = record.get("body") if isinstance(record, dict) else None
    if not isinstance(body, dict):
        return None
    if "messages" in body:
        return CHAT_V2_INPUT
    if {"texts", "images", "inputs"} & body.keys():
        return EMBED_V2_INPUT
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_scalars(body: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    if _TYPED_FIELDS.isdisjoint(body):
        return errors
    for field, value in body.items():
        if field in _NUMBER_FIELDS and not _is_number(value):
            errors.append(f"body.{field} must be a number")
        elif field in _INTEGER_FIELDS and not _is_int(value):
            errors.append(f"body.{field} must be an integer")
        elif field in _BOOLEAN_FIELDS and not isinstance(value, bool):
            errors.append(f"body.{field} must be true or false")
        elif field in _LIST_FIELDS and not isinstance(value, list):
            errors.append(f"body.{field} must be a list")
        elif field in _OBJECT_FIELDS and not isinstance(value, dict):
            errors.append(f"body.{field} must be an object")
        elif field in _CHOICES and value not in _CHOICES[field]:
            errors.append(f"body.{field} must be one of {', '.join(sorted(_CHOICES[field]))}")
    return errors


def _check_response_format(value: Any) -> list[str]:
    """``{"type": "text"}`` or ``{"type": "json_object"}`` with an optional ``json_schema`` object.

    The v2 guide's examples spell the schema's key ``schema``; the SDK and the
    spec say ``json_schema``. Both are read (CONTRACT.md, "Structured output").
    """
    if not isinstance(value, dict):
        return ["body.response_format must be an object"]
    kind = value.get("type")
    if kind not in RESPONSE_FORMAT_TYPES:
        return ["body.response_format.type must be text or json_object"]
    errors = []
    for key in ("json_schema", "schema"):
        if key in value and not isinstance(value[key], dict):
            errors.append(f"body.response_format.{key} must be a JSON Schema object")
        elif key in value and kind == "text":
            errors.append(f"body.response_format.{key} needs type json_object")
    return errors


def _check_content(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return []
    if not isinstance(content, list):
        return [f"{where}.content must be a string or a list of parts"]
    errors = []
    for j, part in enumerate(content):
        part_type = part.get("type") if isinstance(part, dict) else None
        if part_type not in CONTENT_PART_TYPES:
            allowed = ", ".join(sorted(CONTENT_PART_TYPES))
            errors.append(f"{where}.content[{j}].type must be one of {allowed}")
    return errors


def check_chat_body(body: dict[str, Any]) -> list[str]:
    """Problems with a chat request body (an empty list when it is fine)."""
    errors = []
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        errors.append("body.messages must be a non-empty list")
    else:
        for i, message in enumerate(messages):
            if (
                type(message) is dict
                and message.get("role") in MESSAGE_ROLES
                and type(message.get("content")) is str
            ):
                continue  # the usual message, text with a known role: nothing to say
            where = f"body.messages[{i}]"
            if not isinstance(message, dict):
                errors.append(f"{where} must be an object")
                continue
            if message.get("role") not in MESSAGE_ROLES:
                errors.append(f"{where}.role must be one of {', '.join(sorted(MESSAGE_ROLES))}")
            if "content" in message:
                errors.extend(_check_content(message["content"], where))
            elif message.get("role") != "assistant":
                errors.append(f"{where} has no content")
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and not all(isinstance(s, str) for s in stops):
        errors.append("body.stop_sequences must hold only strings")
    if "response_format" in body:
        errors.extend(_check_response_format(body["response_format"]))
    if not _TYPED_FIELDS.isdisjoint(body):  # the usual body (messages alone) has none
        errors.extend(_check_scalars(body))
    return errors


def check_embed_body(body: dict[str, Any]) -> list[str]:
    """Problems with an embed request body (an empty list when it is fine)."""
    if "output_dimension" in body:
        return ["body.output_dimension is not accepted in batch embed datasets"]
    errors = []
    present = [f for f in ("texts", "images", "inputs") if f in body]
    if not present:
        errors.append("body needs one of texts, images or inputs")
    for field in present:
        value = body[field]
        if not isinstance(value, list) or not value:
            errors.append(f"body.{field} must be a non-empty list")
        elif field == "texts" and not all(isinstance(t, str) for t in value):
            errors.append("body.texts must hold only strings")
    if "embedding_types" in body and not isinstance(body["embedding_types"], list):
        errors.append("body.embedding_types must be a list")
    if "max_tokens" in body and not _is_int(body["max_tokens"]):
        errors.append("body.max_tokens must be an integer")
    return errors


def structured_output_problem(body: dict[str, Any]) -> str | None:
    """How a chat body's ``response_format`` breaks Cohere's structured-output rules, or None.

    ``json_object`` with ``documents`` or ``tools``, or a schema (``json_schema``,
    or ``schema`` as the v2 guide writes it) that breaks a rule of
    :mod:`.schema_rules`. A warning for a file, never a refusal: the service has
    the last word, record by record. The sandbox fails such a record with this
    text after ``invalid request: `` (its own wording, docs/sandbox.md).
    """
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_object":
        return None
    if body.get("documents") or body.get("tools"):
        return "response_format is not supported with documents or tools"
    schema = fmt.get("json_schema", fmt.get("schema"))
    if not isinstance(schema, dict):
        return None
    from .schema_rules import first_problem

    found = first_problem(schema)
    return f"response_format.json_schema breaks a rule: {found}" if found else None


_CHAT_ALLOWED = CHAT_BODY_FIELDS | CLIENT_ONLY_CHAT_FIELDS
_ALLOWED = {
    CHAT_V2_INPUT: _CHAT_ALLOWED,
    LEGACY_CHAT_INPUT: _CHAT_ALLOWED,
    EMBED_V2_INPUT: EMBED_BODY_FIELDS,
}
"""Made once: the check asks for a type's fields a record."""


def allowed_body_fields(dataset_type: str) -> frozenset[str] | None:
    """The body fields a type accepts, or None where cbatch does not know the type's rules."""
    return _ALLOWED.get(dataset_type)


def check_record(record: Any, dataset_type: str) -> list[str]:
    """Problems with one parsed record for a dataset type, without the custom_id uniqueness."""
    if not isinstance(record, dict):
        return ["each line must be a JSON object"]
    errors = []
    custom_id = record.get("custom_id")
    if custom_id is None:
        errors.append("missing custom_id")
    elif not isinstance(custom_id, str) or not custom_id.strip():
        errors.append("custom_id must be a non-empty string")
    body = record.get("body")
    if body is None:
        errors.append("missing body")
        return errors
    if not isinstance(body, dict):
        errors.append("body must be a JSON object")
        return errors
    allowed = _ALLOWED.get(dataset_type)
    if allowed is None:
        return errors
    if not allowed.issuperset(body):  # the usual body has only fields its type accepts
        unknown = sorted(set(body) - allowed)
        if "model" in unknown:
            errors.append("body.model is not allowed: the model is set on the batch")
            unknown.remove("model")
        if unknown and not (dataset_type == EMBED_V2_INPUT and unknown == ["output_dimension"]):
            errors.append(f"body has fields {dataset_type} does not accept: {', '.join(unknown)}")
    if dataset_type == EMBED_V2_INPUT:
        errors.extend(check_embed_body(body))
    else:
        errors.extend(check_chat_body(body))
    return errors


class SeenIds(Protocol):
    """Where a check notes each ``custom_id`` (its 64-bit hash) and the line it was on."""

    def add(self, digest: int, line: int) -> int | None:
        """The line ``digest`` was first on when it is a repeat known now; else None."""


class _IdsInMemory:
    """Every id in a dict: the sandbox's check, and small files."""

    def __init__(self) -> None:
        self._first: dict[int, int] = {}

    def add(self, digest: int, line: int) -> int | None:
        seen = self._first.setdefault(digest, line)
        return seen if seen != line else None


def id_digest(custom_id: str, _blake2b: Any = hashlib.blake2b, _int: Any = int.from_bytes) -> int:
    """The 64-bit hash a check keeps of a ``custom_id`` (BLAKE2b-64, big-endian)."""
    return _int(_blake2b(custom_id.encode(), digest_size=8).digest(), "big")


def duplicate_message(custom_id: str, first: int, where: str = "line") -> str:
    """The one wording of a repeated ``custom_id``; ``where`` says what ``first`` counts: a file's
    lines, or a table's rows (:func:`~cohere_batch_cli.tasks.table_prompts.render_requests`)."""
    return f"duplicate custom_id {json.dumps(custom_id)} (first on {where} {first})"


class InputChecker:
    """Checks a JSONL file line by line in constant memory per line.

    Feed it every raw line with its 1-based number; it keeps a 64-bit hash per
    ``custom_id`` seen, with its line, in ``ids`` (in memory by default; the
    local check gives one that spills to disk, so ten million records cost
    the same memory as ten thousand) and the count of bytes and rows. When
    ``dataset_type`` is None the type is inferred from the first record whose
    body tells it.
    """

    def __init__(self, dataset_type: str | None = None, ids: SeenIds | None = None) -> None:
        self.dataset_type = dataset_type
        self.rows = 0
        self.size_bytes = 0
        self.problem_count = 0
        self.ids: SeenIds = ids if ids is not None else _IdsInMemory()
        self.client_only: dict[str, list[int]] = {}
        """Each field of CLIENT_ONLY_CHAT_FIELDS seen: [its first line, how many records use it]."""
        self.structured: dict[str, list[int]] = {}
        """Each way a record's response_format breaks Cohere's rules: [its first line, how many]."""

    def feed(self, line_no: int, raw: bytes) -> list[Problem]:
        """Check one raw line (with or without its line ending)."""
        self.size_bytes += len(raw)
        if line_no == 1:
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                self.rows += 1
                return self._count([Problem(line_no, _UTF16)])
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        stripped = raw.strip()
        if not stripped:
            return []
        self.rows += 1
        try:
            # orjson first (three times as fast on a 4 KB record); what it refuses is read again by
            # the standard library, whose verdict and messages stay the rule (orjson takes less).
            record = _orjson.loads(stripped)
        except ValueError:
            record = _UNPARSED
        try:
            if record is _UNPARSED:
                record = json.loads(stripped.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            return self._count([Problem(line_no, "not valid UTF-8 text")])
        except RecursionError:
            return self._count([Problem(line_no, "invalid JSON: nested too deeply")])
        except ValueError as exc:
            return self._count([Problem(line_no, f"invalid JSON: {_short_json_error(exc)}")])
        if self.dataset_type is None:
            self.dataset_type = infer_type(record)
        messages = check_record(record, self.dataset_type or CHAT_V2_INPUT)
        problems = [Problem(line_no, m) for m in messages] if messages else []
        if not isinstance(record, dict):
            return self._count(problems)
        body = record.get("body")
        if isinstance(body, dict):
            if not CLIENT_ONLY_CHAT_FIELDS.isdisjoint(body):
                for name in CLIENT_ONLY_CHAT_FIELDS.intersection(body):
                    self.client_only.setdefault(name, [line_no, 0])[1] += 1
            if "response_format" in body and not messages:
                broken = structured_output_problem(body)
                if broken is not None:
                    self.structured.setdefault(broken, [line_no, 0])[1] += 1
        custom_id = record.get("custom_id")
        if isinstance(custom_id, str) and custom_id.strip():
            first = self.ids.add(id_digest(custom_id), line_no)
            if first is not None:
                problems.append(Problem(line_no, duplicate_message(custom_id, first)))
        if problems:
            self.problem_count += len(problems)
        return problems

    def notes(self) -> list[str]:
        """Warnings about records that pass: fields the spec lacks, structured output Cohere refuses."""
        return [
            f"{count:,} record{'' if count == 1 else 's'} (first on line {first}) "
            f"set body.{name}, a field the API's description does not list: kept as written, "
            "and the service may ignore it"
            for name, (first, count) in sorted(self.client_only.items())
        ] + [
            f"{count:,} record{'' if count == 1 else 's'} (first on line {first}): {why}; "
            "Cohere documents this as unsupported, and the service may fail "
            f"{'it' if count == 1 else 'them'}"
            for why, (first, count) in sorted(self.structured.items(), key=lambda kv: kv[1])
        ]

    def finish(self) -> list[Problem]:
        """Problems of the file as a whole, once every line was fed."""
        problems = []
        if self.rows == 0:
            problems.append(Problem(0, "the file holds no records"))
        if self.size_bytes > MAX_DATASET_BYTES:
            problems.append(
                Problem(0, f"the file is {self.size_bytes:,} bytes, over the 1.5 GB dataset limit")
            )
        return self._count(problems)

    def _count(self, problems: list[Problem]) -> list[Problem]:
        if problems:
            self.problem_count += len(problems)
        return problems


def _reject_constant(name: str) -> Any:
    """NaN and Infinity: Python's json reads them, but they are not JSON and the API refuses them."""
    raise ValueError(f"{name} is not valid JSON")


def _short_json_error(exc: ValueError) -> str:
    """json's message without the 'line 1 column N (char N)' noise that repeats the position."""
    msg = getattr(exc, "msg", None)
    col = getattr(exc, "colno", None)
    return f"{msg} at column {col}" if msg and col else str(exc)
