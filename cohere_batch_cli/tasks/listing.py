"""``cbatch list``'s pages: whether a listing was cut by its limit, and ``list --watch``.

``list --watch``: after the listing, a row each time a batch changes, as ``kubectl get -w``.

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


class PageCursor:
    """Where a listing stopped in its pages: is there more, without asking for another page?

    ``cbatch list -q --status queued | cbatch cancel -`` that stops at the
    default limit must say so, or 20 of 25 are cancelled in silence. What the
    pages already read tell is enough: a row left on the page read last (that
    matches, for a filtered listing) means more exist; a next page means more
    may exist when rows are filtered, and do when they are not.
    """

    def __init__(self) -> None:
        self._page: list[Batch] = []
        self._token: str | None = None
        self._taken = 0

    def page(self, batches: list[Batch], token: str | None) -> None:
        """``iter_batches``' ``on_page``: a new page arrived, nothing of it taken yet."""
        self._page, self._token, self._taken = batches, token, 0

    def took(self) -> None:
        """One more row of the page was read by the listing."""
        self._taken += 1

    def cut_notice(self, shown: int, keep: Callable[[Batch], bool] | None) -> str | None:
        """The line that says the listing stopped at its limit, or None when nothing was left."""
        left = self._page[self._taken :]
        if any(keep is None or keep(batch) for batch in left) or (keep is None and self._token):
            return f"{shown} shown, more exist; --all for every one"
        if self._token:
            return f"{shown} shown, more may exist; --all for every one"
        return None


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
        # The first round only learns what the listing did not show; only the first: on an
        # account with no batch yet, the first one made must show, not be learned in silence.
        baseline = done == 1
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
