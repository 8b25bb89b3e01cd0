"""A batch's lineage: its root, its attempts, and what this machine remembers of them.

The truth is the API's: every retry is named after its root and its attempt
(:mod:`cohere_batch_cli.naming`), so one scan of ``GET /v2/batches`` (newest
first, back to the root's creation) finds every attempt of a root, whichever
machine made it. The state store caches that lineage for ``cbatch get``,
which makes no scan, and remembers the local file a batch was created from.

A store that cannot be used never stops a batch from being created: the
lineage is in the names, and cbatch says what it could not record.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..naming import Lineage, parse_batch_name

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from ..state.store import StateStore
    from .reporting import Reporter
    from .table_prompts import TableSpec
    from .tables import FilePrint

SCAN_LIMIT = 100_000
"""Batches a lineage scan reads at most when the list is not newest first (it cannot stop early)."""


@dataclass(frozen=True)
class Chain:
    """The attempts of one root, attempt 1 (the root itself) first, as the API shows them now."""

    root: Batch
    attempts: tuple[Batch, ...]
    numbers: tuple[int, ...]
    """The attempt number of each of ``attempts``."""

    @property
    def label(self) -> str:
        return parse_batch_name(self.root.name)[0]

    @property
    def head(self) -> Batch:
        """The newest attempt."""
        return self.attempts[-1]

    @property
    def head_number(self) -> int:
        return self.numbers[-1]

    @property
    def has_retries(self) -> bool:
        return len(self.attempts) > 1

    def number_of(self, batch_id: str) -> int | None:
        for batch, number in zip(self.attempts, self.numbers, strict=True):
            if batch.id == batch_id:
                return number
        return None

    def lineage(self, number: int) -> Lineage:
        """Attempt ``number``'s lineage: of the root batch, or of the job part the root is."""
        own = parse_batch_name(self.root.name)[1]
        if own is not None and own.job_id is not None and own.attempt == 1:
            return Lineage(job_id=own.job_id, part=own.part, attempt=number)
        return Lineage(root_batch_id=self.root.id, attempt=number)


def of_root(lineage: Lineage, root: Batch) -> bool:
    """Whether a later attempt's lineage is of ``root``: a retry naming it, or the same job part."""
    if lineage.attempt < 2:
        return False
    if lineage.root_batch_id is not None:
        return lineage.root_batch_id == root.id
    own = parse_batch_name(root.name)[1]
    return (
        own is not None
        and own.attempt == 1
        and (own.job_id, own.part) == (lineage.job_id, lineage.part)
    )


@dataclass(frozen=True)
class KnownLineage:
    """What can be said of a batch's lineage without asking the API: from its name and the store."""

    attempt: int
    root_id: str
    parent_id: str | None
    retried_by: str | None


def root_of(batch: Batch, store: StateStore | None) -> str:
    """The id of the root of ``batch``'s chain: from its name, else the store, else itself."""
    lineage = parse_batch_name(batch.name)[1]
    if lineage is not None and lineage.root_batch_id is not None:
        return lineage.root_batch_id
    known = store.batch(batch.id) if store is not None else None
    return known.root_id if known is not None else batch.id


def known_lineage(batch: Batch, store: StateStore | None) -> KnownLineage | None:
    """The lineage ``cbatch get`` shows: None for a batch with no retries known here."""
    lineage = parse_batch_name(batch.name)[1]
    root_id = root_of(batch, store)
    attempt = lineage.attempt if lineage is not None and lineage.root_batch_id == root_id else 1
    chain = store.chain(root_id) if store is not None else []
    by_attempt = {record.attempt: record.id for record in chain}
    parent = None
    if attempt > 1:
        parent = by_attempt.get(attempt - 1) or (root_id if attempt == 2 else None)
    child = by_attempt.get(attempt + 1)
    if attempt == 1 and child is None:
        return None
    return KnownLineage(attempt, root_id, parent, child)


