"""Check a JSONL file, upload it as a dataset, and wait for the API to validate it.

The local check reads the whole file before a byte is sent, so a file with a
bad line is never uploaded; its problems are reported as ``path:LINE: message``,
the form editors and CI logs link to.

A file over the service's dataset limit (``config.Limits``: 1.5 GB, taken as
1,500,000,000 bytes) is refused before even that, saying by how much and how
to run it as a job (``--split``), since the service would refuse it after the whole upload. The
service's own refusals (a dataset too large for a lower limit, an
organisation over its 10 GB) get the same kind of advice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Limits
from ..errors import InputFileError, InputRejected, UsageError, WaitTimeout
from ..units import counted

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.errors import BadRequestError
    from ..api.models import Dataset
    from ..spool import Input
    from ..validate import FileReport
    from .reporting import Reporter

VALIDATION_TIMEOUT = 1800.0
"""Seconds to wait for a dataset to finish validating (exit 10 past it)."""


def check_input(
    path: Path,
    dataset_type: str | None,
    reporter: Reporter,
    *,
    uploading: bool = True,
    label: str | None = None,
    checked: FileReport | None = None,
) -> FileReport:
    """Check a file locally; report every problem with its line and raise when there is one.

    ``path`` is read once; an input that can only be read once (stdin, a
    pipe) is checked through :func:`cohere_batch_cli.spool.rereadable` by the
    callers that read it again. ``label`` names it in messages (``stdin``).
    ``checked``: the file was checked as cbatch wrote it (a table's requests,
    :class:`~cohere_batch_cli.validate.CheckedWriter`), and is not read again:
    its report is told as a read's would be.
    """
    from ..input_rules import BATCH_INPUT_TYPES

    if dataset_type is not None and dataset_type not in BATCH_INPUT_TYPES:
        raise UsageError(f"--type must be one of {', '.join(sorted(BATCH_INPUT_TYPES))}")
    name = label or str(path)
    report = checked if checked is not None else _check_read(path, dataset_type, reporter, label)
    report.label = label
    for note in report.notes:
        reporter.warn(f"{name}: {note}")
    if report.ok:
        return report
    for problem in report.problems:
        reporter.info(
            f"{name}:{problem.line}: {problem.message}" if problem.line else f"{name}: {problem}"
        )
    hidden = report.problem_count - len(report.problems)
    if hidden > 0:
        reporter.info(f"... and {hidden} more problems")
    plural = "s" if report.problem_count != 1 else ""
    tail = "; nothing was uploaded" if uploading else ""
    raise InputRejected(
        f"{name} has {report.problem_count} problem{plural}{tail}",
        hint=table_hint(path) if checked is None else None,
    )


TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".parquet", ".pq"})
"""The names of files that are tables, never JSONL requests: given as requests, they are pointed to ``--from``."""


def table_hint(path: Path) -> str | None:
    """For a table given where requests are read (``--file``, a path to ``client.create``): how to send its rows."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        return None  # a file that may well be JSONL
    return (
        f"{path.name} is a table, not JSONL requests: make a request of each row with "
        f"cbatch create --from {path.name} --prompt TEMPLATE (in Python: cb.PromptTable)"
    )


def _check_read(
    path: Path, dataset_type: str | None, reporter: Reporter, label: str | None
) -> FileReport:
    """The file read and checked, with a progress bar; a file that cannot be read is named as ``label``."""
    from ..validate import check_file

    name = label or str(path)
    progress = reporter.progress(f"checking {Path(name).name}")
    size = path.stat().st_size if path.is_file() else None
    if size:
        progress.start(total_bytes=size)
    try:
        return check_file(
            path, dataset_type, on_bytes=(lambda n: progress.advance(bytes=n)) if size else None
        )
    except InputFileError as exc:
        if label is None:
            raise
        raise InputFileError(exc.message.replace(str(path), name)) from None
    finally:
        progress.finish()


def validate_input(
    path: Path, dataset_type: str | None, reporter: Reporter
) -> tuple[FileReport, str]:
    """Check a file (``-``: stdin) without uploading it; the report and how to name the input."""
    from ..spool import rereadable

    with rereadable(path) as source:
        return check_input(
            source.path, dataset_type, reporter, uploading=False, label=source.label
        ), source.label


def default_name(path: Path) -> str:
    """What a dataset or batch made from ``path`` is called without ``--name`` (``-``: stdin)."""
    from ..spool import is_stdin

    return "stdin" if is_stdin(path) else path.stem


