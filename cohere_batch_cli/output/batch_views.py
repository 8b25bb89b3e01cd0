"""How batches and datasets look to a person: columns, words and colours, no API calls."""

from __future__ import annotations

from datetime import datetime
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


def batch_fields(batch: Batch) -> list[tuple[str, str]]:
    """Every field of a batch as (label, text), known ones first in a readable order."""
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


def lineage_fields(attempt: int, root_id: str, parent_id: str | None, retried_by: str | None) -> list[tuple[str, str]]:
    """Where a batch stands in a chain of retries: its attempt, what it retries, what retried it."""
    if attempt == 1:
        rows = [("Attempt", "1 (the original)")]
    else:
        rows = [("Attempt", f"{attempt} (retry {attempt - 1} of {root_id})")]
        rows.append(("Retry of", parent_id or f"attempt {attempt - 1} of {root_id}"))
    if retried_by:
        rows.append(("Retried by", retried_by))
    return rows


def dataset_fields(dataset: Dataset) -> list[tuple[str, str]]:
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
    ]
    fields += [("Warning", warning) for warning in dataset.validation_warnings]
    return [(k, v) for k, v in fields if v]


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