def resolve_chain(
    client: CohereClient,
    batch: Batch,
    *,
    store: StateStore | None,
    reporter: Reporter,
    scan: bool = True,
) -> Chain:
    """Every attempt of ``batch``'s root, fresh from the API, and recorded in the store.

    ``scan`` reads the batch list back to the root's creation, so attempts made
    on another machine (or whose creation this machine never heard back from)
    are found; without it, only the batches the store knows are read.
    """
    root_id = root_of(batch, store)
    root = batch if root_id == batch.id else client.get_batch(root_id)
    found: dict[int, Batch] = {1: root}
    own = parse_batch_name(batch.name)[1]
    if own is not None and (
        own.root_batch_id == root_id or (root is not batch and of_root(own, root))
    ):
        found[own.attempt] = batch
    if scan:
        for other, lineage in _scan(client, root, reporter):
            current = found.get(lineage.attempt)
            if current is not None and current.id != other.id:
                first = min((current, other), key=_created)
                reporter.warn(
                    f"two batches are attempt {lineage.attempt} of {root_id}: {current.id} and {other.id}; "
                    f"following {first.id}, the first created"
                )
                other = first
            found[lineage.attempt] = other
    if store is not None:
        for record in store.chain(root_id):
            if record.attempt not in found:
                from ..api.errors import NotFoundError

                try:
                    found[record.attempt] = client.get_batch(record.id)
                except NotFoundError:
                    continue
    numbers = tuple(sorted(found))
    chain = Chain(root, tuple(found[n] for n in numbers), numbers)
    remember_chain(chain, store, reporter)
    return chain


def _created(batch: Batch) -> float:
    return batch.created_at.timestamp() if batch.created_at is not None else float("inf")


def _scan(client: CohereClient, root: Batch, reporter: Reporter) -> Iterator[tuple[Batch, Lineage]]:
    """The batches named as retries of ``root``, from a scan of the list, newest first."""
    since = root.created_at
    ordered = True
    previous = None
    for seen, batch in enumerate(
        client.iter_batches(page_size=1000, order_by="created_at"), start=1
    ):
        created = batch.created_at
        if created is not None and previous is not None and created > previous:
            ordered = False  # not newest first: an older batch may still follow
        previous = created if created is not None else previous
        lineage = parse_batch_name(batch.name)[1]
        if lineage is not None and of_root(lineage, root):
            yield batch, lineage
        if ordered and since is not None and created is not None and created < since:
            return
        if seen >= SCAN_LIMIT:
            reporter.warn(f"read {seen:,} batches looking for retries of {root.id}; stopped there")
            return


# -- recording --------------------------------------------------------------------------------


def open_store_or_warn(reporter: Reporter, what: str) -> StateStore | None:
    """The state store, or None after one warning saying what is not recorded."""
    from ..errors import StoreError
    from ..state.store import open_store

    try:
        return open_store()
    except StoreError as exc:
        reporter.warn(f"{exc}; {what} is not recorded" + (f" ({exc.hint})" if exc.hint else ""))
        return None


def store_can_record(reporter: Reporter, what: str) -> bool:
    """Whether the state store takes a write now; else one warning, ending with ``what`` follows."""
    from ..errors import StoreError
    from ..state.store import open_store

    try:
        open_store().check_writable()
    except StoreError as exc:
        reporter.warn(f"{exc}; {what}" + (f" ({exc.hint})" if exc.hint else ""))
        return False
    return True


def remember_chain(chain: Chain, store: StateStore | None, reporter: Reporter) -> None:
    """Record each attempt of ``chain`` with its root, parent and number."""
    if store is None:
        return
    from ..errors import StoreError

    try:
        previous: Batch | None = None
        for batch, number in zip(chain.attempts, chain.numbers, strict=True):
            remember_batch(
                store,
                batch,
                root_id=chain.root.id,
                attempt=number,
                parent_id=None if previous is None else previous.id,
            )
            previous = batch
    except StoreError as exc:
        reporter.warn(f"{exc}; the lineage of {chain.root.id} is not recorded")


