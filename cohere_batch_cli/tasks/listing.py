"""``cbatch list --watch``: after the listing, a row each time a batch changes, as ``kubectl get -w``.

One listing call per round, most recently updated first (the API has no change
feed): a batch whose status or counters differ from what was last shown, or
that is new, is yielded again. Pages are followed only while they still hold
updates newer than the last round's, so a quiet account costs one request a
round. It runs until Ctrl-C, which the command's error table turns into 130.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch

MAX_PAGES = 5


def _state(batch: Batch) -> tuple[object, ...]:
    return (
        batch.status,
        batch.num_records,
        batch.num_successful_records,
        batch.num_failed_records,
        batch.output_dataset_id,
    )


def watch_changes(
    client: CohereClient,
    listed: Iterable[Batch],
    *,
    keep: Callable[[Batch], bool],
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    rounds: int | None = None,
) -> Iterator[Batch]:
    """Yield each batch that changed (and that ``keep`` accepts), round after round, for ever."""
    seen = {batch.id: _state(batch) for batch in listed}
    newest: datetime | None = None
    done = 0
    while rounds is None or done < rounds:
        sleep(interval)
        done += 1
        token: str | None = None
        round_newest = newest
        baseline = newest is None  # the first round only learns what the listing did not show
        for _ in range(MAX_PAGES):
            page, token = client.list_batches_page(
                page_size=100, page_token=token, order_by="updated_at"
            )
            fresh = [
                b for b in page if newest is None or b.updated_at is None or b.updated_at >= newest
            ]
            for batch in reversed(fresh):  # oldest change first, as a log reads
                state = _state(batch)
                if baseline and batch.id not in seen:
                    seen[batch.id] = state
                elif seen.get(batch.id) != state and keep(batch):
                    seen[batch.id] = state
                    yield batch
                elif batch.id not in seen:
                    seen[batch.id] = state
                if batch.updated_at is not None and (
                    round_newest is None or batch.updated_at > round_newest
                ):
                    round_newest = batch.updated_at
            if not token or len(fresh) < len(page) or newest is None:
                break
        newest = round_newest
