"""Download a finished batch's results: its output dataset, decoded and written atomically.

This task owns the API client, so it is what reads the output dataset again
when storage refuses links that expired mid-download (the results layer asks
through a callback), and what tells results that are gone with the dataset's
lifetime (exit 13) from an output that is merely not there (exit 4).

A batch with retries (``cbatch retry``) gets merged results by default: one
record per ``custom_id`` across its attempts (:mod:`cohere_batch_cli.results.merge`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import NotReady, ResultsExpired
from ..units import counted, lifetime

if TYPE_CHECKING:
    from datetime import datetime

    from .._httpx import httpx
    from ..api.client import CohereClient
    from ..api.errors import NotFoundError
    from ..api.models import Batch, Dataset, DatasetPart
    from ..output.progress import ProgressSink
    from ..results import Reported, ResultsSummary
    from .lineage import Chain
    from .reporting import Reporter
    from .results_spec import BinaryStdout, ResultsSpec


@contextmanager
def download_session(
    reporter: Reporter, spec: ResultsSpec, destination: Path | None
) -> Iterator[tuple[httpx.Client, ProgressSink | None]]:
    """What every download of results opens: the storage client, the bar, the words on a stop.

    The client carries no API key (part links are public storage); the bar is
    shown for a file, not for stdout (where it would mix with the records); on
    Ctrl-C, SIGTERM or SIGHUP the reporter says what was left and how to go on.
    """
    from ..api.client import Timeouts, storage_client

    progress = reporter.progress("downloading results") if destination is not None else None
    timeouts = Timeouts(read=spec.read_timeout) if spec.read_timeout else Timeouts()
    with (
        storage_client(timeouts=timeouts, ca_bundle=spec.ca_bundle) as http,
        _say_where_on_stop(reporter, destination),
    ):
        yield http, progress


@contextmanager
def _say_where_on_stop(reporter: Reporter, destination: Path | None) -> Iterator[None]:
    """On Ctrl-C, SIGTERM or SIGHUP: what was left behind, and how to pick it up again."""
    from ..atomic import describe_destination
    from ..errors import stop_word

    try:
        yield
    except KeyboardInterrupt as exc:
        if destination is None or describe_destination(destination).in_place:
            where = "stdout" if destination is None else str(destination)
            reporter.info(
                f"{stop_word(exc)}: {where} got only the first records; run the command again for all"
            )
        else:
            reporter.info(
                f"{stop_word(exc)}: nothing was written to {destination} and no partial file is left; "
                "run the same command again to download the results"
            )
        raise


def destination_for(batch_id: str, spec: ResultsSpec) -> Path | None:
    """The file results go to (None: stdout)."""
    from ..results.formats import choose_format

    if spec.output == "-":
        return None
    return Path(spec.output or f"{batch_id}.{choose_format(spec.output, spec.fmt)}")


def fetch_results(
    client: CohereClient,
    batch_id: str,
    reporter: Reporter,
    spec: ResultsSpec,
    *,
    stdout: BinaryStdout | None = None,
) -> ResultsSummary:
    """Wait for the output dataset of a finished batch, then download and decode it.

    ``stdout`` opens the binary stream results go to with ``-o -`` (the output
    object's, in a command). Raises :class:`NotReady` while the batch runs.
    """
    from ..api.errors import NotFoundError
    from ..results import DEFAULT_STALL_TIMEOUT, download_results
    from ..results.columns import kind_of_dataset_type
    from .datasets import wait_validated
    from .results_spec import check

    fmt, table = check(spec)
    batch = client.get_batch(batch_id)
    if not batch.status.is_terminal:
        raise NotReady(
            f"batch {batch.id} is {batch.status.label}, with no results yet",
            hint=reporter.spell(
                f"wait with: cbatch watch {batch.id} (or add --wait)",
                "wait for it with Run.wait(), then read them",
            ),
        )
    if not batch.output_dataset_id:
        raise _no_output(batch, spec.dataset_ttl)
    try:
        dataset = wait_validated(client, batch.output_dataset_id, reporter)
    except NotFoundError as exc:
        raise output_gone(batch, exc, spec.dataset_ttl) from None
    if dataset.validation_status == "failed":
        raise NotReady(
            f"output dataset {dataset.id} failed: {dataset.validation_error or 'no reason given'}"
        )
    if spec.input_table is None and not spec.records:
        # A table run: its table, found again and checked, before the download.
        from .table_results import input_table_of

        found = input_table_of(client, batch, spec, fmt, reporter)
        if found is not None:
            if spec.columns or spec.body:
                from ..errors import OutputOptionError

                raise OutputOptionError(
                    f"{'--column' if spec.columns else '--body'} shapes a table of records, and "
                    f"batch {batch.id}'s results are {found.label} with the answers as columns",
                    hint="add --records for the records' own table",
                )
            spec = replace(spec, input_table=found, join=None)
            fmt, table = check(spec)

    def refresh_links() -> tuple[DatasetPart, ...]:
        """The output dataset read again: each part with a fresh link (called from a download thread)."""
        try:
            return client.get_dataset(dataset.id).parts
        except NotFoundError as exc:
            raise output_gone(batch, exc, spec.dataset_ttl) from None

    schema_run = spec.input_table is not None and spec.input_table.typed is not None
    if spec.merge and (
        schema_run or _may_have_retries(batch)
    ):  # invalid answers: succeeded, retried
        from ..state.store import existing_store
        from .lineage import resolve_chain

        chain = resolve_chain(client, batch, store=existing_store(), reporter=reporter)
        if chain.has_retries:
            return _fetch_merged(
                client, chain, batch, reporter, spec, stdout, known={batch.id: dataset}
            )
    reported, never_ran = ran_of(batch)
    destination = destination_for(batch.id, spec)
    with download_session(reporter, spec, destination) as (http, progress):
        summary = download_results(
            dataset.parts,
            destination,
            fmt=fmt,
            failed_only=spec.failed_only,
            join=spec.join,
            expected_records=reported.records,
            http=http,
            concurrency=spec.concurrency,
            progress=progress,
            stall_timeout=spec.read_timeout or DEFAULT_STALL_TIMEOUT,
            stdout=stdout,
            refresh_links=refresh_links,
            reported=reported,
            table=replace(table, kind=kind_of_dataset_type(dataset.dataset_type)),
        )
    _report(reporter, summary, destination, read=f"batch {batch.id}" if spec.to_program else None)
    if never_ran:
        reporter.info(
            f"batch {batch.id} was canceled: {counted(never_ran, 'record')} of "
            f"{batch.num_records:,} never ran, so {'it has' if never_ran == 1 else 'they have'} no result"
        )
    if spec.join is not None:
        _compare_tokens(client, batch, spec, reporter)
    return summary


def _report(
    reporter: Reporter,
    summary: ResultsSummary,
    destination: Path | None,
    *,
    read: str | None = None,
) -> None:
    """What a download wrote, in words; ``read``: the run a program read the records of, as it went.

    A command writes to a file or stdout; a program (``Run.records()``) reads
    the records itself, and is told what it read and from which run: the
    stream it was handed is no stdout of its own.
    """
    where = "stdout" if destination is None else str(destination)
    counts = f"({summary.succeeded:,} succeeded, {summary.failed:,} failed)"
    if (
        summary.rows is not None
    ):  # a table run's table: its rows, not the records, are what was written
        reporter.info(summary.rows.sentence(where, read=read))
    elif read is not None:
        reporter.info(f"read {counted(summary.written, 'record')} of {read} {counts}")
    else:
        reporter.info(f"wrote {counted(summary.written, 'record')} to {where} {counts}")
    if summary.link_refreshes:
        times = "once" if summary.link_refreshes == 1 else f"{summary.link_refreshes} times"
        reporter.info(
            f"part links expired during the download: the output dataset was read again ({times}) "
            "for fresh ones, and each part resumed where it stopped"
        )
    if summary.join is not None:
        reporter.info(
            f"joined {summary.join.matched:,} of {summary.join.results:,} results "
            f"with their requests from {summary.join.path}"
        )
    if summary.count_mismatch:
        reporter.warn(summary.count_mismatch)
    for warning in summary.warnings:
        reporter.warn(warning)


def _may_have_retries(batch: Batch) -> bool:
    """Whether a chain is worth looking for: a retry itself, or a batch not every record of which succeeded.

    A batch whose every record succeeded was never retried by cbatch, so its
    results cost no extra request.
    """
    from ..naming import parse_batch_name

    if parse_batch_name(batch.name)[1] is not None:
        return True
    return batch.num_failed_records > 0 or (batch.num_records or 0) > batch.num_successful_records


def _fetch_merged(
    client: CohereClient,
    chain: Chain,
    asked: Batch,
    reporter: Reporter,
    spec: ResultsSpec,
    stdout: BinaryStdout | None,
    known: dict[str, Dataset],
) -> ResultsSummary:
    """The merged results of every finished attempt of ``chain`` (``known``: output datasets already read, by batch)."""
    from ..api.errors import NotFoundError
    from ..results import DEFAULT_STALL_TIMEOUT
    from ..results.columns import kind_of_dataset_type
    from ..results.merge import AttemptOutput, download_merged
    from .datasets import wait_validated
    from .results_spec import check

    fmt, table = check(spec)
    attempts = []
    dataset_ids: list[str] = []
    for batch, number in zip(chain.attempts, chain.numbers, strict=True):
        if not batch.status.is_terminal:
            reporter.warn(
                f"attempt {number} (batch {batch.id}) is still {batch.status.label}: its records are not merged yet"
            )
            continue
        parts: tuple[DatasetPart, ...] = ()
        if batch.id in known:
            parts = known[batch.id].parts
        elif batch.output_dataset_id:
            try:
                parts = wait_validated(client, batch.output_dataset_id, reporter).parts
            except NotFoundError:
                parts = ()
        if parts and batch.output_dataset_id:
            dataset_ids.append(batch.output_dataset_id)
        if not parts and batch.num_processed:
            raise ResultsExpired(
                f"the output of attempt {number} (batch {batch.id}) is gone: the merged results would lose its records",
                hint=f"download each attempt's own with: cbatch results ID --own (this one: {asked.id})",
            )
        attempts.append(
            AttemptOutput(number, batch.id, parts, batch.num_records if number == 1 else None)
        )
    if len(attempts) < 2:
        return fetch_results(
            client, asked.id, reporter, dataclasses.replace(spec, merge=False), stdout=stdout
        )
    every_part = [part for a in attempts for part in a.parts]
    refresh_links = None
    if all(part.id for part in every_part):  # ids tell parts of several datasets apart

        def refresh_links() -> tuple[DatasetPart, ...]:
            """Every attempt's output read again, for fresh links (called from a download thread)."""
            try:
                return tuple(
                    part
                    for dataset_id in dataset_ids
                    for part in client.get_dataset(dataset_id).parts
                )
            except NotFoundError as exc:
                raise output_gone(asked, exc, spec.dataset_ttl) from None

    kind = kind_of_dataset_type(known[asked.id].dataset_type) if asked.id in known else None
    destination = destination_for(asked.id, spec)
    with download_session(reporter, spec, destination) as (http, progress):
        merged = download_merged(
            attempts,
            destination,
            fmt=fmt,
            failed_only=spec.failed_only,
            join=spec.join,
            http=http,
            concurrency=spec.concurrency,
            progress=progress,
            stall_timeout=spec.read_timeout or DEFAULT_STALL_TIMEOUT,
            stdout=stdout,
            refresh_links=refresh_links,
            table=replace(table, kind=kind),
        )
    summary = merged.summary
    _report(reporter, summary, destination, read=f"batch {asked.id}" if spec.to_program else None)
    pieces = [f"{merged.from_attempt.get(a.number, 0):,} from attempt {a.number}" for a in attempts]
    reporter.info(f"merged {len(attempts)} attempts of batch {chain.root.id}: " + ", ".join(pieces))
    return summary


def ran_of(batch: Batch) -> tuple[Reported, int]:
    """What a batch's output should hold, and how many records a cancel stopped before they ran.

    A canceled batch's output holds the records it finished; those it never ran are
    not missing (nothing to warn of), they are said as such. The one rule for a
    canceled batch's and a canceled job's results (docs/scripting.md).
    """
    from ..api.models import BatchStatus
    from ..results import Reported

    reported = Reported.from_batch(batch.raw)
    never = reported.neither
    if batch.status != BatchStatus.CANCELED or not never or never < 0:
        return reported, 0
    assert reported.records is not None
    return replace(reported, records=reported.records - never), never


def never_ran(what: str) -> Exception:
    """A canceled batch or job that finished no record: no results, exit 4, no file (``results``, ``jobs results``)."""
    from ..errors import NoResults

    return NoResults(f"{what} was canceled before any record ran: there are no results to download")


def _no_output(batch: Batch, ttl: float) -> Exception:
    """A finished batch that names no output dataset: never had one, expired, or deleted early."""
    from ..api.errors import NotFoundError
    from ..api.models import BatchStatus
    from ..lifetimes import expired, results_expire_at, wrote_output

    if not wrote_output(batch):
        if (
            batch.status == BatchStatus.CANCELED
        ):  # the one rule of a cancel that ran nothing (scripting.md)
            return never_ran(f"batch {batch.id}")
        return NotReady(
            f"batch {batch.id} ended {batch.status.label} with no output dataset: there are no results"
        )
    ends = results_expire_at(batch, ttl)
    if expired(ends):
        return _expired(batch, ends, ttl)
    return NotFoundError(
        f"batch {batch.id} ended {batch.status.label}, but its output dataset is gone: "
        f"it was deleted before its {lifetime(ttl)} were up",
        hint="there are no results to download",
    )


def output_gone(batch: Batch, exc: NotFoundError, ttl: float) -> Exception:
    """The output dataset answered 404: expired when its lifetime has passed, else not found (4).

    The one rule for an output that is gone, before a download or in the middle of one,
    of a batch's results or of a job's (:mod:`.jobs_results`).
    """
    from ..lifetimes import expired, results_expire_at

    ends = results_expire_at(batch, ttl)
    if expired(ends):
        return _expired(batch, ends, ttl)
    # A batch cancelled after it started may name an output dataset that was never written.
    exc.hint = (
        f"batch {batch.id} ended {batch.status.label} and names output dataset "
        f"{batch.output_dataset_id}, which does not exist: there are no results to download"
    )
    return exc


def _expired(batch: Batch, ends: datetime | None, ttl: float) -> ResultsExpired:
    stamp = ends.strftime("%Y-%m-%d %H:%M:%SZ") if ends is not None else "a while ago"
    return ResultsExpired(
        f"the results of batch {batch.id} expired at {stamp}: the service deletes a dataset "
        f"{lifetime(ttl)} after it is made, and the batch's output dataset is gone"
    )


def _compare_tokens(
    client: CohereClient, batch: Batch, spec: ResultsSpec, reporter: Reporter
) -> None:
    """Set the --join file's token count beside the batch's, when the batch reports one."""
    from ..config import DEFAULT_ASSUMED_OUTPUT
    from ..tokens.source import FetchSettings
    from .estimating import CountOptions, compare_join

    assert spec.join is not None
    fetch = FetchSettings(ca_bundle=spec.ca_bundle, read_timeout=spec.read_timeout)
    compare_join(
        client,
        batch,
        spec.join,
        reporter,
        options=CountOptions(DEFAULT_ASSUMED_OUTPUT, None, fetch),
    )
