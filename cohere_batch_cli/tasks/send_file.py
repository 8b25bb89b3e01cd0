"""A batch made from a file (``create --file``, ``create --from``): a run of one part, sent by :mod:`.sending`.

The file is checked (and guarded: context, budget) in one read whose bytes
are the ones sent; before a byte is sent, what an earlier run of the same
command left is looked for: a dataset it uploaded and never made a batch from
(recorded here by the file's path and fingerprint; a table's requests, a
temporary file, by the run's identity instead: :func:`upload_place`), or,
when the state store cannot record anything, the batch itself on the API.
The options arrive as one value, :class:`SendSpec`, built once from the
command's flags.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Limits
from .estimating import GuardOptions

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from ..idempotency import Keyed
    from ..validate import FileReport
    from .budget import Budget
    from .keyed import KeyOptions
    from .reporting import Reporter
    from .watching import WatchSpec


KEYED_CARRY_ON = "run the same create again with the same idempotency key: it carries on from"
"""What carries on from a keyed send stopped between its upload and its create, in the words of both
doors (``cbatch create --idempotency-key``, ``client.create(..., idempotency_key=)``). Not ``create
--dataset``: that batch would not carry the key's names, so the key, called again, would find the
dataset alone and make a second batch of it. The same create with the same key finds the dataset by
the key's name, on this machine or another, and makes the one batch."""


@dataclass(frozen=True)
class SendSpec:
    """Everything a send from a file honours, parsed once from a command's flags and passed whole.

    As :class:`~cohere_batch_cli.tasks.watching.WatchSpec` is for a watch: an
    option cannot be accepted by the command and lost on its way here.
    """

    file: Path
    """The requests: the user's JSONL file (``-``: stdin), or a table's requests in a temporary file."""
    model: str
    name: str
    """The batch's name: ``--name``, else the input's own (the file's stem, the table's)."""
    dataset_name: str | None = None
    """The input dataset's name; None: the input's own (``--name`` not given)."""
    dataset_type: str | None = None
    source: Path | None = None
    """What the requests were made from when it is not ``file`` (a table); None: ``file`` is the user's own,
    recorded for a later retry and looked for after a stop."""
    label: str | None = None
    """How messages name the input when it is not ``file`` (a table's requests)."""
    guard: GuardOptions = field(default_factory=GuardOptions)
    budget: Budget | None = None
    limits: Limits = field(default_factory=Limits)
    wait_lock: float = 0.0
    """How long to wait for another cbatch sending a batch of this name on this machine (``--wait-lock``)."""
    carry_on: Callable[[str], str] | None = None
    """The command that carries on from the uploaded dataset (its id), said when a stop falls before the create;
    not for a keyed send (:data:`KEYED_CARRY_ON`)."""
    key: KeyOptions | None = None
    """An idempotency key (``--idempotency-key``): the same request again is re-attached to its run (:mod:`.keyed`)."""
    checked: FileReport | None = None
    """The check of ``file`` made as cbatch wrote it (a table's requests): it is not read again to be checked."""
    table_fields: tuple[tuple[str, str], ...] = ()
    """A table run's fingerprint and the options that shape its requests (:func:`.keyed.table_fields`):
    with the model and the names, what a run stopped after its upload is found again by (:func:`upload_place`)."""


@dataclass(frozen=True)
class Sent:
    """What a send came to: the batch, the dataset it was made from, and whether an earlier run made it."""

    batch: Batch
    dataset_id: str
    found: bool = False
    """The batch was made by an earlier run of the same command (the store could not record it): not created now."""


def upload_place(spec: SendSpec) -> str | None:
    """Where a send's upload is recorded, for a run stopped after it to be found again; None: nowhere.

    A user's file is its resolved path (stdin and pipes are gone once read).
    A table's requests are a temporary file of the run's: its identity is the
    table's fingerprint and the options that shape its requests (the fields an
    idempotency key binds, :func:`.keyed.table_fields`), the model and the
    names, never the file's path; the bytes it rendered are matched too, so a
    run whose answer cache answered other rows does not take the earlier one's
    dataset.
    """
    from ..spool import is_stdin

    if spec.source is None:
        return None if is_stdin(spec.file) or not spec.file.is_file() else str(spec.file.resolve())
    if not spec.table_fields:
        return None
    import hashlib
    import json

    from .sending import TABLE_PLACE

    identity = dict(spec.table_fields)
    identity.update(
        model=spec.model, name=spec.name, dataset_name=spec.dataset_name or "",
        dataset_type=spec.dataset_type or "",
    )  # fmt: skip
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f"{TABLE_PLACE}{digest}"


