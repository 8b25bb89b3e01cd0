"""How cbatch writes a moment: UTC with ``Z`` everywhere, or local time with its offset.

One rule for every view (tables, field views, plain lines, the watch log), so two
lines of one run, or the logs of two machines, always compare. ``--local-time``
(or ``CBATCH_LOCAL_TIME=1``) switches every view at once to the machine's time
zone, always with its offset, so a local time is never mistaken for UTC. JSON
keeps the API's own strings, and watch events' ``time`` is always UTC.

The choice is made once per run by the output object (:func:`use_local_time`):
the views are pure functions of an item, and a run has one clock.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

ENV_LOCAL_TIME = "CBATCH_LOCAL_TIME"
_local = False


def local_time_from_env() -> bool:
    return os.environ.get(ENV_LOCAL_TIME, "").strip().lower() not in ("", "0", "false", "no")


def use_local_time(on: bool) -> None:
    """Show every moment in the machine's time zone (with its offset) instead of UTC."""
    global _local
    _local = on


def _zoned(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone() if _local else moment.astimezone(timezone.utc)


def _zone(moment: datetime) -> str:
    if not _local:
        return "Z"
    offset = moment.strftime("%z")  # +0100
    return f"{offset[:3]}:{offset[3:]}" if offset else "Z"


def when(moment: datetime | None) -> str:
    """``2026-11-29 04:21:29Z`` (or ``2026-11-29 05:21:29+01:00``); ``-`` when unknown."""
    if moment is None:
        return "-"
    moment = _zoned(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + _zone(moment)


def iso(moment: datetime | None) -> str:
    """``2026-11-29T04:21:29Z``: one field for scripts (plain output); ``-`` when unknown."""
    if moment is None:
        return "-"
    moment = _zoned(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + _zone(moment)


def clock(moment: datetime) -> str:
    """``04:21:29Z``: the time of day, for the log above a live view."""
    moment = _zoned(moment)
    return moment.strftime("%H:%M:%S") + _zone(moment)
