"""Check a JSONL file, upload it as a dataset, and wait for the API to validate it.

The local check reads the whole file before a byte is sent, so a file with a
bad line is never uploaded; its problems are reported as ``path:LINE: message``,
the form editors and CI logs link to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputRejected, UsageError, WaitTimeout

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Dataset
    from ..validate import FileReport
    from .reporting import Reporter

VALIDATION_TIMEOUT = 1800.0
"""Seconds to wait for a dataset to finish validating (exit 10 past it)."""



def check_input(
    path: Path, dataset_type: str | None, reporter: Reporter, *, uploading: bool = True
) -> FileReport:
    """Check a file locally; report every problem with its line and raise when there is one."""
    from ..input_rules import BATCH_INPUT_TYPES
    from ..validate import check_file

    if dataset_type is not None and dataset_type not in BATCH_INPUT_TYPES:
        raise UsageError(f"--type must be one of {', '.join(sorted(BATCH_INPUT_TYPES))}")
    report = check_file(path, dataset_type)
    if report.ok:
        return report
    for problem in report.problems:
        reporter.info(f"{path}:{problem.line}: {problem.message}" if problem.line else f"{path}: {problem}")
    hidden = report.problem_count - len(report.problems)
    if hidden > 0:
        reporter.info(f"... and {hidden} more problems")
    plural = "s" if report.problem_count != 1 else ""
    tail = "; nothing was uploaded" if uploading else ""
    raise InputRejected(f"{path} has {report.problem_count} problem{plural}{tail}")


def upload_file(
    client: CohereClient,
    path: Path,
    reporter: Reporter,
    *,
    dataset_type: str | None = None,
    name: str | None = None,
    keep_original_file: bool = False,
    wait: bool = True,
    before_upload: Callable[[FileReport], None] | None = None,
) -> str:
    """Check, upload (with a progress bar on a terminal) and, with ``wait``, see it validated.

    Returns the new dataset's id. A dataset that fails validation raises
    :class:`InputRejected` with the API's reason. ``before_upload`` runs once the
    local check has passed and before a byte is sent: ``create --file``'s context
    check and budget (``tasks.estimating.guard_upload``), which may refuse the file.
    """
    from ..input_rules import CHAT_V2_INPUT

    report = check_input(path, dataset_type, reporter)
    kind = report.dataset_type or CHAT_V2_INPUT
    reporter.info(f"{path}: {report.rows:,} records of {kind}, checked")
    if before_upload is not None:
        before_upload(report)
    progress = reporter.progress(f"uploading {path.name}")
    progress.start(total_bytes=report.size_bytes)
    try:
        dataset_id = client.upload_dataset(
            path,
            name=name or path.stem,
            dataset_type=kind,
            keep_original_file=keep_original_file,
            keep_fields=["custom_id"] if kind == CHAT_V2_INPUT else None,
            on_bytes=lambda n: progress.advance(bytes=n),
        )
    finally:
        progress.finish()
    reporter.info(f"uploaded as dataset {dataset_id}")
    if wait:
        dataset = wait_validated(client, dataset_id, reporter)
        if dataset.validation_status == "failed":
            raise InputRejected(
                f"dataset {dataset_id} failed validation: {dataset.validation_error or 'no reason given'}"
            )
    return dataset_id


def wait_validated(
    client: CohereClient, dataset_id: str, reporter: Reporter, *, timeout: float = VALIDATION_TIMEOUT
) -> Dataset:
    """Wait for a dataset's validation to end, reporting each status and warning once."""

    def report(dataset: Dataset) -> None:
        reporter.info(f"dataset {dataset_id}: {dataset.validation_status}")
        for warning in dataset.validation_warnings:
            reporter.warn(warning)

    return wait_for_dataset(client, dataset_id, timeout=timeout, on_change=report)


def wait_for_dataset(
    client: CohereClient,
    dataset_id: str,
    *,
    timeout: float = VALIDATION_TIMEOUT,
    on_change: Callable[[Dataset], None] | None = None,
    first_interval: float = 0.25,
    max_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Dataset:
    """Poll until the dataset's validation is final (validated, failed or skipped).

    The interval starts short, because small files validate in a moment, and
    doubles up to ``max_interval``. Raises :class:`WaitTimeout` after
    ``timeout`` seconds with the last status in the message.
    """
    deadline = time.monotonic() + timeout
    interval = first_interval
    last_status = None
    while True:
        dataset = client.get_dataset(dataset_id)
        if dataset.validation_status != last_status:
            last_status = dataset.validation_status
            if on_change:
                on_change(dataset)
        if dataset.is_final:
            return dataset
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(
                f"dataset {dataset_id} is still {last_status} after {timeout:.0f}s",
                hint=f"check later with: cbatch datasets get {dataset_id}",
            )
        sleep(min(interval, left))
        interval = min(max_interval, interval * 2)
