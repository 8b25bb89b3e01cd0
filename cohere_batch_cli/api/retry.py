"""When and how long to wait before trying a request again.

The rules follow Cohere's own SDK so cbatch behaves as users already expect:
retry 408, 409, 429 and every 5xx and failed connections, with exponential
backoff and full jitter, honouring ``retry-after-ms``, ``Retry-After`` and
``X-RateLimit-Reset`` before its own schedule. Unlike the SDK, every retry loop
is also bounded in total time, so a CI step can never hang on a dead API.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Mapping

RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and for how long a request may be retried.

    ``retries`` counts the attempts after the first; ``max_total`` bounds the
    whole loop, waiting included: a wait that would pass it ends the loop.
    """

    retries: int = 4
    initial: float = 1.0
    maximum: float = 60.0
    max_total: float = 120.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``attempt`` (1-based) when the server named none.

        Exponential with jitter between half and all of the step, so many
        clients that failed together do not retry together.
        """
        step = min(self.maximum, self.initial * (2 ** (attempt - 1)))
        return step * (0.5 + 0.5 * (rng or random).random())


def server_requested_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait the server asked for, in seconds, or None when it named none.

    Checked in the SDK's order: ``retry-after-ms``, then ``Retry-After`` (seconds
    or an HTTP date), then ``X-RateLimit-Reset`` (seconds from now, or a Unix
    time when it is larger than a day).
    """
    now = time.time() if now is None else now
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    after = headers.get("retry-after")
    if after is not None:
        try:
            return max(0.0, float(after))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(after).timestamp() - now)
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            value = float(reset)
        except ValueError:
            return None
        return max(0.0, value - now if value > 86_400 else value)
    return None
