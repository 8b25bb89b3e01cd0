"""How batches and datasets look: columns, words and colours for people, raw values for scripts.

No API calls. Tables (``*_COLUMNS``) say ``4/4 (100%), 1 failed`` and ``107.2 MB``
for a person; plain output (``*_PLAIN_COLUMNS``, tab-separated) gives one raw value
a column (``4  3  1``, ``107200000``), so ``cut`` and ``awk`` need no parsing.
Every moment is written by :mod:`.times` (UTC with ``Z`` unless ``--local-time``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..api.models import Batch, BatchStatus, Dataset
from ..units import human_bytes
from .printer import Column
from .times import iso, when

STATUS_STYLES = {
    BatchStatus.QUEUED: "cyan",
    BatchStatus.IN_PROGRESS: "blue",
    BatchStatus.CANCELING: "yellow",
    BatchStatus.COMPLETED: "green",
    BatchStatus.FAILED: "red",
    BatchStatus.CANCELED: "yellow",
}
VALIDATION_STYLES = {"validated": "green", "failed": "red", "queued": "cyan", "processing": "blue"}


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


def expiry_text(
    moment: datetime | None, now: datetime | None = None, *, plain: bool = False
) -> str:
    """``2025-04-04 14:59:25Z (in 29d23h)`` (``plain``: the moment alone); empty when unknown."""
    if moment is None:
        return ""
    return iso(moment) if plain else f"{when(moment)} ({until(moment, now)})"


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


def widest_progress(batch: Batch) -> str:
    """The widest :func:`progress_text` a batch still running can come to: every record failed."""
    total = batch.num_records
    if batch.status.is_terminal or not total:
        return progress_text(batch)
    return f"{total}/{total} (100%), {total} failed"


def count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def raw(value: int | None) -> str:
    """A number as scripts read it: digits alone, ``-`` when unknown."""
    return "-" if value is None else str(value)


def status_word(batch: Batch) -> str:
    """``in_progress``: the status as one word, the spelling ``--status`` takes."""
    return batch.status.removeprefix("BATCH_STATUS_").lower()


def _status_style(batch: Batch) -> str:
    return STATUS_STYLES.get(batch.status, "magenta")


# Priorities: a narrow terminal drops the highest number first; 0 is never dropped.
# Only names are cut (with an ellipsis); ids, statuses, models, counts and times are
# shown whole or not at all: half a model name or a count reads as a wrong one.
BATCH_COLUMNS = (
    Column("ID", lambda b: b.id, whole=True, priority=0),
    Column("NAME", lambda b: b.name, priority=1, min_width=8),
    Column("STATUS", lambda b: b.status.label, _status_style, whole=True, priority=0),
    Column("MODEL", lambda b: b.model or "-", whole=True, priority=3),
    # Left, as its header: right-justified, the header stood far from its values ("MODEL" then
    # 30 blanks) whenever MODEL showed.
    Column("PROGRESS", progress_text, whole=True, priority=2, widest=widest_progress),
    Column("CREATED", lambda b: when(b.created_at), whole=True, priority=4),
)

BATCH_PLAIN_COLUMNS = (
    Column("id", lambda b: b.id),
    Column("name", lambda b: b.name),
    Column("status", status_word),
    Column("model", lambda b: b.model or "-"),
    Column("records", lambda b: raw(b.num_records)),
    Column("succeeded", lambda b: raw(b.num_successful_records)),
    Column("failed", lambda b: raw(b.num_failed_records)),
    Column("created", lambda b: iso(b.created_at)),
)
"""Plain (tab-separated) columns: one raw value each, documented in docs/scripting.md."""

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
    Column("ID", lambda d: d.id, whole=True, priority=0),
    Column("NAME", lambda d: d.name, priority=5, min_width=8),
    Column("TYPE", lambda d: d.dataset_type or "-", whole=True, priority=1),
    Column(
        "VALIDATION",
        lambda d: d.validation_status,
        lambda d: VALIDATION_STYLES.get(d.validation_status, ""),
        whole=True,
        priority=0,
    ),
    Column("ROWS", lambda d: count(d.num_rows), justify="right", priority=3),
    Column("SIZE", lambda d: human_bytes(d.size_bytes), justify="right", priority=4),
    Column("CREATED", lambda d: when(d.created_at), whole=True, priority=2),
)


def _part_status_style(part: Any) -> str:
    return {"completed": "green", "failed": "red", "canceled": "yellow"}.get(part.status, "")


JOB_PART_COLUMNS = (
    Column("PART", lambda p: str(p.record.part), justify="right", whole=True, priority=0),
    Column("STATUS", lambda p: p.status, _part_status_style, whole=True, priority=0),
    Column("BATCH", lambda p: p.root.id if p.root is not None else "-", whole=True, priority=0),
    Column(
        "RECORDS",
        lambda p: f"{p.succeeded + p.failed:,}/{p.record.records:,}",
        justify="right",
        whole=True,
        priority=0,
    ),
    Column("OK", lambda p: f"{p.succeeded:,}", justify="right", whole=True, priority=1),
    Column("FAILED", lambda p: f"{p.failed:,}", justify="right", whole=True, priority=1),
    Column("ATTEMPTS", lambda p: str(len(p.attempts)), justify="right", whole=True, priority=2),
    Column(
        "LATEST",
        lambda p: p.head.id if p.head is not None and len(p.attempts) > 1 else "-",
        whole=True,
        priority=3,
    ),
)
"""A job's parts under its fields at a terminal (``jobs get``), fitted to its width: a part's
batch id is whole, the latest attempt's goes first on a narrow terminal."""


