"""Durations and sizes: the one place they are read from text and written back as text.

Options (``--timeout 1h30m``, ``--max-bytes-per-batch 800MB``), settings
(``CBATCH_DATASET_TTL=30d``) and messages ("about 4 min left", "1.5 GB") all
go through here, so a spelling one command accepts is accepted by every
other, and a number is written one way on every screen. Sizes are decimal
(1 GB is 10^9 bytes) as Cohere's limits are, except where a limit is a power
of two and reads best as one (:func:`binary_size`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, None: 1.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)(b|kb|mb|gb|tb)?")
_SIZE_UNITS = {None: 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


def parse_duration(text: str | float) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``2h``, ``1h30m``, ``30d`` or ``500ms``.

    A bare number is seconds, as in ``sleep``; spaces and ``_`` are ignored.
    Raises ValueError for anything else, or a duration that is not above zero.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        total = float(text)
    else:
        compact = str(text).strip().lower().replace(" ", "").replace("_", "")
        pos, total = 0, 0.0
        while pos < len(compact):
            match = _DURATION_PART.match(compact, pos)
            if match is None or (match.group(2) is None and pos > 0):
                break  # "15m3": a number without a unit only stands alone
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
            if match.group(2) is None and pos < len(compact):
                break
        if not compact or pos != len(compact):
            raise ValueError(f"{text!r} is not a duration; use e.g. 90, 90s, 15m or 2h")
    if total <= 0:
        raise ValueError("a duration must be more than zero")
    return total


def time_span(seconds: float) -> str:
    """A wait or a time left, as a person reads it: ``45 s``, ``16 min``, ``1.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def lifetime(seconds: float) -> str:
    """A lifetime in words, exact when it is whole: ``30 days``, ``12 hours``, ``2 s``."""
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        count = seconds / size
        if count >= 1 and count == int(count):
            return f"{int(count)} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:g} s"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 record``, ``1,234 records``: a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def parse_size(value: str | float) -> int:
    """Bytes from ``1500000000``, ``1_500_000_000``, ``1.5GB`` or ``800 MB`` (decimal units, as Cohere's).

    Raises ValueError for anything else, or a size that is not above zero.
    """
    text = str(value).strip().lower().replace("_", "").replace(",", "").replace(" ", "")
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{value!r} is not a size; use bytes, or e.g. 1.5GB or 800MB")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2) or None])
    if size <= 0:
        raise ValueError("a size must be more than zero")
    return size


def human_bytes(size: int | None) -> str:
    """A size at a glance: ``812 B``, ``1.5 MB``, ``1.2 GB`` (``-`` when unknown)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover - the loop always returns


def exact_bytes(size: int) -> str:
    """A limit to the byte, then in words: ``1,500,000,000 bytes (1.5 GB)``."""
    words = (
        f" ({size / 1e9:g} GB)"
        if size >= 10**9
        else f" ({size / 1e6:g} MB)"
        if size >= 10**6
        else ""
    )
    return f"{size:,} bytes{words}"


def binary_size(size: int) -> str:
    """A power-of-two limit as it was set: ``1 MiB``, ``64 KiB``; else ``1,234 bytes``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size:,} bytes"


def parse_moment(text: str, now: datetime) -> datetime:
    """A moment from ``2h`` or ``3d`` (that long before ``now``), ``2026-12-01`` (midnight
    UTC) or ``2026-12-01T09:30`` (UTC unless an offset is given, as the API's times are).

    Raises ValueError for anything else.
    """
    value = str(text).strip()
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (2h, 3d) nor a date or time (2026-12-01, 2026-12-01T09:30)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
