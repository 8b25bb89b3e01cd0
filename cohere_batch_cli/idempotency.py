"""An idempotency key: what makes a create safe to call again, and what it is bound to.

A program (a notebook cell, an orchestrator's task, a CI step) that may run
twice gives its create a key. The key is bound to the first call's *request*:
the input's fingerprint (SHA-256 of the bytes the check read,
:mod:`.fingerprint`) and every option that reaches a request body or the plan
(the model, the batch's name, a table's prompt, system prompt, schema,
``max_tokens``, ``temperature``, a job's split sizes...), each one a *field*.

The API keeps no idempotency keys of its own (CONTRACT.md), so the key travels
in the names cbatch gives what it makes (:func:`~.naming.keyed_batch_name`):
the **run id**, derived from the key alone, so that any machine finds the run
by name, and the **digest**, a short hash of the fields, so that a machine
with an empty state store still tells the same request from another one.
The fields themselves are kept in the state store, where one exists, to say
which of them differs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

KEY_MAX = 200
"""The longest key taken: a key is hashed into names, never written there, but it is stored."""
RUN_ID_LENGTH = 10
"""Letters and digits of a keyed run's id (a job's id is as long): 50 bits of the key's hash."""
DIGEST_LENGTH = 8
"""Hex digits of a request's digest in the names: 32 bits, to tell one request from another."""
INPUT = "input"
"""The field that holds the input's fingerprint."""


def check_key(key: str) -> str:
    """The key, refused (exit 2) when it is empty, too long, or holds a control character."""
    from .errors import UsageError

    if not key or not key.strip():
        raise UsageError("the idempotency key is empty")
    if len(key) > KEY_MAX:
        raise UsageError(f"the idempotency key is {len(key)} characters; at most {KEY_MAX}")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise UsageError("the idempotency key holds a control character")
    return key


def run_id_of(key: str) -> str:
    """The run id a key names: ten lower-case letters and digits of its SHA-256, a letter first.

    Derived from the key alone (not from the request), so the same key finds
    the same run wherever it is given, whatever it was asked with.
    """
    digest = hashlib.sha256(b"cbatch idempotency key\0" + key.encode()).digest()
    text = base64.b32encode(digest).decode().lower().rstrip("=")
    return "k" + text[: RUN_ID_LENGTH - 1]


@dataclass(frozen=True)
class Keyed:
    """A key bound to one request: its run id, the request's fields, and their digest."""

    key: str
    fields: Mapping[str, str]

    @property
    def run_id(self) -> str:
        return run_id_of(self.key)

    @property
    def digest(self) -> str:
        """The short hash of every field, the input's fingerprint included, that the names carry."""
        text = json.dumps(dict(self.fields), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]

    def fields_json(self) -> str:
        return json.dumps(dict(self.fields), sort_keys=True)


def differences(earlier: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """Each field that differs, as ``model: command-r, now command-a`` (a long value is only named)."""
    lines = []
    for field in sorted(set(earlier) | set(now)):
        before, after = earlier.get(field), now.get(field)
        if before == after:
            continue
        if field == INPUT:
            lines.append(f"input: fingerprint {_short(before)}, now {_short(after)}")
        elif _shown(before) and _shown(after):
            lines.append(f"{field}: {_value(before)}, now {_value(after)}")
        else:
            lines.append(f"{field}: differs")
    return lines


def _short(fingerprint: str | None) -> str:
    return "none" if fingerprint is None else fingerprint.split(":")[-1][:12]


def _shown(value: str | None) -> bool:
    return value is None or len(value) <= 40


def _value(value: str | None) -> str:
    return "not given" if value is None else json.dumps(value)
