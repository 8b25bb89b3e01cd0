"""Create a batch from a dataset without ever making two, and cancel batches one by one.

The client already looks for a batch whose create answer was lost before it
posts again (see ``CohereClient.create_batch``); the create itself is the one
of :mod:`.sending`, which adds what only cbatch can say: which command finds
the batch if even that could not settle it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.errors import CohereAPIError
    from ..api.models import Batch
    from .reporting import Reporter


def create_batch(
    client: CohereClient, *, name: str, dataset_id: str, model: str, reporter: Reporter
) -> Batch:
    """Create the batch of ``create --dataset`` (never two), and say how to look for it when its fate is unknown.

    The one create of :mod:`.sending`, for a batch that is a run of its own
    with nothing to record before it is made.
    """
    from . import sending

    return sending.create(
        client, None, sending.plain_part(name, model), sending.NO_STEPS, dataset_id, reporter
    )


@dataclass(frozen=True)
class CancelOutcome:
    """What one cancel request came to: accepted, or refused with the error."""

    batch_id: str
    error: CohereAPIError | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


def cancel_batches(client: CohereClient, batch_ids: Sequence[str]) -> Iterator[CancelOutcome]:
    """Ask to cancel each batch in turn, yielding each outcome as it comes.

    One refusal does not stop the others; an id given twice is asked once.
    """
    from ..api.errors import CohereAPIError

    for batch_id in dict.fromkeys(batch_ids):
        try:
            client.cancel_batch(batch_id)
        except CohereAPIError as exc:
            yield CancelOutcome(batch_id, exc)
        else:
            yield CancelOutcome(batch_id)
