"""When a dataset, and the results in it, stop existing: the service's lifetime applied to its own times.

Cohere deletes datasets 30 days after they were created (``config.DATASET_TTL``,
a setting), and the API has no field that says when: so a dataset's expiry is
its ``created_at`` plus the lifetime. A batch outlives its datasets; its output
dataset is written when it ends, so its results expire at the batch's own end
(``updated_at`` of a finished batch, else ``created_at``) plus the lifetime,
computed from the batch alone, with no request (``cbatch list`` does it per row).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .api.models import Batch, BatchStatus, Dataset


def now_utc() -> datetime:
    """Now, in UTC: the moment the API's times are compared with."""
    return datetime.now(timezone.utc)


def dataset_expires_at(dataset: Dataset, ttl: float) -> datetime | None:
    """``created_at`` + ``ttl``; None when the dataset does not say when it was created."""
    created = dataset.created_at
    return None if created is None else created + timedelta(seconds=ttl)


def wrote_output(batch: Batch) -> bool:
    """Whether a finished batch had an output dataset, named still or not.

    One cancelled before it started never had one; any other finished batch
    did, even when the API shows its id empty once the dataset is gone.
    """
    if not batch.status.is_terminal:
        return False
    if batch.output_dataset_id:
        return True
    return batch.status != BatchStatus.CANCELED or batch.num_processed > 0


def results_expire_at(batch: Batch, ttl: float) -> datetime | None:
    """When a finished batch's output dataset expires; None for one without results or times."""
    if not wrote_output(batch):
        return None
    ended = batch.updated_at or batch.created_at
    return None if ended is None else ended + timedelta(seconds=ttl)


def expired(moment: datetime | None, now: datetime | None = None) -> bool:
    """Whether ``moment`` (an expiry) has passed; an unknown expiry never has."""
    return moment is not None and (now or now_utc()) >= moment
