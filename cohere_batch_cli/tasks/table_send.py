"""A table's requests for a send: rendered once into a file, and recorded once the batch is made.

``create --from`` and the Python API's ``client.create(table=...)`` make a
batch from a table the same way: the rows are rendered into a temporary
JSONL of requests (:mod:`.table_prompts`; rows that ask the same thing sent
once and answers the cache holds not sent, :mod:`.request_reuse`), the table's
files are fingerprinted before a row is read (so ``results`` can write the
table again and tell when it changed), the file goes through the send engine
(:func:`.send_file.create_from_file`) like any other, and once the batch
exists both are recorded under its input dataset: :meth:`TableRequests.sent`.
The file lives as long as the block, so a command that retries in the same
run (``create --from ... --retry-failed``) still reads it. A table job
(``jobs create --from``, ``client.create_job(table=...)``) keeps its requests
in the state folder instead (:func:`job_input_path`), and is made from them
by :func:`table_job`, the one place both take.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..config import Prices
    from ..state.store import JobRecord, StateStore
    from ..validate import FileReport
    from .jobs import JobOptions
    from .keyed import KeyOptions
    from .reporting import Reporter
    from .request_reuse import RequestMap
    from .table_prompts import TableSpec
    from .tables import FilePrint


@dataclass(frozen=True)
class TableRequests:
    """A table's rendered requests (``file``), and what to record of them once they are sent."""

    run: TableSpec
    file: Path
    reuse: RequestMap
    prints: list[FilePrint] | None
    """The table's files as they were before rendering; None for a dry run, which records nothing."""
    checked: FileReport | None = None
    """The local check of ``file``, made as it was written (asked with ``check``): the send takes it
    instead of reading the file again."""

    def fields(self) -> tuple[tuple[str, str], ...]:
        """The table's fingerprint (as it was before rendering) and the options that shaped the requests:
        :func:`.keyed.table_fields`, which a send's upload is found again by after a stop."""
        from .keyed import table_fields

        return table_fields(self.run, self.prints)

    def sent(self, dataset_id: str, reporter: Reporter) -> None:
        """The requests are dataset ``dataset_id``: keep the reuse map and the table's prints for results."""
        from .lineage import remember_table_input

        self.reuse.keep(dataset_id, reporter)  # for results to give every row its answer
        if self.prints is not None:  # a store that fails is a warning
            remember_table_input(dataset_id, self.run, self.prints, reporter)


@contextmanager
def table_requests_file(
    run: TableSpec,
    model: str,
    prices: Prices | None,
    reporter: Reporter,
    *,
    record: bool = True,
    keep_as: Path | None = None,
    check: bool = False,
) -> Iterator[TableRequests]:
    """The table's requests rendered whole (a missing column or a null stops it here), removed on exit.

    ``record``: fingerprint the table first, for :meth:`TableRequests.sent` (a dry run does not).
    ``keep_as``: the requests are a job's input, kept there past the block (each part, a resume
    and a retry read them again). ``check``: the requests are checked as they are written
    (:attr:`TableRequests.checked`), for a send of one batch, whose check then reads nothing (a
    job's split checks its input as it reads it; an estimate does not check).
    """
    from .request_reuse import table_requests
    from .table_prompts import requests_from_table
    from .tables import table_prints

    with ExitStack() as stack:
        reuse = stack.enter_context(table_requests(run, model, prices, reporter, kept=record))
        prints = table_prints(run.table) if record else None  # before the rows are read
        rendered = stack.enter_context(
            requests_from_table(run, reporter, reuse, model=model, keep_as=keep_as, check=check)
        )
        yield TableRequests(run, rendered.path, reuse, prints, rendered.checked)


def job_input_path(table: Path) -> Path:
    """Where a table job's requests are kept: the state folder, named after the table and a fresh token."""
    import secrets

    from ..state.store import state_dir
    from .jobs import TABLE_JOB_INPUTS

    name = f"{table.stem or 'table'}-{secrets.token_hex(4)}.jsonl"
    return state_dir()[0].resolve() / TABLE_JOB_INPUTS / name


def table_job(
    client: CohereClient,
    rendered: TableRequests,
    reporter: Reporter,
    options: JobOptions,
    store: StateStore,
    key: KeyOptions | None = None,
) -> tuple[JobRecord, Path]:
    """The job of a table's requests (rendered with :func:`job_input_path`), recorded, and the file it reads; nothing sent yet.

    With ``key``, the key's job, re-attached, or made with the key's run id. A
    re-attached job reads the requests it was made from while they are still
    there: the ones rendered again by this call are removed, so each repeat of
    a key leaves no copy of the table's requests behind.
    The requests go when the job cannot read them: refused by the check, or
    stopped before the job was written (a job stopped while splitting resumes
    from them). Once made, the reuse map and the table are kept under the
    job's id, for results to write the table again.
    """
    from ..errors import CbatchError
    from .jobs import create_job

    file = rendered.file
    try:
        if key is None:
            job = create_job(client, file, reporter, options, store)
        else:
            from .keyed import keyed_job

            job = keyed_job(client, file, reporter, options, store, key)
    except BaseException as exc:
        if isinstance(exc, CbatchError) or not _read_by_a_job(store, file):
            file.unlink(missing_ok=True)
        raise
    rendered.sent(job.id, reporter)
    if key is not None:
        from .jobs import input_of

        earlier = input_of(
            job, None
        )  # the requests the key's job was made from, if still as checked
        if earlier is not None and earlier.resolve() != file.resolve():
            file.unlink(missing_ok=True)
            return job, earlier
    return job, file


def _read_by_a_job(store: StateStore, file: Path) -> bool:
    """Whether a job recorded here reads ``file`` (True when the store cannot say: the file is kept)."""
    try:
        return any(job.path == str(file.resolve()) for job in store.jobs())
    except Exception:
        return True
