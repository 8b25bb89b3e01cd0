"""How batches and datasets look to a person: columns, words and colours, no API calls."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..api.models import Batch, BatchStatus, Dataset
from .printer import Column

STATUS_STYLES = {
    BatchStatus.QUEUED: "cyan",
    BatchStatus.IN_PROGRESS: "blue",
    BatchStatus.CANCELING: "yellow",
    BatchStatus.COMPLETED: "green",
    BatchStatus.FAILED: "red",
    BatchStatus.CANCELED: "yellow",
}
VALIDATION_STYLES = {"validated": "green", "failed": "red", "queued": "cyan", "processing": "blue"}


def when(moment: datetime | None) -> str:
    """A timestamp in UTC to the second, the same on every machine running a script."""
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def span(seconds: float) -> str:
    """``29d23h``, ``5h12m``, ``12m``, ``40s``: a lifetime at a glance, to the two largest units."""
    s = max(0, int(seconds))
    if s >= 86_400:
        return f"{s // 86_400}d{(s % 86_400) // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 60}m" if s >= 60 else f"{s}s"


def until(moment: datetime | None, now: datetime | None = None) -> str:
    """``in 29d23h`` or ``expired 2d04h ago``, from ``now`` (UTC by default); ``-`` when unknown."""
    if moment is None:
        return "-"
    left = (moment - (now or datetime.now(timezone.utc))).total_seconds()
    return f"in {span(left)}" if left > 0 else f"expired {span(-left)} ago"


def expiry_text(moment: datetime | None, now: datetime | None = None) -> str:
    """``2025-04-04 14:59:25Z (in 29d23h)``; empty when unknown, so a field view leaves it out."""
    return f"{when(moment)} ({until(moment, now)})" if moment is not None else ""


def results_expiry_column(ttl: float) -> Column:
    """RESULTS EXPIRE for ``list``: from each batch's own times, no request per row."""
    from ..lifetimes import results_expire_at

    return Column("RESULTS EXPIRE", lambda b: until(results_expire_at(b, ttl)), justify="right")


def progress_text(batch: Batch) -> str:
    total = batch.num_records
    done = batch.num_processed
    if not total:
        return f"{done}" if done else "-"
    text = f"{done}/{total} ({100 * done // total}%)"
    if batch.num_failed_records:
        text += f", {batch.num_failed_records} failed"
    return text


def count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


BATCH_COLUMNS = (
    Column("ID", lambda b: b.id, min_width=36),
    Column("NAME", lambda b: b.name),
    Column("STATUS", lambda b: b.status.label, lambda b: STATUS_STYLES.get(b.status, "magenta")),
    Column("MODEL", lambda b: b.model or "-"),
    Column("PROGRESS", progress_text, justify="right"),
    Column("CREATED", lambda b: when(b.created_at)),
)

BATCH_CSV_FIELDS = (
    "id", "name", "status", "model", "num_records", "num_successful_records",
    "num_failed_records", "input_tokens", "output_tokens", "input_dataset_id",
    "output_dataset_id", "status_reason", "created_at", "updated_at",
)  # fmt: skip
"""CSV columns: the API's own field names, so they stay stable as cbatch changes."""

DATASET_CSV_FIELDS = (
    "id", "name", "dataset_type", "validation_status", "validation_error", "created_at", "updated_at",
)  # fmt: skip

DATASET_COLUMNS = (
    Column("ID", lambda d: d.id, min_width=20),
    Column("NAME", lambda d: d.name),
    Column("TYPE", lambda d: d.dataset_type or "-"),
    Column(
        "VALIDATION",
        lambda d: d.validation_status,
        lambda d: VALIDATION_STYLES.get(d.validation_status, ""),
    ),
    Column("ROWS", lambda d: count(d.num_rows), justify="right"),
    Column("SIZE", lambda d: human_bytes(d.size_bytes), justify="right"),
    Column("CREATED", lambda d: when(d.created_at)),
)


def batch_fields(batch: Batch, ttl: float | None = None) -> list[tuple[str, str]]:
    """Every field of a batch as (label, text), known ones first in a readable order.

    With ``ttl`` (the dataset lifetime), when a finished batch's results expire.
    """
    from ..lifetimes import results_expire_at

    expires = expiry_text(results_expire_at(batch, ttl)) if ttl is not None else ""
    known = [
        ("ID", batch.id),
        ("Name", batch.name),
        ("Status", batch.status.label + ("" if batch.status.is_known else f" ({batch.status})")),
        ("Status reason", batch.status_reason or ""),
        ("Model", batch.model or "-"),
        ("Progress", progress_text(batch)),
        ("Records", count(batch.num_records)),
        ("Succeeded", count(batch.num_successful_records)),
        ("Failed", count(batch.num_failed_records)),
        ("Input tokens", count(batch.input_tokens)),
        ("Output tokens", count(batch.output_tokens)),
        ("Input dataset", batch.input_dataset_id or "-"),
        ("Output dataset", batch.output_dataset_id or "-"),
        ("Results expire", expires),
        ("Created", when(batch.created_at)),
        ("Updated", when(batch.updated_at)),
        ("Creator", str(batch.raw.get("creator_id") or "-")),
        ("Organisation", str(batch.raw.get("org_id") or "-")),
    ]
    shown = {
        "id", "name", "status", "status_reason", "model", "num_records", "num_successful_records",
        "num_failed_records", "input_tokens", "output_tokens", "input_dataset_id",
        "output_dataset_id", "created_at", "updated_at", "creator_id", "org_id",
    }  # fmt: skip
    extra = [(key, _text(value)) for key, value in batch.raw.items() if key not in shown]
    return [(k, v) for k, v in known if v] + extra


def dataset_fields(dataset: Dataset, ttl: float | None = None) -> list[tuple[str, str]]:
    """A dataset as (label, text); with ``ttl``, when it expires (``created_at`` + the lifetime)."""
    from ..lifetimes import dataset_expires_at

    expires = expiry_text(dataset_expires_at(dataset, ttl)) if ttl is not None else ""
    fields = [
        ("ID", dataset.id),
        ("Name", dataset.name),
        ("Type", dataset.dataset_type or "-"),
        ("Validation", dataset.validation_status),
        ("Validation error", dataset.validation_error or ""),
        ("Rows", count(dataset.num_rows)),
        ("Size", human_bytes(dataset.size_bytes)),
        ("Parts", str(len(dataset.parts))),
        ("Created", when(dataset.created_at)),
        ("Expires", expires),
    ]
    fields += [("Warning", warning) for warning in dataset.validation_warnings]
    return [(k, v) for k, v in fields if v]


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

