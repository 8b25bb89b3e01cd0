"""One part of a run sent to the API once: its dataset uploaded and validated, then its batch created.

Every command that sends goes through here: a job's part (:mod:`.jobs`), a
part's next attempt (a retry, :mod:`.retrying`) and a plain ``create
--file``, a run of one part. A part is sent in steps, each written where its
run records it (:class:`Steps`) *before* it is taken, so a run killed at any
moment is picked up, never doubled:

1. **find** what an earlier run made under the part's names: its batch, else
   its dataset (by the id it recorded, else by name), taken when it is, or
   becomes, validated (:func:`usable`);
2. **upload** the part's checked bytes (:func:`upload`): the run is read
   again under its step lock first (a cancel stops it), and the intent is
   written before a byte is sent;
3. **create** the batch (:func:`create`) under the same step lock, which a
   cancel takes too: a cancel waits for a create in flight to be recorded,
   and a sender that comes after it reads "canceled" and stops.

What differs from one caller to the next is data, not code: the names a
part is sent under and how messages name it (:class:`Part`), and where its
steps are written (a :class:`Steps`: a retry's attempts, a job's parts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from ..state.store import StateStore
    from .reporting import Reporter


@dataclass(frozen=True)
class Part:
    """One part of a run, as it is sent: the names it takes on the API, its model, and its words.

    ``run`` names the run as its locks do (``job J``, ``batch ROOT``).
    ``words`` names the part in a message about a stop while it is created
    (``attempt 2``, ``part 3 of job J``), and ``again`` says what to do then.
    """

    run: str
    batch_name: str
    dataset_name: str
    model: str
    words: str
    again: str = "run the same command again; it finds the batch if it was made"
    lost: str | None = None
    """The hint when the create's answer was lost and the batch may exist (None: the error's own advice)."""


class Steps(Protocol):
    """Where one part's steps are written, each before it is taken: the run's own record of the part.

    A retry writes them to its attempts, a job to its parts. ``still_wanted``
    raises to stop the part (its run was canceled); it is read under the
    run's step lock, before the upload and before the create.
    """

    def still_wanted(self) -> None: ...

    def uploading(self) -> None: ...

    def uploaded(self, dataset_id: str) -> None: ...

    def creating(self) -> None: ...

    def created(self, batch: Batch) -> None: ...


def upload(store: StateStore | None, part: Part, steps: Steps, send: Callable[[], str]) -> str:
    """The part's dataset, sent by ``send`` (its checked bytes) once the run still wants it and the intent is written."""
    from ..state.runlock import step_lock

    with step_lock(store, part.run):
        steps.still_wanted()
        steps.uploading()
    dataset_id = send()
    steps.uploaded(dataset_id)
    return dataset_id


def create(
    client: CohereClient,
    store: StateStore | None,
    part: Part,
    steps: Steps,
    dataset_id: str,
    reporter: Reporter,
) -> Batch:
    """The part's batch, made from ``dataset_id`` under the run's step lock: a cancel waits for it to be recorded."""
    from ..api.errors import CohereAPIError
    from ..errors import stop_word
    from ..state.runlock import step_lock

    with step_lock(store, part.run):
        steps.still_wanted()
        steps.creating()
        try:
            batch = client.create_batch(
                name=part.batch_name, input_dataset_id=dataset_id, model=part.model
            )
        except KeyboardInterrupt as exc:
            reporter.info(f"{stop_word(exc)} while creating {part.words}: {part.again}")
            raise
        except CohereAPIError as exc:
            if part.lost is not None and exc.may_have_created == "batch":
                exc.hint = part.lost
            raise
        steps.created(batch)
    return batch


def usable(
    client: CohereClient, dataset_ids: Iterable[str], reporter: Reporter | None = None
) -> str | None:
    """The first dataset an earlier run uploaded that is (or becomes) validated; None when none can serve.

    With a ``reporter``, each change of the validation's status is said (a
    dataset found by the id a run recorded); without, the look is silent (a
    scan of many parts' datasets).
    """
    from ..api.errors import NotFoundError
    from .datasets import wait_for_dataset, wait_validated

    for dataset_id in dataset_ids:
        try:
            final = (
                wait_validated(client, dataset_id, reporter)
                if reporter is not None
                else wait_for_dataset(client, dataset_id)
            )
        except NotFoundError:
            continue
        if final.validation_status == "validated":
            return dataset_id
    return None


def dataset_named(client: CohereClient, name: str, since: float) -> str | None:
    """The newest dataset called ``name`` made since ``since`` (this machine's clock, less the one clock rule's allowance).

    How a run killed while it uploaded (the answer, and so the id, never came
    back) finds what it sent.
    """
    from ..api.clock import not_before

    earliest = not_before(since)  # this machine's clock: it may run fast
    for dataset in client.iter_datasets(limit=500):
        created = dataset.created_at
        if dataset.name == name and (created is None or created.timestamp() >= earliest):
            return dataset.id
    return None
