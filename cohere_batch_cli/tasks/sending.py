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
steps are written (a :class:`Steps`: a retry's attempts, a job's parts, a
plain batch's ``uploads``, :class:`.send_file.FileSteps`). A plain batch's
own looks for what an earlier run left (a dataset uploaded from the same
bytes, a batch made from it, or, with no store to read, the batch itself on
the API) live here too, beside the rule they share with the others.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch, Dataset
    from ..state.store import StateStore
    from ..validate import FileReport
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

    A retry writes them to its attempts, a job to its parts, a plain batch to
    its ``uploads`` row (the bytes it checked, then its dataset). ``still_wanted``
    raises to stop the part (its run was canceled); it is read under the
    run's step lock, before the upload and before the create.
    """

    def still_wanted(self) -> None: ...

    def uploading(self) -> None: ...

    def uploaded(self, dataset_id: str) -> None: ...

    def creating(self) -> None: ...

    def created(self, batch: Batch) -> None: ...


class NoSteps:
    """The steps of a batch that is a run of its own and records nothing before it is made (``create --dataset``)."""

    def still_wanted(self) -> None:
        pass

    def uploading(self) -> None:
        pass

    def uploaded(self, dataset_id: str) -> None:
        pass

    def creating(self) -> None:
        pass

    def created(self, batch: Batch) -> None:
        pass


NO_STEPS = NoSteps()


def plain_part(name: str, model: str, dataset_name: str = "") -> Part:
    """A plain batch as a part: a run of one part, locked by its name, found again by its name on the API."""
    return Part(
        run=f"batch {name}", batch_name=name, dataset_name=dataset_name, model=model, words="the batch",
        again=f"it may exist; look before creating it again: cbatch list --name {shlex.quote(name)}",
        lost=look_for_batch_hint(name),
    )  # fmt: skip


def look_for_batch_hint(name: str) -> str:
    return (
        "the batch may have been created: look for it with "
        f"'cbatch list --name {shlex.quote(name)}' before creating it again"
    )


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
    found = newest_dataset(
        client,
        lambda dataset: (
            dataset.name == name
            and (dataset.created_at is None or dataset.created_at.timestamp() >= earliest)
        ),
    )
    return None if found is None else found.id


DATASET_LOOKUP = 500
"""How many of the newest datasets a look by name reads (:func:`newest_dataset`)."""


def newest_dataset(client: CohereClient, wanted: Callable[[Dataset], bool]) -> Dataset | None:
    """The newest of the :data:`DATASET_LOOKUP` newest datasets that ``wanted`` takes: the one look by name."""
    for dataset in client.iter_datasets(limit=DATASET_LOOKUP):
        if wanted(dataset):
            return dataset
    return None


# -- what an earlier run of a plain batch made ---------------------------------------------------


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
    client: CohereClient, candidates: Sequence[str], dataset_name: str, records: int
) -> str | None:
    """The dataset an interrupted ``create --file`` uploaded from these very bytes, if it can serve.

    ``candidates`` are the datasets this machine recorded as uploaded from the
    same path (or table run) with the same fingerprint, newest first. One is
    taken when it still exists under the name this run would give its own,
    with as many records as these bytes (once validated), did not
    fail validation, and no batch was made from it: its run stopped between
    the upload and the create. A dataset a batch was made from belongs to a
    run that finished: the same command then makes a new batch, as it always has.
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
        rows = dataset.num_rows if dataset.validation_status == "validated" else None
        if rows is not None and rows != records:
            continue  # counted once validated: another input of the same name
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
                f" (give another {reporter.spell('--name', 'name=')} to make a second one)"
            )
            return batch
    return None


def earlier_upload_of_file(
    client: CohereClient, place: str, report: FileReport, name: str, what: str, reporter: Reporter
) -> None:
    """Stop before the upload (:class:`EarlierUpload`) when a run stopped before its create sent these bytes.

    The same ``create --file`` (or ``--from``) run again after Ctrl-C, a CI
    cancel or a kill between the upload and the create takes the dataset that
    run left, found in the state store by ``place`` (the file's path, or a
    table run's identity: :func:`.send_file.upload_place`) and the bytes'
    fingerprint, and checked on the API (still there, same name, no batch
    made from it). A run killed while its upload's answer was on its way left
    only its intent (:func:`upload_intent`): its dataset is looked for by
    name, as a retry's is. ``what`` names the input in messages.

    A table run's requests are rendered again, and leave out what the answer
    cache holds: when they differ from the ones an earlier run of the same
    table uploaded, that dataset is not this input. It is said, and not taken.
    """
    from ..naming import plain_dataset_name
    from .lineage import open_store_or_warn

    if report.fingerprint is None:
        return
    store = open_store_or_warn(reporter, "looking for an upload an earlier run left")
    if store is None:
        return
    dataset_name = plain_dataset_name(name)
    candidates = store.datasets_uploaded_from(place, report.fingerprint)
    intent = store.upload_intent(place, report.fingerprint, dataset_name)
    if intent is not None and intent.step == "creating" and intent.dataset_id is not None:
        made = batch_made_from(client, intent.dataset_id, name)
        if (
            made is not None
        ):  # killed before the create's answer came back, or before it was recorded
            from .lineage import remember_new_batch

            reporter.info(
                f"resumed: batch {made.id} was created from {what} by an earlier run stopped before it "
                "was recorded; not creating another"
            )
            remember_new_batch(made, reporter)
            store.end_upload(place, report.fingerprint, dataset_name)
            raise EarlierBatch(made)
    if intent is not None and intent.dataset_id is not None and intent.dataset_id not in candidates:
        candidates.insert(0, intent.dataset_id)  # a table run's: no input file is recorded for it
    if intent is not None and intent.dataset_id is None:
        # killed while uploading: the answer, and so the id, never came back
        named = dataset_named(client, dataset_name, intent.started_at)
        if named is not None and named not in candidates:
            candidates.insert(0, named)
    if intent is None and place.startswith(TABLE_PLACE):
        _other_requests(store, place, report.fingerprint, dataset_name, reporter)
    if not candidates:
        return
    found = find_earlier_upload(client, candidates, dataset_name, report.rows)
    if found is not None:
        reporter.info(
            f"resumed: an earlier run stopped before its create uploaded {what} as dataset {found}; "
            "nothing is uploaded again"
        )
        raise EarlierUpload(found)


