"""Batch ids for shell completion, from a short-lived cache of the last listing.

Completion must answer in a blink and must never call the API (a Tab press
that waits on the network, or prompts, is worse than none). So ``cbatch
list`` remembers the ids it showed, and completion offers them for ten
minutes. The cache holds ids and names only, never a key.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

MAX_IDS = 200
FRESH_SECONDS = 600.0


def cache_path() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cbatch", appauthor=False)) / "batch-ids.json"


def remember(batches: Iterable[tuple[str, str, str]]) -> None:
    """Store (id, name, status label) of the batches just listed; failures are ignored."""
    entries = [list(b) for b in batches][:MAX_IDS]
    if not entries:
        return
    try:
        from .atomic import write_text_atomic

        path = cache_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = json.dumps({"saved_at": time.time(), "batches": entries})
        write_text_atomic(path, payload, mode=0o600)
    except OSError:
        pass  # a cache is a convenience: a read-only home must not break list


def complete_batch_id(incomplete: str) -> list[tuple[str, str]]:
    """Ids starting with what was typed, each with its name and status as help."""
    try:
        path = cache_path()
        if time.time() - os.path.getmtime(path) > FRESH_SECONDS:
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [
        (batch_id, f"{name} ({status})")
        for batch_id, name, status in data.get("batches", [])
        if isinstance(batch_id, str) and batch_id.startswith(incomplete)
    ]
