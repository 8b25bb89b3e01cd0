"""Download a finished batch's results: its output dataset, decoded and written atomically."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from ..errors import NotReady

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from ..results import ResultsSummary
    from .reporting import Reporter

ResultsFormat = Literal["jsonl", "csv"]
BinaryStdout = Callable[[], AbstractContextManager[IO[bytes]]]


@dataclass(frozen=True)
class FetchOptions:
    """What to write and how: ``output`` is a path, ``-`` for stdout, or None for BATCH_ID.FORMAT."""

    output: str | None = None
    fmt: ResultsFormat = "jsonl"
    failed_only: bool = False
    join: Path | None = None
    concurrency: int = 4
    read_timeout: float | None = None
    """Seconds to wait for each read from storage (the global --timeout); None: the default."""
    ca_bundle: str | None = None


def destination_for(batch_id: str, options: FetchOptions) -> Path | None:
    """The file results go to (None: stdout)."""
    if options.output == "-":
        return None
    return Path(options.output or f"{batch_id}.{options.fmt}")


def fetch_results(
    client: CohereClient,
    batch_id: str,
    reporter: Reporter,
    options: FetchOptions = FetchOptions(),
    *,
    stdout: BinaryStdout | None = None,
) -> ResultsSummary:
    """Wait for the output dataset of a finished batch, then download and decode it.

    ``stdout`` opens the binary stream results go to with ``-o -`` (the output
    object's, in a command). Raises :class:`NotReady` while the batch runs.
    """
    from ..api.client import Timeouts, storage_client
    from ..results import DEFAULT_STALL_TIMEOUT, download_results
    from .datasets import wait_validated

    batch = client.get_batch(batch_id)
    if not batch.status.is_terminal:
        raise NotReady(
            f"batch {batch.id} is {batch.status.label}, with no results yet",
            hint=f"wait with: cbatch watch {batch.id} (or add --wait)",
        )
    if not batch.output_dataset_id:
        raise NotReady(f"batch {batch.id} ended {batch.status.label} with no output dataset")
    dataset = wait_validated(client, batch.output_dataset_id, reporter)
    if dataset.validation_status == "failed":
        raise NotReady(f"output dataset {dataset.id} failed: {dataset.validation_error or 'no reason given'}")
    destination = destination_for(batch.id, options)
    progress = reporter.progress("downloading results") if destination is not None else None
    timeouts = Timeouts(read=options.read_timeout) if options.read_timeout else Timeouts()
    with storage_client(timeouts=timeouts, ca_bundle=options.ca_bundle) as http:
        summary = download_results(
            dataset.parts,
            destination,
            fmt=options.fmt,
            failed_only=options.failed_only,
            join=options.join,
            expected_records=batch.num_records,
            http=http,
            concurrency=options.concurrency,
            progress=progress,
            stall_timeout=options.read_timeout or DEFAULT_STALL_TIMEOUT,
            stdout=stdout,
        )
    where = "stdout" if destination is None else str(destination)
    noun = "record" if summary.records_written == 1 else "records"
    reporter.info(
        f"wrote {summary.records_written:,} {noun} to {where} "
        f"({summary.succeeded:,} succeeded, {summary.failed:,} failed)"
    )
    if summary.count_mismatch:
        reporter.warn(summary.count_mismatch)
    if options.join is not None:
        _compare_tokens(client, batch, options, reporter)
    return summary


def _compare_tokens(client: CohereClient, batch: Batch, options: FetchOptions, reporter: Reporter) -> None:
    """Set the --join file's token count beside the batch's, when the batch reports one."""
    from ..config import DEFAULT_ASSUMED_OUTPUT
    from ..tokens.source import FetchSettings
    from .estimating import CountOptions, compare_join

    assert options.join is not None
    fetch = FetchSettings(ca_bundle=options.ca_bundle, read_timeout=options.read_timeout)
    compare_join(client, batch, options.join, reporter, options=CountOptions(DEFAULT_ASSUMED_OUTPUT, None, fetch))
