"""Time stamps and identifiers in the shapes the real API uses.

Times are kept as integer microseconds since the epoch so that SQLite compares them
exactly (keyset paging depends on it) and rendered as RFC 3339 with microseconds and
``Z``, as Cohere's batches API does.
"""

from __future__ import annotations

import re
import secrets
import string
import time
import uuid
from datetime import datetime, timezone

_ALPHABET = string.ascii_lowercase + string.digits
_UNSAFE = re.compile(r"[^a-z0-9]+")


def now_us() -> int:
    """Current time in integer microseconds since the epoch."""
    return time.time_ns() // 1000


def rfc3339(us: int) -> str:
    """Render microseconds since the epoch as ``2025-03-05T14:59:25.438936Z``."""
    dt = datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 date-time (``Z`` or an offset) into microseconds; ValueError if bad."""
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1_000_000)


def random_suffix(n: int = 6) -> str:
    """Lower-case letters and digits, like the tail of Cohere dataset ids."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def slug(name: str) -> str:
    """A name made safe for an id that sits in a URL path."""
    return _UNSAFE.sub("-", name.lower()).strip("-")[:48] or "dataset"


def new_uuid() -> str:
    """A random UUID4 string, the shape of batch, creator and org ids."""
    return str(uuid.uuid4())
