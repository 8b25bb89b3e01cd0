"""The one clock rule: how a moment is compared with the API's ``created_at`` timestamps.

Clocks differ: this machine's may run fast or slow, a job may be attached on
another machine, and the API stamps what it makes with its own clock. Every
question of the form "was this dataset or batch made by the step begun at
moment M?" is answered here, and nowhere else:

- a moment read from the API's own clock (the ``Date`` of one of its answers,
  :func:`server_moment`) is exact but for the answer's latency: it is allowed
  :data:`LATENCY` seconds;
- a moment of a machine's own clock (a step's ``started_at`` written to the
  state store, a job's creation) may be off by minutes: it is allowed
  :data:`SLACK` seconds, either way.

Names make the match (a retry's dataset, a job's part carry their root and
attempt), so a wide window never picks up something that is not the step's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._httpx import httpx

SLACK = 300.0
"""Seconds a machine's clock may be off from the API's (a clock 60 s fast is well within)."""
LATENCY = 5.0
"""Seconds between the API stamping something and its ``Date`` on an answer."""


def not_before(moment: float, *, server: bool = False) -> float:
    """The earliest API timestamp that can belong to something begun at ``moment``.

    ``server``: the moment was read from the API's own clock (:func:`server_moment`).
    """
    return moment - (LATENCY if server else SLACK)


def server_moment(response: httpx.Response) -> float:
    """The API's own time, from an answer's ``Date`` (this machine's, when it has none)."""
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError):
        return time.time()