def send_lock(spec: SendSpec) -> AbstractContextManager[None]:
    """The run lock of a batch of this name: a command holds it for all it does with the batch (its watch too)."""
    from ..idempotency import run_id_of
    from ..state.runlock import run_lock
    from ..state.store import state_dir

    run = f"batch {spec.name}" if spec.key is None else f"key {run_id_of(spec.key.key)}"
    return run_lock(state_dir()[0], run, wait=spec.wait_lock)


def create_from_file(
    client: CohereClient, spec: SendSpec, reporter: Reporter, *, watching: WatchSpec | None = None
) -> Sent:
    """Check, upload, validate and create: the batch of ``spec.file``, or the one an earlier run made.

    ``watching``: the watch that follows the send, whose deadline
    (``--timeout``, the command's one clock) bounds the validation too. A stop
    between the upload and the create (Ctrl-C, a signal, the deadline) says
    which dataset holds the file: the same command run again takes it,
    uploading nothing (a table's requests too, while they render to the same
    bytes: :data:`TABLE_CARRY_ON`).
    """
    with send_lock(spec):
        return _send(client, spec, reporter, watching)


@dataclass
class FileSteps:
    """A plain batch's steps (:class:`.sending.Steps`): the input file recorded once uploaded, the batch once made."""

    spec: SendSpec
    reporter: Reporter
    recorded: bool
    report: FileReport | None = None
    """What the check read: the fingerprint it hashed (the file is not read again for it)."""
    uploads: list[str] = field(default_factory=list)
    keyed: Keyed | None = None
    """The idempotency key bound to this send's request, once the check has its fingerprint."""
    place: str | None = None
    """Where the upload's intent is written (:func:`upload_place`); None: nowhere."""

    def still_wanted(self) -> None:
        pass  # nothing can cancel a batch before it exists

    def uploading(self) -> None:
        pass  # the intent names the bytes: written by the guard, once the check has their fingerprint

    def uploaded(self, dataset_id: str) -> None:
        """Recorded before validation: a run stopped during it is found again by its bytes (a table's
        requests are a temporary file: no input file to record for a retry, only the intent's step). Heard
        from the upload itself, before it says the id, so a stop right after the id is shown still knows
        it; once only."""
        from .lineage import remember_input_file

        if dataset_id in self.uploads:
            return
        self.uploads.append(dataset_id)
        if self._intent():
            assert self.report is not None
            if self.spec.source is None:
                fingerprint = self.report.fingerprint
                remember_input_file(dataset_id, self.spec.file, self.reporter, fingerprint)
            self._step("uploaded", dataset_id)

    def creating(self) -> None:
        if self._intent():  # a run killed before the answer looks for a batch made from the dataset
            self._step("creating")

    def created(self, batch: Batch) -> None:
        from .lineage import remember_new_batch

        remember_new_batch(batch, self.reporter)  # a store that fails is a warning: the id is shown
        if self.keyed is not None:
            from .keyed import made

            made(self.keyed, batch, self.reporter)
        if self._intent():
            self._step(None)

    def _intent(self) -> bool:
        """Whether this send's steps are written: an input with a place (:func:`upload_place`), checked,
        with a store to write in."""
        return self.recorded and self.place is not None and self.report is not None

    def _step(self, step: str | None, dataset_id: str | None = None) -> None:
        from .sending import upload_intent

        assert self.report is not None and self.place is not None
        upload_intent(self.place, self.report, self.spec.name, self.reporter, step, dataset_id)


