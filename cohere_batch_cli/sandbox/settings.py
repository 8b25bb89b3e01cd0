"""The knobs of one sandbox instance, as one frozen value shared by every module.

Shapes, lifetimes and limits default to what the real service does (CONTRACT.md); the
pace defaults to quick so tests and demos stay fast, and :meth:`SandboxSettings.realistic`
gives the recorded pace instead. Each field has a ``cbatch sandbox serve`` option of the
same name (``queue_delay`` is ``--queue-delay``), listed with its source in
docs/sandbox.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

GB = 1_000_000_000
DAY = 86_400.0

REALISTIC_PACE: dict[str, float] = {
    "queue_delay": 420.0,
    "validation_delay": 6.0,
    "records_per_second": 6.0,
    "output_ready_delay": 5.0,
}
"""The recorded pace: a 10-record batch QUEUED about 7 minutes, a 30,000-record batch
done in about 1.5 hours (about 6 records a second), validation taking seconds."""

SUCCESS_ERRORS = ("empty", "null")


@dataclass(frozen=True)
class SandboxSettings:
    """How the sandbox listens, paces its work, limits datasets and misbehaves on purpose."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; read the chosen one from ``SandboxServer.base_url``."""
    api_keys: tuple[str, ...] = ()
    """Accepted bearer keys; empty accepts any non-empty key."""

    # -- pace ---------------------------------------------------------------------------
    records_per_second: float = 1000.0
    """Pace of the worker, per batch."""
    queue_delay: float = 0.0
    """Seconds a new batch stays QUEUED."""
    validation_delay: float = 0.0
    """Seconds a new dataset stays queued/processing before its validation result shows."""
    output_ready_delay: float = 0.2
    """Seconds an output dataset reads ``processing`` after its batch ended (at least)."""
    cancel_grace: float = 0.5
    """A CANCELING batch keeps working this long: if it finishes first it ends COMPLETED."""
    tick: float = 0.02
    """How often the worker wakes when nothing signals it."""

    # -- request faults -------------------------------------------------------------------
    fail_rate_429: float = 0.0
    fail_rate_5xx: float = 0.0
    latency: float = 0.0
    retry_after: int = 1
    """Value of the ``Retry-After`` header on injected 429s."""
    seed: int | None = None
    """Seeds the request faults, the output order and the record outcomes; None: a random
    seed kept in ``data_dir``, so one sandbox directory always decides the same way."""

    # -- records --------------------------------------------------------------------------
    shuffle: bool = True
    """Output records come in a seeded shuffled order (within and across parts), as recorded."""
    success_error: str = "empty"
    """``error`` of a successful output record: ``empty`` (``""``, as recorded) or ``null``."""
    transient_fail_rate: float = 0.0
    """Share of records that fail afresh each run (a timeout, an internal error)."""
    permanent_fail_rate: float = 0.0
    """Share of request bodies that fail every run (an invalid request, a too-long prompt)."""
    missing_rate: float = 0.0
    """Share of records silently left out of a COMPLETED batch's output and counts."""
    invalid_output_rate: float = 0.0
    """Share of structured answers (``response_format`` ``json_object``) that break their schema
    or stop at ``MAX_TOKENS`` mid-object, half each, decided afresh each run."""
    part_max_records: int = 10000
    """Records per dataset part, for output parts and input (Avro) parts alike."""

    # -- models and usage -----------------------------------------------------------------
    context_length: int | None = None
    """Overrides every model's context length (a small one makes over-long records easy)."""
    embed_dimension: int | None = None
    """Overrides every embed model's embedding dimension."""
    chat_request_overhead: int = 3
    """Template tokens added to a chat request's input tokens once."""
    chat_message_overhead: int = 4
    """Template tokens added to a chat request's input tokens per message."""

    # -- datasets: limits and lifetimes ---------------------------------------------------
    link_ttl: int = 3600
    """Seconds a signed part link stays valid (``X-Goog-Expires``)."""
    dataset_max_bytes: int = 1_500_000_000
    """Largest upload one dataset may hold (1.5 GB)."""
    org_max_bytes: int = 10 * GB
    """Storage of all live datasets together, as ``GET /v1/datasets/usage`` sums it (10 GB)."""
    dataset_name_max_length: int = 49
    """Longest accepted dataset name, in characters ("should stay under 50")."""
    dataset_ttl: float = 30 * DAY
    """Seconds a dataset lives before it is deleted (30 days)."""

    def __post_init__(self) -> None:
        if self.records_per_second <= 0:
            raise ValueError("records_per_second must be positive")
        if self.part_max_records <= 0:
            raise ValueError("part_max_records must be positive")
        rates = (
            "fail_rate_429",
            "fail_rate_5xx",
            "transient_fail_rate",
            "permanent_fail_rate",
            "missing_rate",
            "invalid_output_rate",
        )
        for name in rates:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.fail_rate_429 + self.fail_rate_5xx > 1.0:
            raise ValueError("fail_rate_429 + fail_rate_5xx must not exceed 1")
        if self.success_error not in SUCCESS_ERRORS:
            raise ValueError("success_error must be 'empty' or 'null'")
        positive = ("link_ttl", "dataset_max_bytes", "org_max_bytes", "dataset_name_max_length")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.dataset_ttl <= 0:
            raise ValueError("dataset_ttl must be positive")
        for name in ("context_length", "embed_dimension"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive")
        if self.embed_dimension is not None and self.embed_dimension % 8:
            raise ValueError(
                "embed_dimension must be a multiple of 8 (binary embeddings pack 8 values a byte)"
            )
        if self.chat_request_overhead < 0 or self.chat_message_overhead < 0:
            raise ValueError("the chat overheads must not be negative")

    @classmethod
    def realistic(cls, data_dir: Path, **overrides: Any) -> SandboxSettings:
        """Settings with the recorded pace (:data:`REALISTIC_PACE`); ``overrides`` win."""
        return cls(data_dir=data_dir, **{**REALISTIC_PACE, **overrides})