def remember_new_batch(batch: Batch, reporter: Reporter) -> None:
    """Record a batch just created as the first of its own lineage; a store that fails is a warning.

    The batch exists whatever the store says, so its id must still reach the
    user: a store that cannot be written (read-only, a full disk, busy) never
    fails the command that made the batch. Nothing else is lost with the record:
    a batch's lineage is read back from its name.
    """
    from ..errors import StoreError

    store = open_store_or_warn(reporter, f"batch {batch.id}")
    if store is None:
        return
    try:
        remember_batch(store, batch, root_id=batch.id, attempt=1, parent_id=None)
    except StoreError as exc:
        reporter.warn(
            f"batch {batch.id} was created, but the state store could not record it: {exc}"
            + (f" ({exc.hint})" if exc.hint else "")
        )


def remember_batch(
    store: StateStore, batch: Batch, *, root_id: str, attempt: int, parent_id: str | None
) -> None:
    from ..state.store import BatchRecord

    store.record_batch(
        BatchRecord(
            batch.id, batch.name, batch.model, batch.input_dataset_id, root_id, parent_id, attempt,
            batch.raw.get("created_at") if isinstance(batch.raw.get("created_at"), str) else None,
        )
    )  # fmt: skip


def remember_input_file(
    dataset_id: str, path: Path, reporter: Reporter, fingerprint: str | None = None
) -> None:
    """Record the file ``dataset_id`` was uploaded from: path, size, fingerprint (a retry reads it again).

    ``fingerprint`` is the one the local check hashed as it read the file
    (:attr:`~cohere_batch_cli.validate.FileReport.fingerprint`): the file is not
    read again for it. Only a regular file is recorded (stdin and pipes are gone
    once read); the dataset keeps the original too (``keep_original_file``), so
    nothing is lost when this cannot be written.
    """
    from ..errors import StoreError
    from ..fingerprint import file_fingerprint
    from ..state.store import InputFile

    try:
        info = path.stat()
    except OSError:
        return
    import stat

    if not stat.S_ISREG(info.st_mode):
        return
    store = open_store_or_warn(reporter, f"the input file of dataset {dataset_id}")
    if store is None:
        return
    try:
        store.record_input_file(
            InputFile(
                dataset_id, str(path.resolve()), info.st_size,
                fingerprint or file_fingerprint(path), info.st_mtime_ns,
            )
        )  # fmt: skip
    except (OSError, StoreError) as exc:
        reporter.warn(f"could not record {path} as the input of dataset {dataset_id}: {exc}")


def remember_table_input(
    dataset_id: str, run: TableSpec, prints: list[FilePrint], reporter: Reporter
) -> None:
    """Record the table ``dataset_id``'s requests were rendered from (``create --from``), file by file.

    ``prints`` were taken before the rows were read for rendering; the answer
    schema is the one every request carried (``--schema``). ``results`` reads
    the table again to write it with the answers as columns, and refuses it,
    saying what changed, if it no longer matches the prints.
    """
    import json

    from ..errors import StoreError
    from ..state.store import TableInput, TableInputFile
    from .tables import table_fingerprint

    store = open_store_or_warn(reporter, f"the table of dataset {dataset_id}")
    if store is None:
        return
    response_format = run.options.get("response_format")
    schema = response_format.get("json_schema") if isinstance(response_format, dict) else None
    try:
        store.record_table_input(
            TableInput(
                dataset_id, str(run.table.resolve()), run.id_column,
                json.dumps(schema) if schema is not None else None, table_fingerprint(prints),
                tuple(TableInputFile(p.name, p.size, p.fingerprint) for p in prints),
            )
        )  # fmt: skip
    except (OSError, StoreError) as exc:
        reporter.warn(f"could not record {run.table} as the table of dataset {dataset_id}: {exc}")


def same_file(path: Path, size: int, recorded: str, *, copy_to: Path | None = None) -> str | None:
    """None when ``path`` still holds what was recorded (its size, then its fingerprint); else what changed.

    With ``copy_to``, the bytes compared are copied there in the same read: what the caller
    reads next, so nothing it sends comes from a later read of ``path``.
    """
    from ..fingerprint import same_fingerprint

    try:
        now = os.stat(path).st_size
        if now != size:
            return f"it was {size:,} bytes and is {now:,} now"
        if not same_fingerprint(path, recorded, copy_to=copy_to):
            return "its content changed (another fingerprint)"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    return None
