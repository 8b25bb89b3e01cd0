"""Batch and dataset ids for shell completion and short ids, from a short-lived cache.

Completion must answer in a blink and must never call the API (a Tab press
that waits on the network, or prompts, is worse than none). So ``cbatch
list`` and ``cbatch datasets list`` remember the ids they showed, and
completion offers them for ten minutes; the resolver of short ids and names
(:mod:`cohere_batch_cli.tasks.resolving`) looks here before it lists. The
cache holds ids, names and statuses only, never a key.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

MAX_IDS = 200
FRESH_SECONDS = 600.0
FILES = {"batch": "batch-ids.json", "dataset": "dataset-ids.json"}

Entry = tuple[str, str, str]
"""(id, name, status or validation status)."""


def cache_path(kind: str = "batch") -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cbatch", appauthor=False)) / FILES[kind]


def remember(entries: Iterable[Entry], kind: str = "batch") -> None:
    """Store (id, name, status) of what was just listed; failures are ignored."""
    rows = [list(e) for e in entries][:MAX_IDS]
    if not rows:
        return
    try:
        from .atomic import write_text_atomic

        path = cache_path(kind)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = json.dumps(
            {"saved_at": time.time(), "batches" if kind == "batch" else "items": rows}
        )
        write_text_atomic(path, payload, mode=0o600)
    except OSError:
        pass  # a cache is a convenience: a read-only home must not break list


def cached(kind: str = "batch") -> list[Entry]:
    """What the last listing showed, if it is fresh (else nothing)."""
    try:
        path = cache_path(kind)
        if time.time() - os.path.getmtime(path) > FRESH_SECONDS:
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    rows = data.get("batches" if kind == "batch" else "items", []) if isinstance(data, dict) else []
    return [
        (str(row[0]), str(row[1]), str(row[2]))
        for row in rows
        if isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)
    ]


def complete_batch_id(incomplete: str) -> list[tuple[str, str]]:
    """Ids starting with what was typed, each with its name and status as help."""
    return [
        (i, f"{name} ({status})") for i, name, status in cached("batch") if i.startswith(incomplete)
    ]


def complete_dataset_id(incomplete: str) -> list[tuple[str, str]]:
    """Dataset ids starting with what was typed, each with its name and validation status."""
    return [
        (i, f"{name} ({status})")
        for i, name, status in cached("dataset")
        if i.startswith(incomplete)
    ]
