"""Batch and dataset ids for shell completion, from a short-lived cache.

Completion must answer in a blink and must never call the API (a Tab press
that waits on the network, or prompts, is worse than none). So ``cbatch
list`` and ``cbatch datasets list`` remember the ids they showed, and
completion offers them for ten minutes. Completion only: a name or a prefix
given to a command is always resolved against the API
(:func:`cohere_batch_cli.engine.resolve_ids`), because a listing ten minutes old
does not know the batch made a minute ago, and picking the wrong batch to
cancel cannot be undone.

Each cache belongs to one base URL and one profile (a *scope*,
:func:`cohere_batch_cli.engine.scope_of`): ids listed on a sandbox are never
offered for the real service. The cache holds ids, names and statuses only,
never a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MAX_IDS = 200
FRESH_SECONDS = 600.0
FILES = {"batch": "batch-ids", "dataset": "dataset-ids"}

Entry = tuple[str, str, str]
"""(id, name, status or validation status)."""


def cache_path(kind: str, scope: str) -> Path:
    from platformdirs import user_cache_dir

    digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
    return Path(user_cache_dir("cbatch", appauthor=False)) / f"{FILES[kind]}-{digest}.json"


def remember(entries: Iterable[Entry], kind: str, scope: str) -> None:
    """Store (id, name, status) of what was just listed; failures are ignored."""
    rows = [list(e) for e in entries][:MAX_IDS]
    if not rows:
        return
    try:
        from ..engine import write_text_atomic

        path = cache_path(kind, scope)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = json.dumps({"saved_at": time.time(), "scope": scope, "items": rows})
        write_text_atomic(path, payload, mode=0o600)
    except OSError:
        pass  # a cache is a convenience: a read-only home must not break list


def cached(kind: str, scope: str) -> list[Entry]:
    """What the last listing in this scope showed, if it is fresh (else nothing)."""
    try:
        path = cache_path(kind, scope)
        if time.time() - os.path.getmtime(path) > FRESH_SECONDS:
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("scope") != scope:
        return []
    rows = data.get("items", [])
    return [
        (str(row[0]), str(row[1]), str(row[2]))
        for row in rows
        if isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)
    ]


def scope_for_completion(params: dict[str, Any]) -> str | None:
    """The scope a Tab press is in, from the global options typed so far, the environment
    and the config file; None when it cannot be told (then nothing is offered)."""
    try:
        from ..engine import resolve

        settings = resolve(profile=params.get("profile"), base_url_flag=params.get("base_url"))
    except Exception:  # a bad config file: completion offers nothing, says nothing
        return None
    from ..engine import scope_of

    return scope_of(settings.base_url.value or "", settings.profile)


def complete(kind: str, params: dict[str, Any], incomplete: str) -> list[tuple[str, str]]:
    """Ids starting with what was typed, each with its name and status as help."""
    scope = scope_for_completion(params)
    if scope is None:
        return []
    return [
        (i, f"{name} ({status})")
        for i, name, status in cached(kind, scope)
        if i.startswith(incomplete)
    ]