TABLE_PLACE = "table "
"""How a table run's identity begins where a file's path would be (:func:`.send_file.upload_place`)."""


def _other_requests(
    store: StateStore, place: str, fingerprint: str, dataset_name: str, reporter: Reporter
) -> None:
    """Say that an earlier run of the same table, stopped after its upload, rendered other requests.

    Same table, same options, other bytes: the answer cache answered other
    rows then. Its dataset is not this input, so it is not taken; its intent
    is dropped once said, and the requests are uploaded afresh.
    """
    from contextlib import suppress

    from ..errors import StoreError

    for other in store.uploads_at(place, dataset_name):
        if other.sha256 == fingerprint:
            continue
        left = (
            f"left dataset {other.dataset_id}"
            if other.dataset_id is not None
            else "was stopped while uploading"
        )
        reporter.warn(
            f"an earlier run of this table with these options {left}, but the requests rendered now "
            "differ from its (the answer cache answers other rows now): not carrying on from it; "
            "uploading these"
        )
        # Said once: a store that cannot drop it says it again next run (nothing is taken either way).
        with suppress(StoreError):
            store.end_upload(other.path, other.sha256, other.dataset_name)


def earlier_batch_of_file(
    client: CohereClient, file: Path, report: FileReport, name: str, model: str, reporter: Reporter
) -> None:
    """Stop before the upload (:class:`EarlierBatch`) when an earlier run already made this create's batch."""
    from ..naming import plain_dataset_name
    from ..spool import is_stdin

    if is_stdin(file) or not file.is_file():
        return  # a pipe has no time it last changed: nothing says a batch was made from it
    found = find_unrecorded_batch(
        client, name=name, model=model, dataset_name=plain_dataset_name(name),
        records=report.rows, since=file.stat().st_mtime, reporter=reporter,
    )  # fmt: skip
    if found is not None:
        raise EarlierBatch(found)


def upload_intent(
    place: str,
    report: FileReport,
    name: str,
    reporter: Reporter,
    step: str | None = "uploading",
    dataset_id: str | None = None,
) -> None:
    """Write a plain batch's send at ``step`` (``uploading``, ``uploaded``, ``creating``; None: done).

    The intent to upload these bytes from ``place`` (the file's path, or a
    table run's identity) is written between the check and the first byte
    sent; the dataset once the API names it; ``creating`` before the create
    call; and the intent is cleared once the batch is recorded. A store that
    cannot take it is one warning (the send goes on: only a kill in that step
    loses the look on the API).
    """
    from ..errors import StoreError
    from ..naming import plain_dataset_name
    from .lineage import open_store_or_warn

    if report.fingerprint is None:
        return
    store = open_store_or_warn(reporter, "the upload's intent")
    if store is None:
        return
    key = (place, report.fingerprint, plain_dataset_name(name))
    try:
        if step is None:
            store.end_upload(*key)
        elif step == "uploading":
            store.begin_upload(*key)
        else:
            store.advance_upload(*key, step, dataset_id)
    except StoreError as exc:
        reporter.warn(f"{exc}; the upload's intent is not recorded")


def batch_made_from(client: CohereClient, dataset_id: str, name: str) -> Batch | None:
    """The batch called ``name`` made from ``dataset_id``, among the newest :data:`EARLIER_UPLOAD_LOOKUP`."""
    return newest_batch(
        client, lambda batch: batch.input_dataset_id == dataset_id and batch.name == name
    )


def newest_batch(client: CohereClient, wanted: Callable[[Batch], bool]) -> Batch | None:
    """The newest of the :data:`EARLIER_UPLOAD_LOOKUP` newest batches that ``wanted`` takes: the one look by name."""
    for seen, batch in enumerate(client.iter_batches(page_size=100, order_by="created_at")):
        if seen >= EARLIER_UPLOAD_LOOKUP:
            break
        if wanted(batch):
            return batch
    return None
