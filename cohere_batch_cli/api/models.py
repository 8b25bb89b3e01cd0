"""Typed views of the API's objects that never lose what the API sent.

Each model keeps the object exactly as received in ``raw`` (so ``--json`` prints
the API's own object, unknown fields included) and exposes typed properties
over it. Parsing is forgiving on purpose: the contract says any field may be
missing and new ones may appear, and a newer server must not break an older
cbatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from typing import Any, ClassVar


class BatchStatus(str):
    """A batch status: the API's string, plus what cbatch knows about it.

    A ``str`` rather than an Enum so an unknown status from a newer API is kept
    and shown instead of raising. ``BATCH_STATUS_CANCELLED`` (the spelling in
    Cohere's own notebook) is read as ``BATCH_STATUS_CANCELED``.
    """

    UNSPECIFIED = "BATCH_STATUS_UNSPECIFIED"
    QUEUED = "BATCH_STATUS_QUEUED"
    IN_PROGRESS = "BATCH_STATUS_IN_PROGRESS"
    CANCELING = "BATCH_STATUS_CANCELING"
    COMPLETED = "BATCH_STATUS_COMPLETED"
    FAILED = "BATCH_STATUS_FAILED"
    CANCELED = "BATCH_STATUS_CANCELED"

    _ALIASES: ClassVar[dict[str, str]] = {"BATCH_STATUS_CANCELLED": "BATCH_STATUS_CANCELED"}
    _TERMINAL = frozenset({COMPLETED, FAILED, CANCELED})

    def __new__(cls, value: str) -> BatchStatus:
        value = str(value or cls.UNSPECIFIED).strip().upper()
        if not value.startswith("BATCH_STATUS_"):
            value = "BATCH_STATUS_" + value
        return super().__new__(cls, cls._ALIASES.get(value, value))

    @property
    def is_terminal(self) -> bool:
        """COMPLETED, FAILED or CANCELED: the batch will not change again."""
        return self in self._TERMINAL

    @property
    def is_known(self) -> bool:
        return self in _LABELS

    @property
    def label(self) -> str:
        """The status in words a person reads: ``in progress``, ``completed``."""
        return _LABELS.get(self) or self.removeprefix("BATCH_STATUS_").lower().replace("_", " ")

    @classmethod
    def parse_user(cls, text: str) -> BatchStatus:
        """Read a status typed by a user: ``in-progress``, ``in_progress``, ``COMPLETED``..."""
        return cls(text.replace("-", "_").replace(" ", "_"))


_LABELS = {
    BatchStatus.UNSPECIFIED: "unspecified",
    BatchStatus.QUEUED: "queued",
    BatchStatus.IN_PROGRESS: "in progress",
    BatchStatus.CANCELING: "canceling",
    BatchStatus.COMPLETED: "completed",
    BatchStatus.FAILED: "failed",
    BatchStatus.CANCELED: "canceled",
}


def _int(value: Any) -> int | None:
    """An int from an int or an int64-as-string field; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None when absent or unreadable.

    Accepts ``Z``, a space instead of ``T`` (as in the API's own examples) and
    any number of fractional digits.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, tail = rest[:digits], rest[digits:]
        text = f"{head}.{(frac + '000000')[:6]}{tail}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class _Named:
    """What every API object has: the object exactly as sent, an id and a name."""

    raw: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.raw.get("id") or "")

    @property
    def name(self) -> str:
        return str(self.raw.get("name") or "")


@dataclass(frozen=True)
class _Resource(_Named):
    """A batch or a dataset: named, and stamped when created and last updated."""

    @property
    def created_at(self) -> datetime | None:
        return parse_time(self.raw.get("created_at"))

    @property
    def updated_at(self) -> datetime | None:
        return parse_time(self.raw.get("updated_at"))


@dataclass(frozen=True)
class Batch(_Resource):
    """A batch as the API described it at one moment."""

    @classmethod
    def from_api(cls, data: Any) -> Batch:
        if not isinstance(data, dict):
            raise TypeError("a batch must be a JSON object")
        return cls(raw=data)

    @property
    def status(self) -> BatchStatus:
        return BatchStatus(self.raw.get("status") or BatchStatus.UNSPECIFIED)

    @property
    def model(self) -> str | None:
        return _str(self.raw.get("model"))

    @property
    def input_dataset_id(self) -> str | None:
        return _str(self.raw.get("input_dataset_id"))

    @property
    def output_dataset_id(self) -> str | None:
        return _str(self.raw.get("output_dataset_id"))

    @property
    def status_reason(self) -> str | None:
        return _str(self.raw.get("status_reason"))

    @property
    def num_records(self) -> int | None:
        return _int(self.raw.get("num_records"))

    @property
    def num_successful_records(self) -> int:
        return _int(self.raw.get("num_successful_records")) or 0

    @property
    def num_failed_records(self) -> int:
        return _int(self.raw.get("num_failed_records")) or 0

    @property
    def num_processed(self) -> int:
        return self.num_successful_records + self.num_failed_records

    @property
    def input_tokens(self) -> int | None:
        return _int(self.raw.get("input_tokens"))

    @property
    def output_tokens(self) -> int | None:
        return _int(self.raw.get("output_tokens"))

    @property
    def progress(self) -> float | None:
        """Share of records processed, 0.0 to 1.0; None when the total is unknown."""
        total = self.num_records
        if not total:
            return 1.0 if self.status == BatchStatus.COMPLETED else None
        return min(1.0, self.num_processed / total)


@dataclass(frozen=True)
class DatasetPart(_Named):
    """One file of a dataset; ``url`` is a pre-signed link, fetched without the API key."""

    @property
    def url(self) -> str | None:
        return _str(self.raw.get("url"))

    @property
    def index(self) -> int:
        return _int(self.raw.get("index")) or 0

    @property
    def size_bytes(self) -> int | None:
        return _int(self.raw.get("size_bytes"))

    @property
    def num_rows(self) -> int | None:
        return _int(self.raw.get("num_rows"))


class ValidationStatus:
    """The dataset validation states, as the API spells them."""

    UNKNOWN = "unknown"
    QUEUED = "queued"
    PROCESSING = "processing"
    FAILED = "failed"
    VALIDATED = "validated"
    SKIPPED = "skipped"
    FINAL = frozenset({FAILED, VALIDATED, SKIPPED})


@dataclass(frozen=True)
class Dataset(_Resource):
    """A dataset as the API described it; its type is kept as given, known or not."""

    parts: tuple[DatasetPart, ...] = field(default=())

    @classmethod
    def from_api(cls, data: Any) -> Dataset:
        if not isinstance(data, dict):
            raise TypeError("a dataset must be a JSON object")
        raw_parts = data.get("dataset_parts") or []
        parts = tuple(
            sorted(
                (DatasetPart(p) for p in raw_parts if isinstance(p, dict)),
                key=lambda p: p.index,
            )
        )
        return cls(raw=data, parts=parts)

    @property
    def dataset_type(self) -> str:
        return str(self.raw.get("dataset_type") or "")

    @property
    def validation_status(self) -> str:
        return str(self.raw.get("validation_status") or ValidationStatus.UNKNOWN)

    @property
    def validation_error(self) -> str | None:
        return _str(self.raw.get("validation_error"))

    @property
    def validation_warnings(self) -> list[str]:
        warnings = self.raw.get("validation_warnings") or []
        return [str(w) for w in warnings] if isinstance(warnings, list) else []

    @property
    def num_rows(self) -> int | None:
        counts = [p.num_rows for p in self.parts]
        return sum(c for c in counts if c is not None) if counts else None

    @property
    def size_bytes(self) -> int | None:
        sizes = [p.size_bytes for p in self.parts]
        return sum(s for s in sizes if s is not None) if sizes else None

    @property
    def is_final(self) -> bool:
        return self.validation_status in ValidationStatus.FINAL


def newest_first(stamps: Sequence[datetime | None]) -> bool:
    """Whether a page lists its items newest first (ties and missing stamps allowed).

    The API documents ``order_by`` but not the direction: code that stops
    paging early relies on this holding, and checks it on every page.
    """
    known = [s for s in stamps if s is not None]
    return all(a >= b for a, b in pairwise(known))


@dataclass(frozen=True)
class Model(_Named):
    """A model as ``GET /v1/models/{model}`` describes it: its limits and its tokenizer."""

    @classmethod
    def from_api(cls, data: Any) -> Model:
        if not isinstance(data, dict):
            raise TypeError("a model must be a JSON object")
        return cls(raw=data)

    @property
    def endpoints(self) -> list[str]:
        value = self.raw.get("endpoints")
        return [str(e) for e in value] if isinstance(value, list) else []

    @property
    def context_length(self) -> int | None:
        """Tokens one request may hold; the description types it as a number, so 128000.0 reads too."""
        value = self.raw.get("context_length")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None
        try:
            number = int(float(value))
        except (TypeError, ValueError, OverflowError):
            return None
        return number if number > 0 else None

    @property
    def tokenizer_url(self) -> str | None:
        """The public link to the tokenizer file: fetched without the API key."""
        return _str(self.raw.get("tokenizer_url"))

    @property
    def is_deprecated(self) -> bool:
        return self.raw.get("is_deprecated") is True