def upload_file(
    client: CohereClient,
    path: Path,
    reporter: Reporter,
    *,
    dataset_type: str | None = None,
    name: str | None = None,
    keep_original_file: bool = False,
    wait: bool = True,
    limits: Limits | None = None,
    label: str | None = None,
    before_upload: Callable[[FileReport], str | None] | None = None,
    on_uploaded: Callable[[str], None] | None = None,
    checked: FileReport | None = None,
) -> str:
    """Check, upload (with a progress bar on a terminal) and, with ``wait``, see it validated.

    Returns the new dataset's id. A file over ``limits.dataset_max_bytes`` and
    a dataset that fails validation raise :class:`InputRejected`. ``label``
    names the file in messages (a file cbatch wrote itself, such as a retry's
    input). ``before_upload`` runs once the local check has passed and before a
    byte is sent: ``create --file``'s context check and budget
    (``tasks.estimating.guard_upload``), which may refuse the file, and may
    name the dataset once the bytes are known (a keyed send's name carries
    their digest).
    ``on_uploaded`` hears the new dataset's id as soon as the API has it, before
    validation: a command stopped after that can say which dataset it left.
    ``checked``: the file's check, made as cbatch wrote it (:func:`check_input`): not read again
    to be checked; the upload still reads it block by block against that check's hashes.
    """
    import dataclasses

    from ..spool import rereadable

    with rereadable(path) as source:  # stdin or a pipe: checked and sent from one copy
        if label is not None:
            source = dataclasses.replace(source, label=label)
        return _upload_checked(
            client, source, reporter, dataset_type=dataset_type, name=name,
            keep_original_file=keep_original_file, wait=wait, limits=limits or Limits(),
            before_upload=before_upload, on_uploaded=on_uploaded, checked=checked,
        )  # fmt: skip


def _upload_checked(
    client: CohereClient,
    source: Input,
    reporter: Reporter,
    *,
    dataset_type: str | None,
    name: str | None,
    keep_original_file: bool,
    wait: bool,
    limits: Limits,
    before_upload: Callable[[FileReport], str | None] | None,
    on_uploaded: Callable[[str], None] | None = None,
    checked: FileReport | None = None,
) -> str:
    from ..api.errors import BadRequestError
    from ..errors import InputChanged
    from ..fingerprint import Changed
    from ..input_rules import CHAT_V2_INPUT
    from ..naming import plain_dataset_name

    path = source.path
    refuse_over_limit(path, source.label, limits.dataset_max_bytes)
    report = check_input(path, dataset_type, reporter, label=source.label, checked=checked)
    kind = report.dataset_type or CHAT_V2_INPUT
    reporter.info(f"{source.label}: {counted(report.rows, 'record')} of {kind}, checked")
    named = before_upload(report) if before_upload is not None else None
    progress = reporter.progress(f"uploading {Path(source.label).name}")
    progress.start(total_bytes=report.size_bytes)
    try:
        dataset_id = client.upload_dataset(
            path,
            name=named or name or plain_dataset_name(source.default_name),
            dataset_type=kind,
            keep_original_file=keep_original_file,
            keep_fields=["custom_id"] if kind == CHAT_V2_INPUT else None,
            on_bytes=lambda n: progress.advance(bytes=n),
            blocks=report.blocks,
        )
        if (
            on_uploaded is not None
        ):  # first, before the bar ends: a stop from here on still knows the id
            on_uploaded(dataset_id)
    except Changed as exc:
        raise InputChanged(
            f"{source.label} changed after it was checked ({exc} differ from what the check read): "
            "the upload was stopped before its end, no dataset was made",
            hint="run the command again to check and send what the file holds now",
        ) from None
    except BadRequestError as exc:
        exc.hint = exc.hint or _refusal_advice(
            client, exc, path, source.label, report.size_bytes, limits
        )
        raise
    finally:
        progress.finish()  # a program's callback runs here (the Python API): the id is known already
    reporter.info(f"uploaded as dataset {dataset_id}")
    if wait:
        validated(client, dataset_id, reporter)
    return dataset_id


def validated(
    client: CohereClient,
    dataset_id: str,
    reporter: Reporter,
    *,
    timeout: float = VALIDATION_TIMEOUT,
) -> Dataset:
    """Wait for a new dataset's validation (:class:`WaitTimeout` after ``timeout``); one that failed is refused."""
    dataset = wait_validated(client, dataset_id, reporter, timeout=timeout)
    if dataset.validation_status == "failed":
        raise InputRejected(
            f"dataset {dataset_id} failed validation: {dataset.validation_error or 'no reason given'}"
        )
    return dataset


def refuse_over_limit(path: Path, label: str, limit: int) -> None:
    """InputRejected, before a byte is read or sent, for a file over one dataset's limit."""
    try:
        size = path.stat().st_size
    except OSError:
        return  # the check that follows says what is wrong with it
    if size <= limit:
        return
    from ..units import human_bytes

    over = size - limit
    raise InputRejected(
        f"{label} is {size:,} bytes, {over:,} byte{'' if over == 1 else 's'} over the limit of "
        f"{limit:,} bytes ({human_bytes(limit)}) for one dataset; nothing was uploaded",
        hint=split_hint(path, label, size, limit),
    )