def job_part_line(part: Any) -> str:
    """A job's part as one line, off a terminal: its batch, counts, and latest attempt."""
    head = part.head
    attempts = len(part.attempts)
    batch = part.root.id if part.root is not None else "-"
    counts = f"{part.succeeded + part.failed:,}/{part.record.records:,} records ({part.succeeded:,} ok, {part.failed:,} failed)"
    more = f"  attempts {attempts} (now {head.id})" if head is not None and attempts > 1 else ""
    return f"part {part.record.part}  {part.status:<11} {batch}  {counts}{more}"


DATASET_PLAIN_COLUMNS = (
    Column("id", lambda d: d.id),
    Column("name", lambda d: d.name),
    Column("type", lambda d: d.dataset_type or "-"),
    Column("validation", lambda d: d.validation_status),
    Column("rows", lambda d: raw(d.num_rows)),
    Column("size_bytes", lambda d: raw(d.size_bytes)),
    Column("created", lambda d: iso(d.created_at)),
)


def batch_fields(
    batch: Batch, ttl: float | None = None, *, plain: bool = False
) -> list[tuple[str, str]]:
    """Every field of a batch as (label, text), known ones first in a readable order.

    ``plain`` (stdout is not a terminal): raw numbers and one-word times, no
    ``Progress`` summary (its parts are the three counts).
    With ``ttl`` (the dataset lifetime), when a finished batch's results expire.
    """
    from ..lifetimes import results_expire_at

    number = raw if plain else count
    moment = iso if plain else when
    expires = expiry_text(results_expire_at(batch, ttl), plain=plain) if ttl is not None else ""
    known = [
        ("ID", batch.id),
        ("Name", batch.name),
        ("Status", batch.status.label + ("" if batch.status.is_known else f" ({batch.status})")),
        ("Status reason", batch.status_reason or ""),
        ("Model", batch.model or "-"),
        ("Progress", "" if plain else progress_text(batch)),
        ("Records", number(batch.num_records)),
        ("Succeeded", number(batch.num_successful_records)),
        ("Failed", number(batch.num_failed_records)),
        ("Input tokens", number(batch.input_tokens)),
        ("Output tokens", number(batch.output_tokens)),
        ("Input dataset", batch.input_dataset_id or "-"),
        ("Output dataset", batch.output_dataset_id or "-"),
        ("Results expire", expires),
        ("Created", moment(batch.created_at)),
        ("Updated", moment(batch.updated_at)),
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


def lineage_fields(
    attempt: int, root_id: str, parent_id: str | None, retried_by: str | None
) -> list[tuple[str, str]]:
    """Where a batch stands in a chain of retries: its attempt, what it retries, what retried it."""
    if attempt == 1:
        rows = [("Attempt", "1 (the original)")]
    else:
        rows = [("Attempt", f"{attempt} (retry {attempt - 1} of {root_id})")]
        rows.append(("Retry of", parent_id or f"attempt {attempt - 1} of {root_id}"))
    if retried_by:
        rows.append(("Retried by", retried_by))
    return rows


def dataset_fields(
    dataset: Dataset, ttl: float | None = None, *, plain: bool = False
) -> list[tuple[str, str]]:
    """A dataset as (label, text); ``plain``: raw numbers (``Size`` in bytes), one-word times.

    With ``ttl``, when it expires (``created_at`` + the lifetime).
    """
    from ..lifetimes import dataset_expires_at

    expires = expiry_text(dataset_expires_at(dataset, ttl), plain=plain) if ttl is not None else ""
    fields = [
        ("ID", dataset.id),
        ("Name", dataset.name),
        ("Type", dataset.dataset_type or "-"),
        ("Validation", dataset.validation_status),
        ("Validation error", dataset.validation_error or ""),
        ("Rows", raw(dataset.num_rows) if plain else count(dataset.num_rows)),
        ("Size", raw(dataset.size_bytes) if plain else human_bytes(dataset.size_bytes)),
        ("Parts", str(len(dataset.parts))),
        ("Created", iso(dataset.created_at) if plain else when(dataset.created_at)),
        ("Expires", expires),
    ]
    fields += [("Warning", warning) for warning in dataset.validation_warnings]
    return [(k, v) for k, v in fields if v]


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
