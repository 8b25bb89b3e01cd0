"""A job's results: every part and every retry attempt, in one file, one record per ``custom_id``.

The parts' outputs go through the merged-results pipeline of ``cbatch
retry`` (:func:`cohere_batch_cli.results.merge.download_job`, itself
:func:`cohere_batch_cli.results.fetch_and_write`), so JSONL, CSV and Parquet,
the atomic write, link renewal and the clean-up on any exception are the
same as one batch's. Records come part after part, each part's in the order
the service wrote them (not input order).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import NotReady, ResultsExpired, UsageError

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch, DatasetPart
    from ..results import ResultsSummary
    from ..results.merge import MergedSummary
    from ..results.order import InputOrder
    from ..state.store import JobRecord, StateStore
    from .jobs import JobView, PartView
    from .reporting import Reporter
    from .results_spec import BinaryStdout, ResultsSpec


def fetch_job_results(
    client: CohereClient,
    job: JobRecord,
    store: StateStore,
    reporter: Reporter,
    spec: ResultsSpec,
    *,
    stdout: BinaryStdout | None = None,
) -> MergedSummary:
    """Write the job's merged results; with ``spec.delete_outputs``, delete the output datasets once written.

    ``delete_outputs`` deletes only outputs whose every record went into the
    file (with ``failed_only`` it is refused by :func:`.results.check`).

    ``partial`` writes the parts that ended and leaves the others out (a job
    stopped for storage frees room this way, with ``delete_outputs``). A part
    whose results were written and outputs deleted before is left out, and
    said so. ``input_order`` (the job's input file, :func:`input_order_of`) writes the
    records in its order, read first; a file that no longer reads back as its check read it is refused
    (exit 5) before a record is written.
    """
    from ..api.errors import NotFoundError
    from ..results import DEFAULT_STALL_TIMEOUT
    from ..results.columns import kind_of_dataset_type
    from ..results.merge import AttemptOutput, download_job
    from .datasets import wait_for_dataset
    from .fetching import (
        _report,
        destination_for,
        download_session,
        never_ran,
        output_gone,
        ran_of,
    )
    from .jobs import job_view
    from .results_spec import check

    fmt, table = check(spec)
    if spec.input_table is None and not spec.records:
        # A table job (jobs create --from): its table, found again and checked, before the download.
        from .table_results import input_table_of_job

        table_of = input_table_of_job(job.id, spec, fmt, reporter)
        if table_of is not None:
            if spec.columns or spec.body or spec.input_order:
                from ..errors import OutputOptionError

                flag = "--column" if spec.columns else "--body" if spec.body else "--input-order"
                raise OutputOptionError(
                    f"{flag} shapes a table of records, and job {job.id}'s results are "
                    f"{table_of.label} with the answers as columns, in its rows' order",
                    hint="add --records for the records' own table",
                )
            spec = replace(spec, input_table=table_of, join=None)
            fmt, table = check(spec)
    input_order = input_order_of(spec, job)
    view = job_view(client, job, store)
    delivered = [p for p in view.parts if p.record.delivered is not None]
    for part in delivered:
        reporter.info(
            f"part {part.record.part}: left out, its results were written to {part.record.delivered} and its outputs deleted"
        )
    chosen = [p for p in view.parts if p.record.delivered is None]
    waiting = [p.record.part for p in chosen if not p.ended]
    if waiting and spec.partial:
        reporter.warn(
            f"part{'' if len(waiting) == 1 else 's'} {', '.join(map(str, waiting))} not ended: left out of this file"
        )
        chosen = [p for p in chosen if p.ended]
    if not chosen and view.parts and not waiting:
        raise NotReady(
            f"every part's results of job {job.id} were written before and their outputs deleted"
        )
    _require_ended(view, chosen, reporter)
    parts: list[list[AttemptOutput]] = []
    outputs: list[str] = []
    made_by: dict[str, Batch] = {}  # output dataset id -> the batch that wrote it
    kind = None
    for part in chosen:
        attempts = []
        for number, batch in sorted(part.attempts.items()):
            found: tuple[DatasetPart, ...] = ()
            if batch.output_dataset_id:
                try:
                    dataset = wait_for_dataset(client, batch.output_dataset_id)
                except NotFoundError:
                    dataset = None
                if dataset is not None:
                    found = dataset.parts
                    kind = kind or kind_of_dataset_type(dataset.dataset_type)
                    outputs.append(batch.output_dataset_id)
                    made_by[batch.output_dataset_id] = batch
            if not found and batch.num_processed:
                raise ResultsExpired(
                    f"the output of part {part.record.part}, attempt {number} (batch {batch.id}) is gone: "
                    "the job's results would lose its records"
                )
            attempts.append(
                AttemptOutput(
                    number, batch.id, found, ran_of(batch)[0].records if number == 1 else None
                )
            )
        parts.append(attempts)

    def refresh_links() -> tuple[DatasetPart, ...]:
        """Every output read again for fresh links; one gone meanwhile follows a batch's rule."""
        fresh: list[DatasetPart] = []
        for dataset_id in outputs:
            try:
                fresh.extend(client.get_dataset(dataset_id).parts)
            except NotFoundError as exc:
                raise output_gone(made_by[dataset_id], exc, spec.dataset_ttl) from None
        return tuple(fresh)

    if not outputs and view.status == "canceled":  # as for a canceled batch: no file, exit 4
        raise never_ran(f"job {job.id}")
    every = [p for attempts in parts for a in attempts for p in a.parts]
    destination = destination_for(job.id, spec)
    with download_session(reporter, spec, destination) as (http, progress):
        merged = download_job(
            parts, destination, fmt=fmt, failed_only=spec.failed_only, join=spec.join, http=http,
            concurrency=spec.concurrency, progress=progress,
            stall_timeout=spec.read_timeout or DEFAULT_STALL_TIMEOUT, stdout=stdout,
            refresh_links=refresh_links if all(p.id for p in every) else None, table=replace(table, kind=kind),
            input_order=input_order,
        )  # fmt: skip
    read = f"job {job.id}" if spec.to_program else None
    _report(reporter, _own_words(merged.summary, job.id), destination, read=read)
    retried = sum(1 for attempts in parts if len(attempts) > 1)
    words = f"merged {len(parts)} parts of job {job.id}"
    if retried:
        words += (
            f" ({retried} with retries: "
            + ", ".join(
                f"{count:,} from attempt {n}" for n, count in sorted(merged.from_attempt.items())
            )
            + ")"
        )
    reporter.info(words)
    if spec.delete_outputs:
        where = str(destination) if destination is not None else "stdout"
        for dataset_id in outputs:
            try:
                client.delete_dataset(dataset_id)
            except NotFoundError:
                continue
        for part in chosen:
            store.mark_delivered(job.id, part.record.part, where)
        reporter.info(
            f"deleted {len(outputs)} output dataset{'' if len(outputs) == 1 else 's'}: the results are in the file"
        )
    return merged


def _own_words(summary: ResultsSummary, job_id: str) -> ResultsSummary:
    """The count warning names what ``jobs results`` offers: it takes no ``--join``, a dry run names them."""
    from ..results.reconcile import JOIN_NAMES_THEM

    if summary.count_mismatch is None or JOIN_NAMES_THEM not in summary.count_mismatch:
        return summary
    words = f" (cbatch jobs retry {job_id} --dry-run names them)"
    return replace(summary, count_mismatch=summary.count_mismatch.replace(JOIN_NAMES_THEM, words))


def _require_ended(view: JobView, chosen: list[PartView], reporter: Reporter) -> None:
    job = view.job
    waiting = [p.record.part for p in chosen if not p.ended]
    if job.step == "splitting" or not chosen or waiting:
        which = (
            f"part{'' if len(waiting) == 1 else 's'} {', '.join(map(str, waiting[:10]))}"
            if waiting
            else "its parts"
        )
        raise NotReady(
            f"job {job.id} is {view.status}: {which} not ended yet",
            hint=reporter.spell(
                f"wait with: cbatch jobs watch {job.id} (or --partial writes the parts that ended)",
                "wait for it with Job.wait()",
            ),
        )


def input_order_of(spec: ResultsSpec, job: JobRecord) -> InputOrder | None:
    """The input whose order a job's records are written in (``--input-order``), None without it."""
    if not spec.input_order:
        return None
    from ..results.order import InputOrder
    from .jobs import input_of

    path = input_of(job, spec.input_file)
    if path is None:
        raise UsageError(
            f"--input-order reads the job's input again, and {spec.input_file or job.path or 'it'} is not there or changed",
            hint="give it with --file FILE",
        )
    return InputOrder(path, job.fingerprint, f"job {job.id}")  # compared as it is read