def split_hint(path: Path, label: str, size: int, limit: int) -> str:
    """The option that runs a file over ``limit`` as a job of several batches, and the ``split -l`` that cuts it by hand.

    The count of lines per file leaves a tenth of the limit spare, for lines
    of uneven length; a job (``--split``) cuts by bytes exactly instead.
    """
    import shlex

    from .table_prompts import RENDERED

    if label.endswith(RENDERED):  # a table's requests: a file of cbatch's own, no command takes it
        table = shlex.quote(label.removesuffix(RENDERED))
        return (
            "add --split to run the table's requests as one job of several batches "
            f"(or: cbatch jobs create --from {table} with the same options)"
        )
    lines = count_lines(path)
    if lines < 2:
        return "it is a single line, which no split can make smaller"
    per_file = max(1, int(lines * (limit / size) * 0.9))
    files = -(-lines // per_file)
    source = "-" if label == "stdin" else shlex.quote(label)
    prefix = shlex.quote(("stdin" if label == "stdin" else Path(label).stem) + "-part-")
    job = (
        "save it to a file and run it as one job of several batches: cbatch jobs create FILE"
        if label == "stdin"
        else f"add --split to run it as one job of several batches (or: cbatch jobs create {source})"
    )
    return f"{job}; or split it into {files} files of at most {per_file:,} lines yourself: split -l {per_file} {source} {prefix}"


def count_lines(path: Path) -> int:
    """Lines in a file (a last line without its newline counts), read a megabyte at a time."""
    count = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _refusal_advice(
    client: CohereClient, exc: BadRequestError, path: Path, label: str, size: int, limits: Limits
) -> str | None:
    """What to do about the service's own refusal of an upload, when it is about space."""
    message = (exc.api_message or "").lower()
    if "exceeded capacity" in message:
        return capacity_advice(client, size, limits.org_max_bytes)
    if "too large" in message or ("limit" in message and "split" in message):
        # The service's limit is lower than cbatch's setting: split to the one it names, else in halves.
        named = re.search(r"limit of ([\d,]+) bytes", exc.api_message or "")
        limit = int(named.group(1).replace(",", "")) if named else size // 2
        hint = split_hint(path, label, size, max(1, min(limit, size - 1)))
        return f"{hint}; and lower dataset_max_bytes to the service's limit, so cbatch refuses such files first"
    return None


def capacity_advice(client: CohereClient, size: int, org_max_bytes: int) -> str:
    """How full the organisation's storage is and which datasets take the most of it.

    Two more calls on a path that already failed: the usage, and a listing
    of the datasets (outputs included, since they count), largest first.
    """
    from ..api.errors import CohereAPIError
    from ..units import human_bytes

    try:
        used: int | None = client.dataset_usage()
    except CohereAPIError:
        used = None
    try:
        listed = [d for d in client.iter_datasets(limit=1000) if d.size_bytes]
    except CohereAPIError:
        listed = []
    largest = sorted(listed, key=lambda d: d.size_bytes or 0, reverse=True)[:3]
    stored = (
        f"{human_bytes(used)} of its {human_bytes(org_max_bytes)}"
        if used is not None
        else "its storage"
    )
    text = (
        f"the organisation stores {stored} (cbatch datasets usage) and this file needs "
        f"{human_bytes(size)} more; delete datasets it no longer needs with: cbatch datasets delete ID"
    )
    if largest:
        text += (
            " (the largest: "
            + ", ".join(f"{d.id} {human_bytes(d.size_bytes)}" for d in largest)
            + ")"
        )
    return text + "; batch outputs count too, so download their results first"


def wait_validated(
    client: CohereClient,
    dataset_id: str,
    reporter: Reporter,
    *,
    timeout: float = VALIDATION_TIMEOUT,
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


def deletion_impact(client: CohereClient, dataset_id: str) -> str:
    """What stops working when this dataset goes, in one sentence, for the confirmation."""
    dataset = client.get_dataset(dataset_id)
    kind = dataset.dataset_type or ""
    if kind.endswith("-output"):
        writer = next(
            (
                b
                for b in client.iter_batches(page_size=1000, limit=1000)
                if b.output_dataset_id == dataset_id
            ),
            None,
        )
        which = f"batch {writer.id} ({writer.name!r})" if writer else "the batch that wrote them"
        return f"It holds the results of {which}: 'cbatch results' for it will fail (exit 4, not found)."
    if kind.endswith("-input"):
        return "Batches that used it keep their results; no new batch can use it."
    return "It cannot be undone."
