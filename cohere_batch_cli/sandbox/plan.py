"""What happens to each record of one batch, decided once when the batch starts.

A plan holds, per record in input order, its outcome (succeeded, failed, or silently
missing), why it failed, and its billed tokens. The worker advances a batch by summing
slices of it (O(records advanced), not O(batch)), and the output writer renders each
record from it. It is saved beside the batch, so a restarted sandbox keeps the counts it
has already shown even if its settings changed.

Every decision is a hash of the seed (:attr:`SandboxSettings.seed`, or the data
directory's own) with:

- the batch's sequence number and the record's index, for *transient* failures and
  *missing* records: a record sent again in a new batch is decided afresh, so it
  eventually succeeds;
- the request body, for *permanent* failures: the same body fails in every batch.

Records over the model's context length fail in every batch too (chat always, embed
only when ``truncate`` is ``NONE``), as does the ``[[sandbox:fail]]`` marker, and a
structured request whose schema breaks Cohere's rules (:mod:`.structured`).

``--invalid-output-rate`` is drawn like transient failures, afresh each batch: the record
succeeds, but its structured answer breaks its schema or stops at ``MAX_TOKENS``
mid-object (the kind is kept in ``error`` beside the ``OK`` outcome).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import structured, usage
from .models import context_length, embed_dimension, resolve
from .settings import SandboxSettings

OK, FAILED, MISSING = 0, 1, 2

# error kinds
NO_ERROR = 0
MARKER = 1
NO_BODY = 2
CONTEXT = 3
BAD_EMBEDDING_TYPES = 4
TRANSIENT_INTERNAL = 5
TRANSIENT_TIMEOUT = 6
PERMANENT_INVALID = 7
PERMANENT_TOO_LONG = 8
SCHEMA_REFUSED = 9
# what --invalid-output-rate does to a record that succeeds
ANSWER_BROKEN = 10
ANSWER_CUT = 11

MARKER_MESSAGE = "sandbox: failure requested by [[sandbox:fail]] marker"
_INVALID_CHAT = (
    "invalid request: message must be at least 1 token long or tool results must be specified."
)
_INVALID_EMBED = "invalid request: valid input_type must be provided with the provided model"
_ID_NAMESPACE = uuid.UUID("0b6a4c52-3f1e-4d8e-9a39-6f4f2f1c9e27")
PLAN_FILE = "plan.bin"
_ARRAYS = (("outcome", "b"), ("error", "b"), ("param", "q"), ("tin", "q"), ("tout", "q"))


def too_many_tokens(excess: int, limit: int) -> str:
    """The API's wording for a request over the model's context length."""
    return (
        f"too many tokens: size limit exceeded by {excess} tokens. "
        f"Try using shorter or fewer inputs. The limit for this model is {limit} tokens."
    )


def draw(*parts: object) -> float:
    """A uniform number in [0, 1) fixed by ``parts``."""
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


def _bits(*parts: object) -> int:
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


@dataclass
class Plan:
    key: str
    """Seed and batch sequence number: what the shuffle and the decisions hash."""
    kind: str
    model: str
    context_length: int
    dimension: int
    outcome: array[int]
    error: array[int]
    param: array[int]
    tin: array[int]
    tout: array[int]

    @property
    def records(self) -> int:
        return len(self.outcome)

    def totals(self, start: int, end: int) -> tuple[int, int, int, int]:
        """(succeeded, failed, input tokens, output tokens) of records [start, end)."""
        outcome = self.outcome[start:end]
        return (
            outcome.count(OK),
            outcome.count(FAILED),
            sum(self.tin[start:end]),
            sum(self.tout[start:end]),
        )

    def message(self, index: int, body: Any = None) -> str:
        """The error text of a failed record (its request ``body`` words a refused schema)."""
        kind, param = self.error[index], self.param[index]
        if kind == MARKER:
            return MARKER_MESSAGE
        if kind == SCHEMA_REFUSED:
            refused = structured.refusal(body) if isinstance(body, dict) else None
            return refused or "invalid request: response_format cannot be used"
        if kind == NO_BODY:
            return "invalid request: the record has no request body"
        if kind == CONTEXT:  # the record's own limit (an embed max_tokens can lower it) and excess
            return too_many_tokens(param & 0xFFFFFFFF, param >> 32)
        if kind == PERMANENT_TOO_LONG:
            return too_many_tokens(param, self.context_length)
        if kind == BAD_EMBEDDING_TYPES:
            return f"invalid request: embedding_types must be one of {', '.join(usage.EMBEDDING_TYPES)}"
        if kind == TRANSIENT_INTERNAL:
            ref = uuid.uuid5(_ID_NAMESPACE, f"{self.key}/{param}")
            return f"internal server error, this has been reported to our developers. id {ref}"
        if kind == TRANSIENT_TIMEOUT:
            return "request timed out"
        if kind == PERMANENT_INVALID:
            return _INVALID_EMBED if self.kind == "embed" else _INVALID_CHAT
        return "internal server error"

    # -- persistence --------------------------------------------------------------------

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"key": self.key, "kind": self.kind, "model": self.model,
                  "context_length": self.context_length, "dimension": self.dimension,
                  "records": self.records}  # fmt: skip
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(json.dumps(header).encode() + b"\n")
            for name, _ in _ARRAYS:
                getattr(self, name).tofile(fh)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Plan:
        with open(path, "rb") as fh:
            header = json.loads(fh.readline())
            n = header["records"]
            arrays = {}
            for name, code in _ARRAYS:
                values = array(code)
                values.fromfile(fh, n)
                arrays[name] = values
        return cls(header["key"], header["kind"], header["model"], header["context_length"],
                   header["dimension"], **arrays)  # fmt: skip


def build(
    facts_path: Path, kind: str, model_name: str, key: str, settings: SandboxSettings
) -> Plan:
    """Decide every record of a batch from its input dataset's facts (``facts.jsonl``)."""
    model = resolve(model_name, kind)
    limit = context_length(model, settings)
    plan = Plan(key, kind, model_name, limit, embed_dimension(model, settings) if kind == "embed" else 0,
                *(array(code) for _, code in _ARRAYS))  # fmt: skip
    s = settings
    with open(facts_path, "rb") as fh:
        for index, raw in enumerate(fh):
            if index % 512 == 511:
                time.sleep(0)  # let the HTTP thread take the GIL now and then
            state, error, param, tin, tout = _decide(json.loads(raw), index, key, limit, s)
            plan.outcome.append(state)
            plan.error.append(error)
            plan.param.append(param)
            plan.tin.append(tin if state == OK else 0)
            plan.tout.append(tout if state == OK else 0)
    return plan


