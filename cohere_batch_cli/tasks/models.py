"""Model names checked against ``GET /v1/models`` before anything is sent.

``create --dataset ds --model comand-r`` made a batch that could only fail. The
list of models answers most of it: a name the list has is fine (a deprecated
one earns a warning); a name it lacks with a listed name close to it is a
likely typo, refused with the suggestion (exit 2); a name it lacks with nothing
close is a warning only, because batch-only models such as ``batch-embed-v4``
may be missing from the list.

Whether a model predates Cohere's structured output with a schema is told by
its name (:func:`predates_json_schema`): the list says nothing of a model's age.

The list is kept briefly in the user cache folder, one file per base URL and
profile, so a script creating many batches asks once. The check never stands
in the way: a list that cannot be had (an outage, an old server) is one
attempt, not retried, and the command goes on unchecked; the create call
itself has the last word.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from .reporting import Reporter

FRESH_SECONDS = 300.0
"""How long a fetched list is used before it is asked for again."""
CLOSE = 0.8
"""How alike (difflib's ratio) a listed name must be to be taken for the one meant."""


def check_model(client: CohereClient, name: str, scope: str, reporter: Reporter) -> None:
    """Refuse a likely typo of a listed model (exit 2); warn of an unlisted or deprecated one."""
    listed = models_of(client, scope, reporter)
    if listed is None:
        return
    if name in listed:
        if listed[name]:
            reporter.warn(f"model {name!r} is deprecated; see the current ones: GET /v1/models")
        return
    close = difflib.get_close_matches(name, list(listed), n=1, cutoff=CLOSE)
    if close:
        raise UsageError(f"the API lists no model {name!r}; did you mean {close[0]!r}?")
    reporter.warn(
        f"the API lists no model {name!r}; sending it anyway (batch-only models such as "
        "batch-embed-v4 may be missing from the list)"
    )


_UNDATED_OLD = frozenset(
    {
        "command",
        "command-light",
        "command-nightly",
        "command-light-nightly",
        "command-r",
        "command-r-plus",
    }
)
"""Command models named without a date that came before Command R 08-2024 (``command-r`` and
``command-r-plus`` are the 03-2024 and 04-2024 releases under their first names)."""
_DATED = re.compile(r"^(command(?:-[a-z0-9+]+)*)-(\d{2})-(\d{4})$")
JSON_SCHEMA_SINCE = (2024, 8)
"""Command R 08-2024: the oldest model Cohere's guide lists for ``response_format`` with a schema."""


def predates_json_schema(name: str) -> bool:
    """Whether ``name`` is a Command model older than Command R 08-2024 (``command-r-03-2024``).

    Read from the name alone, the only place a model's age shows: the
    undated first names (``command``, ``command-light``, ``command-r``,
    ``command-r-plus``) and any ``command-...-MM-YYYY`` before 08-2024. Other
    names (a fine-tune, an unknown family) are not judged.
    """
    if name in _UNDATED_OLD:
        return True
    match = _DATED.match(name)
    if match is None:
        return False
    return (int(match[3]), int(match[2])) < JSON_SCHEMA_SINCE


def models_of(client: CohereClient, scope: str, reporter: Reporter) -> dict[str, bool] | None:
    """Every listed model name and whether it is deprecated: from the cache, else one listing."""
    path = _cache_path(scope)
    cached = _read(path, scope)
    if cached is not None:
        return cached
    from ..api.errors import CohereAPIError
    from ..api.retry import RetryPolicy

    try:
        once = client.with_retry(RetryPolicy.for_polls(0))
        listed = {model.name: model.is_deprecated for model in once.list_models() if model.name}
    except CohereAPIError as exc:
        reporter.debug(f"the model list could not be had ({exc}); the model name is not checked")
        return None
    if not listed:
        return None
    _write(path, scope, listed)
    return listed


def _cache_path(scope: str) -> Path:
    from platformdirs import user_cache_dir

    digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
    return Path(user_cache_dir("cbatch", appauthor=False)) / f"models-{digest}.json"


def _read(path: Path, scope: str) -> dict[str, bool] | None:
    try:
        if time.time() - os.path.getmtime(path) > FRESH_SECONDS:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("scope") != scope:
        return None
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        return None
    return {str(k): v is True for k, v in models.items()}


def _write(path: Path, scope: str, models: dict[str, bool]) -> None:
    from ..atomic import write_text_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = json.dumps({"saved_at": time.time(), "scope": scope, "models": models})
        write_text_atomic(path, payload, mode=0o600)
    except OSError:
        pass  # a cache is a convenience: a read-only home must not stop a create
