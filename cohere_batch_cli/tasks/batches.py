"""Create a batch without ever making two, and cancel batches one by one.

The client already looks for a batch whose create answer was lost before it
posts again (see ``CohereClient.create_batch``); this layer adds what only
cbatch can say: which command finds the batch if even that could not settle it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.errors import CohereAPIError
    from ..api.models import Batch
    from .reporting import Reporter


def look_for_batch_hint(name: str) -> str:
    return (
        "the batch may have been created: look for it with "
        f"'cbatch list --name {shlex.quote(name)}' before creating it again"
    )


def create_batch(
    client: CohereClient, *, name: str, dataset_id: str, model: str, reporter: Reporter
) -> Batch:
    """Create the batch (never two), and say how to look for it when its fate is unknown."""
    from ..api.errors import CohereAPIError

    try:
        batch = client.create_batch(name=name, input_dataset_id=dataset_id, model=model)
    except KeyboardInterrupt as exc:
        from ..errors import stop_word

        reporter.info(
            f"{stop_word(exc)} while creating the batch: it may exist; "
            f"look before creating it again: cbatch list --name {shlex.quote(name)}"
        )
        raise
    except CohereAPIError as exc:
        if getattr(exc, "may_have_created", None) == "batch":
            exc.hint = look_for_batch_hint(name)
        raise
    return batch


EARLIER_LOOKUP = 50
"""How many of the newest batches :func:`find_unrecorded_batch` reads."""


EARLIER_UPLOAD_LOOKUP = 1000
"""How many of the newest batches :func:`find_earlier_upload` reads for one made from a dataset."""


class EarlierUpload(Exception):
    """Raised between the check and the upload: an interrupted run already uploaded these bytes."""

    def __init__(self, dataset_id: str) -> None:
        super().__init__(dataset_id)
        self.dataset_id = dataset_id


def find_earlier_upload(
    client: CohereClient, candidates: Sequence[str], dataset_name: str
) -> str | None:
    """The dataset an interrupted ``create --file`` uploaded from these very bytes, if it can serve.

    ``candidates`` are the datasets this machine recorded as uploaded from the
    same path with the same fingerprint, newest first. One is taken when it
    still exists under the name this run would give its own, did not fail
    validation, and no batch was made from it: its run stopped between the
    upload and the create. A dataset a batch was made from belongs to a run
    that finished: the same command then makes a new batch, as it always has.
    """
    from ..api.clock import not_before
    from ..api.errors import NotFoundError

    for dataset_id in candidates:
        try:
            dataset = client.get_dataset(dataset_id)
        except NotFoundError:
            continue
        if dataset.name != dataset_name or dataset.validation_status == "failed":
            continue
        made = dataset.created_at
        since = not_before(made.timestamp(), server=True) if made is not None else None
        used = False
        for seen, batch in enumerate(client.iter_batches(page_size=100, order_by="created_at")):
            created = batch.created_at
            if seen >= EARLIER_UPLOAD_LOOKUP or (
                since is not None and created is not None and created.timestamp() < since
            ):
                break  # newest first: every batch after this one is older than the dataset
            if batch.input_dataset_id == dataset_id:
                used = True
                break
        if not used:
            return dataset_id
    return None


class EarlierBatch(Exception):
    """Raised between the check and the upload: an earlier run already made this command's batch."""

    def __init__(self, batch: Batch) -> None:
        super().__init__(batch.id)
        self.batch = batch


def find_unrecorded_batch(
    client: CohereClient,
    *,
    name: str,
    model: str,
    dataset_name: str,
    records: int,
    since: float,
    reporter: Reporter,
) -> Batch | None:
    """The batch an earlier run of the same ``create --file`` made, when the state store could not record it.

    Without a record, only the API can say whether a run that failed after
    its create (or whose output was lost) already made the batch. It is one
    of the newest :data:`EARLIER_LOOKUP` batches with this name and model,
    made since the input file last changed (``since``, less
    the one clock rule's allowance, :func:`~cohere_batch_cli.api.clock.not_before`), from a dataset of the name this run gives its own
    and with as many records as the file: the same command on the same file.
    A file changed since (a nightly's new input) never matches.
    """
    from ..api.clock import not_before
    from ..api.errors import NotFoundError

    for seen, batch in enumerate(
        client.iter_batches(page_size=EARLIER_LOOKUP, order_by="created_at")
    ):
        if seen >= EARLIER_LOOKUP:
            break
        made = batch.created_at
        if batch.name != name or batch.model != model or made is None or not batch.input_dataset_id:
            continue
        if made.timestamp() < not_before(since):
            continue
        try:
            dataset = client.get_dataset(batch.input_dataset_id)
        except NotFoundError:
            continue
        if dataset.name == dataset_name and dataset.num_rows == records:
            reporter.warn(
                f"found batch {batch.id}, made from this file with this name and model by an earlier run"
                " the state store could not record: not creating another"
                " (give another --name to make a second one)"
            )
            return batch
    return None


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