def _context(excess: int, limit: int) -> int:
    return (limit << 32) | min(excess, 0xFFFFFFFF)


def _decide(
    line: list[Any], index: int, key: str, limit: int, s: SandboxSettings
) -> tuple[int, int, int, int, int]:
    """(outcome, error kind, parameter, input tokens, output tokens) of one record.

    The parameter is the error's detail for a failure, and for a chat success the reply's
    whole length, so the writer knows without tokenizing whether ``max_tokens`` cut it.
    """
    seed = key.split(":", 1)[0]
    if s.missing_rate and draw(key, index, "missing") < s.missing_rate:
        return MISSING, NO_ERROR, 0, 0, 0
    _, digest, facts = usage.parse_facts(line)
    if facts is None:
        return FAILED, NO_BODY, 0, 0, 0
    if facts.marker:
        return FAILED, MARKER, 0, 0, 0
    if isinstance(facts, usage.ChatFacts) and facts.structured == usage.REFUSED:
        return FAILED, SCHEMA_REFUSED, 0, 0, 0
    if s.permanent_fail_rate and draw(seed, digest, "permanent") < s.permanent_fail_rate:
        if draw(seed, digest, "which") < 0.5:
            return FAILED, PERMANENT_INVALID, 0, 0, 0
        return FAILED, PERMANENT_TOO_LONG, 1 + _bits(seed, digest, "excess") % 20000, 0, 0
    if isinstance(facts, usage.ChatFacts):
        tin, tout = usage.chat_usage(facts, s.chat_request_overhead, s.chat_message_overhead)
        if tin > limit:
            return FAILED, CONTEXT, _context(tin - limit, limit), 0, 0
    else:
        if facts.bad_types:
            return FAILED, BAD_EMBEDDING_TYPES, 0, 0, 0
        tin, excess = usage.embed_usage(facts, limit)
        tout = 0
        if excess and facts.truncate_none:
            return FAILED, CONTEXT, _context(excess, usage.embed_limit(facts, limit)), 0, 0
    if s.transient_fail_rate and draw(key, index, "transient") < s.transient_fail_rate:
        if draw(key, index, "which") < 0.5:
            return FAILED, TRANSIENT_INTERNAL, _bits(key, index, "ref"), 0, 0
        return FAILED, TRANSIENT_TIMEOUT, 0, 0, 0
    full = facts.reply_tokens if isinstance(facts, usage.ChatFacts) else 0
    if (
        s.invalid_output_rate
        and isinstance(facts, usage.ChatFacts)
        and facts.structured == usage.STRUCTURED
        and draw(key, index, "invalid") < s.invalid_output_rate
    ):
        if draw(key, index, "invalid-which") < 0.5:
            broken = facts.broken_tokens
            return OK, ANSWER_BROKEN, broken, tin, min(broken, facts.max_tokens or broken)
        return OK, ANSWER_CUT, full, tin, max(1, tout // 2)
    return OK, NO_ERROR, full, tin, tout
