"""The knobs of one sandbox instance, as one frozen value shared by every module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SandboxSettings:
    """How the sandbox listens, paces its work and misbehaves on purpose.

    Defaults make a quick, well-behaved sandbox; tests tune the pace and the delays
    so that every life-cycle state is reachable in well under a second.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; read the chosen one from ``SandboxServer.base_url``."""
    api_keys: tuple[str, ...] = ()
    """Accepted bearer keys; empty accepts any non-empty key."""
    records_per_second: float = 1000.0
    """Pace of the worker, per batch."""
    queue_delay: float = 0.0
    """Seconds a new batch stays QUEUED."""
    validation_delay: float = 0.0
    """Seconds a new dataset stays queued/processing before its validation result shows."""
    fail_rate_429: float = 0.0
    fail_rate_5xx: float = 0.0
    latency: float = 0.0
    seed: int | None = None
    part_max_records: int = 10000
    retry_after: int = 1
    """Value of the ``Retry-After`` header on injected 429s."""
    cancel_grace: float = 0.5
    """A CANCELING batch keeps working this long: if it finishes first it ends COMPLETED."""
    output_ready_delay: float = 0.2
    """Seconds an output dataset reads ``processing`` before ``validated`` (at least)."""
    tick: float = 0.02
    """How often the worker wakes when nothing signals it."""

    def __post_init__(self) -> None:
        if self.records_per_second <= 0:
            raise ValueError("records_per_second must be positive")
        if self.part_max_records <= 0:
            raise ValueError("part_max_records must be positive")
        for name in ("fail_rate_429", "fail_rate_5xx"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.fail_rate_429 + self.fail_rate_5xx > 1.0:
            raise ValueError("fail_rate_429 + fail_rate_5xx must not exceed 1")
