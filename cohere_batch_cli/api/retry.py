"""When and how long to wait before trying again: the one retry policy.

The rules follow Cohere's own SDK so cbatch behaves as users already expect:
retry 408, 409, 429 and every 5xx and failed connections, with exponential
backoff and jitter, honouring ``retry-after-ms``, ``Retry-After`` and
``X-RateLimit-Reset`` before its own schedule. Unlike the SDK, every retry loop
is also bounded in total time, so a CI step can never hang on a dead API.

Three loops use it, each with its own constructor: API calls
(:meth:`RetryPolicy.from_env`), the quick retries of a watch poll
(:meth:`RetryPolicy.for_polls`) and part downloads
(:meth:`RetryPolicy.for_parts`). The watch engine's outage backoff uses
:meth:`RetryPolicy.step`, the one exponential formula, with its own pacing
jitter.

``CBATCH_RETRY_BASE`` (seconds of the first backoff) is read once per process,
the first time a policy is built from the environment; tests set it before
the process starts. Code that changes it later, in the same process, calls
:meth:`RetryPolicy.reset_env` so the next policy reads it again.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache

RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
"""Statuses an API call is retried on (the SDK's list)."""

PART_RETRYABLE_STATUSES = RETRYABLE_STATUSES - {409}
"""Statuses a part download is retried on: storage has no conflicting writes to wait out."""

ENV_RETRY_BASE = "CBATCH_RETRY_BASE"

_API_RETRIES = 4
_API_INITIAL = 1.0
_QUICK_INITIAL = 0.5  # a poll or a part link: a blip, not an overloaded API


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and for how long an operation may be retried.

    ``retries`` counts the attempts after the first; the wait before retry *n*
    is ``initial * 2 ** (n - 1)``, capped at ``maximum``, less a random share
    of up to ``jitter`` of it. ``max_total`` bounds the whole loop, waiting
    included: a wait that would pass it ends the loop instead. ``statuses``
    are the HTTP statuses worth another try.
    """

    retries: int = _API_RETRIES
    initial: float = _API_INITIAL
    maximum: float = 60.0
    max_total: float = 120.0
    jitter: float = 0.5
    statuses: frozenset[int] = RETRYABLE_STATUSES

    # -- the arithmetic ---------------------------------------------------------

    def step(self, attempt: int) -> float:
        """The un-jittered wait before retry number ``attempt`` (1-based): the one formula.

        The exponent is capped (far past any ``maximum``) so that a watch failing
        thousands of times in a row never overflows a float.
        """
        return min(self.maximum, self.initial * 2.0 ** min(max(0, attempt - 1), 1000))

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before retry ``attempt`` when the server named none.

        Jittered down by up to ``jitter`` of the step, so many clients that
        failed together do not retry together.
        """
        step = self.step(attempt)
        if not self.jitter:
            return step
        return step * (1.0 - self.jitter + self.jitter * (rng or random).random())

    def retryable(self, status: int) -> bool:
        """Whether an answer with this status may succeed when asked again."""
        return status in self.statuses

    def next_wait(
        self,
        attempt: int,
        elapsed: float,
        *,
        requested: float | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """The wait before retry ``attempt``, or None when the loop must end now.

        A wait the server ``requested`` (see :func:`server_requested_wait`) is
        honoured before the policy's own; either way a wait that would take the
        loop past ``max_total`` (``elapsed`` being what the loop has spent so
        far) ends it, as does having no retries left.
        """
        if attempt > self.retries:
            return None
        wait = requested if requested is not None else self.backoff(attempt, rng)
        if elapsed + wait > self.max_total:
            return None
        return wait

    # -- the policies cbatch uses -----------------------------------------------

    @classmethod
    def from_env(cls, retries: int | None = None) -> RetryPolicy:
        """The policy of API calls: ``retries`` (None: the default 4) and the environment's base."""
        base = _env_base()
        return cls(
            retries=_API_RETRIES if retries is None else max(0, retries),
            initial=_API_INITIAL if base is None else base,
        )

    @classmethod
    def for_polls(cls, retries: int | None = None) -> RetryPolicy:
        """The policy of one watch poll: fail fast, the watch engine handles longer outages.

        At most one quick retry for a blip (``retries`` can only lower it), so
        ``--timeout`` stays a real bound and an outage reaches the engine's own
        backoff and ``--outage-limit`` within seconds.
        """
        return cls(
            retries=1 if retries is None else max(0, min(1, retries)),
            initial=min(_QUICK_INITIAL, cls.from_env().initial),
            maximum=1.0,
            max_total=5.0,
        )

    @classmethod
    def for_parts(cls) -> RetryPolicy:
        """The policy of one part download: five tries, from half a second, at most 30 s apart.

        ``max_total`` bounds the time spent *waiting* (the caller counts only
        that): a large part on a slow link may take minutes to arrive, and that
        must not use up the retries of the next drop. No jitter: the waits stay
        what they were before this policy was shared.
        """
        base = _env_base()
        return cls(
            retries=4,
            initial=_QUICK_INITIAL if base is None else base,
            maximum=30.0,
            max_total=120.0,
            jitter=0.0,
            statuses=PART_RETRYABLE_STATUSES,
        )

    @staticmethod
    def reset_env() -> None:
        """Forget the ``CBATCH_RETRY_BASE`` read so far: the next policy reads it again."""
        _env_base.cache_clear()


@cache
def _env_base() -> float | None:
    """``CBATCH_RETRY_BASE`` in seconds, read once; None when unset or not a number."""
    value = os.environ.get(ENV_RETRY_BASE)
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


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