def _send(
    client: CohereClient, spec: SendSpec, reporter: Reporter, watching: WatchSpec | None
) -> Sent:
    from . import sending
    from .datasets import upload_file, validated
    from .estimating import guard_upload
    from .lineage import store_can_record
    from .sending import EarlierBatch, EarlierUpload

    # A store that cannot record this run: only the API can say whether an earlier run made its batch.
    recorded = store_can_record(
        reporter, "looking for a batch an earlier run made before creating one"
    )
    place = upload_place(spec)
    steps = FileSteps(spec, reporter, recorded, place=place)
    part = sending.plain_part(spec.name, spec.model, spec.dataset_name or "")

    def guard(report: FileReport) -> str | None:
        """The one step between check and upload; it keeps the fingerprint the check hashed.

        Under an idempotency key it looks for the key's run first, and names
        the dataset (and then the batch) after the key and this request.
        """
        nonlocal part
        steps.report = report
        guard_upload(
            client, report, model_name=spec.model, options=spec.guard, budget=spec.budget,
            reporter=reporter,
        )  # fmt: skip
        if spec.key is not None:
            from ..naming import keyed_batch_name, keyed_dataset_name
            from .keyed import bind, look

            keyed = steps.keyed = bind(spec, report)
            run_id, digest = keyed.run_id, keyed.digest
            part = sending.plain_part(
                keyed_batch_name(spec.name, run_id, digest), spec.model,
                keyed_dataset_name(spec.dataset_name or spec.name, run_id, digest),
            )  # fmt: skip
            look(
                client, keyed, report, spec.model, reporter
            )  # the names first: a dataset found is created from
            if recorded and place is not None:
                sending.upload_intent(place, report, spec.name, reporter)
            return part.dataset_name
        if not recorded:
            sending.earlier_batch_of_file(
                client, spec.source or spec.file, report, spec.name, spec.model, reporter
            )
        elif place is not None:
            what = str(spec.file) if spec.source is None else f"the requests of {spec.source.name}"
            sending.earlier_upload_of_file(client, place, report, spec.name, what, reporter)
            sending.upload_intent(
                place, report, spec.name, reporter
            )  # the last step before a byte is sent
        return None

    def send() -> str:
        return upload_file(
            client, spec.file, reporter, dataset_type=spec.dataset_type, limits=spec.limits,
            name=spec.dataset_name, keep_original_file=True, before_upload=guard, wait=False,
            on_uploaded=steps.uploaded, label=spec.label, checked=spec.checked,
        )  # fmt: skip

    deadline = (
        watching.deadline if watching is not None else None
    )  # --timeout: the validation counts too
    try:
        try:
            dataset = sending.upload(None, part, steps, send)
        except EarlierBatch as earlier:  # nothing uploaded, nothing created
            return Sent(earlier.batch, earlier.batch.input_dataset_id or "", found=True)
        except EarlierUpload as earlier:  # uploaded by a run stopped before its create
            dataset = earlier.dataset_id
            steps.uploaded(
                dataset
            )  # recorded with its bytes (found by name, it was not), its intent done
        if deadline is not None:  # the upload was finished; the create is not begun
            _validated_in_time(client, dataset, spec, deadline, reporter)
        else:
            validated(client, dataset, reporter)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: say what the upload left
        if steps.uploads:
            reporter.info(
                "stopped after the upload, before the batch was created: "
                + _left_behind(spec, steps.uploads[-1])
            )
        raise
    return Sent(sending.create(client, None, part, steps, dataset, reporter), dataset)


TABLE_CARRY_ON = (
    "the same create run again carries on from it, uploading nothing (unless the answer cache "
    "answers other rows by then: it then says so and uploads the requests it renders)"
)
"""What carries on from a table run stopped before its create, in the words of both doors (``cbatch
create --from``, ``client.create(table)``): the same create, which renders the table again and finds
the dataset by the run's identity and the requests' bytes (:func:`upload_place`). Not ``create
--dataset``: that would be a plain batch, whose results are records, not the table."""


def _left_behind(spec: SendSpec, dataset: str) -> str:
    """What a send stopped between its upload and its create left, and what goes on from it."""
    if spec.key is not None:
        return f"dataset {dataset} holds the file; {KEYED_CARRY_ON} it (it uploads nothing)"
    if spec.source is not None:
        return f"dataset {dataset} holds the requests of {spec.source.name}; {TABLE_CARRY_ON}"
    again = "; the same command run again uses it (it uploads nothing)"
    again += f", and so does: {spec.carry_on(dataset)}" if spec.carry_on else ""
    return f"dataset {dataset} holds the file{again}"


def _validated_in_time(
    client: CohereClient, dataset: str, spec: SendSpec, deadline: float, reporter: Reporter
) -> None:
    """The new dataset validated before the deadline; else exit 10, no batch created, and the command that carries on."""
    import time

    from ..errors import WaitTimeout
    from .datasets import validated

    if spec.key is not None:
        hint: str | None = f"{KEYED_CARRY_ON} dataset {dataset} (it uploads nothing)"
    elif spec.source is not None:
        hint = f"dataset {dataset} holds the requests of {spec.source.name}; {TABLE_CARRY_ON}"
    else:
        hint = f"carry on with: {spec.carry_on(dataset)}" if spec.carry_on is not None else None
    try:
        left = deadline - time.monotonic()
        validated(client, dataset, reporter, timeout=max(left, 0.001))
    except WaitTimeout:
        raise WaitTimeout(
            f"--timeout ran out while dataset {dataset} was validated: no batch was created",
            hint=hint,
        ) from None
    if time.monotonic() >= deadline:
        raise WaitTimeout("--timeout ran out after the upload: no batch was created", hint=hint)
