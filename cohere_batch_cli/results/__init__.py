"""A finished batch's output dataset, downloaded, decoded from Avro and written as JSONL, CSV or Parquet.

The pipeline, one module a step, and why each step is shaped so:

1. **Fetch** (:mod:`.parts`) every part from its pre-signed link with an
   *unauthenticated* client (the key must never reach a storage host),
   several at once, each streamed to a temporary file in a hidden directory
   beside the destination: a part is never held in memory. A dropped
   connection, a 5xx, a truncated body or a stall (no byte for
   ``stall_timeout`` seconds) is retried with backoff, resuming with a
   ``Range`` request when the server allows it. A link the store refuses
   as expired is renewed by reading the dataset again (``refresh_links``),
   and the part resumes where it stopped.
2. **Decode** (:mod:`.decode`) the parts in ``index`` order with
   ``fastavro.reader``, which streams block by block, so the output order is
   stable whatever order the downloads finished in: parts in index order,
   records as each part holds them. The service does not keep input order
   (records come shuffled), so neither does the file; the same output
   dataset always gives the same bytes.
3. **Shape** (:mod:`.records`) each record, joined with its request by
   :mod:`.join` when asked; for CSV and Parquet, into the columns of
   :mod:`.columns`, a chunk of records at a time (:mod:`.table`), Parquet in
   row groups (:mod:`.parquet`, pyarrow, the optional extra ``[parquet]``).
4. **Write** (:mod:`.writer`) through :func:`cohere_batch_cli.atomic.atomic_write`
   to ``.<name>.part-<random>`` in the destination's directory, renamed onto
   the final name only when complete. Any exception (Ctrl-C included) removes
   the temporary file and the part files, so an interrupted run leaves
   nothing under the final name and a second run writes the same bytes.

Output shapes (chosen here, documented in ``cbatch results --help``):

- JSONL, one record a line, ``custom_id`` first::

      {"custom_id": "r1", "body": {...}}           a success (body decoded to JSON)
      {"custom_id": "r2", "error": "message"}      a failure

  Fields the Avro schema adds beyond ``custom_id``/``body``/``error`` follow, unchanged.
- JSONL with ``join``: always the same four keys, ``request`` being the input
  line's ``body``::

      {"custom_id": "r1", "request": {...}|null, "response": {...}|null, "error": str|null}

- CSV and Parquet: one row per record, the columns of :mod:`.columns` (the
  defaults of chat or embed output, ``body`` and ``request`` on request,
  ``--column NAME=EXPR``); documented in docs/results-columns.md.

Errors: :class:`ResultsError` (a part could not be fetched or decoded; the CLI
exits 6), :class:`~cohere_batch_cli.errors.InputFileError` (a destination
or join file that cannot be used; exit 2) and
:class:`~cohere_batch_cli.errors.MissingExtra` (Parquet without pyarrow; exit 2). Messages never carry a part's
pre-signed query string.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputRejected, LocalWriteError, ResultsError
from ..output.progress import NullProgress
from .columns import TableOptions
from .decode import decoded_records
from .formats import FORMATS, OutputFormat
from .parts import (
    DEFAULT_STALL_TIMEOUT,
    Fetcher,
    RefreshLinks,
    ordered_parts,
    part_label,
    total_bytes,
)
from .reconcile import Reported, reconcile
from .records import decode_body, is_failed, joined_record, jsonl_record, reply_text
from .writer import (
    BinaryStdout,
    check_destination,
    output_stream,
    workdir_parent,
    workdir_prefix,
    write_records,
)

if TYPE_CHECKING:
    from .._httpx import httpx
    from ..api.models import DatasetPart
    from ..output.progress import ProgressSink
    from .counts import RowCounts
    from .join import Joiner, JoinReport

__all__ = [
    "DEFAULT_STALL_TIMEOUT",
    "OutputFormat",
    "RefreshLinks",
    "Reported",
    "ResultsError",
    "ResultsSummary",
    "TableOptions",
    "count_mismatch",
    "decode_body",
    "download_results",
    "is_failed",
    "joined_record",
    "jsonl_record",
    "reply_text",
]


@dataclass(frozen=True)
class ResultsSummary:
    """What a download read and wrote; ``count_mismatch`` and ``warnings`` are sentences to warn with.

    Two units, never mixed in one field: ``records_total``, ``succeeded`` and
    ``failed`` count the run's result records (the API's answers, one a
    request sent), ``written`` counts what the file holds. For a run of
    requests that is records too; for a table run it is the table's rows,
    and ``rows`` says what they got: a table whose rows asked the same thing
    twice holds more rows than records were sent.
    """

    written: int
    """What the file holds (or the stream gave): records, or for a table run the table's rows
    (``failed_only``: the failed ones)."""
    records_total: int
    """The result records read, every one, whatever ``failed_only`` kept."""
    failed: int
    """Of ``records_total``, the records with an error."""
    succeeded: int
    """Of ``records_total``, the records with a reply (for a table run, a reply that breaks the
    answer schema too: ``rows.invalid`` counts those rows)."""
    count_mismatch: str | None = None
    warnings: tuple[str, ...] = ()
    """Parts holding another number of records than they say, bodies that are not JSON, join gaps."""
    join: JoinReport | None = None
    link_refreshes: int = 0
    """How many times the dataset was read again because storage refused expired links."""
    rows: RowCounts | None = None
    """A table run's table written again: its rows, by what each got (None: a run of requests)."""


def download_results(
    parts: Sequence[DatasetPart],
    destination: Path | None,
    *,
    fmt: OutputFormat = "jsonl",
    failed_only: bool = False,
    join: Path | None = None,
    expected_records: int | None = None,
    http: httpx.Client,
    concurrency: int = 4,
    progress: ProgressSink | None = None,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    stdout: BinaryStdout | None = None,
    refresh_links: RefreshLinks | None = None,
    reported: Reported | None = None,
    table: TableOptions | None = None,
) -> ResultsSummary:
    """Download ``parts`` and write their records to ``destination`` (None: ``stdout()``).

    ``stdout`` opens the binary stream for a None destination: the output
    object's (``Output.binary``), so nothing here writes to a stream of its own.
    ``refresh_links`` reads the dataset again when storage refuses a link
    that expired (without it, such a refusal is final). ``reported`` is what
    the batch counts (``expected_records`` alone when absent): the summary's
    ``count_mismatch`` is the one sentence on counts that do not add up.

    ``http`` must be an unauthenticated client (see ``api.client.storage_client``).
    A file destination is all or nothing; stdout is streamed as records are
    decoded, so a failure there leaves the lines already written (a pipe cannot
    be taken back). ``table`` holds the columns of CSV and Parquet beyond the
    defaults. Raises :class:`ResultsError`, ``InputFileError`` or ``MissingExtra``.
    """
    ordered = ordered_parts(parts)

    def records(
        fetcher: Fetcher, per_part: list[int], cleanup: ExitStack
    ) -> Iterable[dict[str, Any]]:
        return cleanup.enter_context(closing(decoded_records(ordered, fetcher.wait, per_part)))

    return fetch_and_write(
        ordered, records, destination, fmt=fmt, failed_only=failed_only, join=join,
        reported=reported if reported is not None else Reported(records=expected_records),
        http=http, concurrency=concurrency, progress=progress, stall_timeout=stall_timeout,
        stdout=stdout, refresh_links=refresh_links, table=table,
    )  # fmt: skip


RecordSource = Callable[[Fetcher, list[int], ExitStack], Iterable[dict[str, Any]]]
"""The records to write, read from the fetcher's parts; counting each part's records into the list."""


def fetch_and_write(
    parts: Sequence[DatasetPart],
    records_of: RecordSource,
    destination: Path | None,
    *,
    fmt: OutputFormat,
    failed_only: bool,
    join: Path | None,
    reported: Reported,
    http: httpx.Client,
    concurrency: int,
    progress: ProgressSink | None,
    stall_timeout: float,
    stdout: BinaryStdout | None,
    refresh_links: RefreshLinks | None,
    table: TableOptions | None,
) -> ResultsSummary:
    """Fetch ``parts`` (in this order) and write what ``records_of`` reads from them: the one pipeline.

    One batch's results and a merge of its attempts (:mod:`.merge`) differ only
    in which records they make of the parts; the destination checks, the
    atomic write, link renewal, the join, the counts and the clean-up on any
    exception are this function's, so both get all of them.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown results format {fmt!r}")
    if fmt == "parquet":
        from .parquet import require_pyarrow

        require_pyarrow()
    if destination is not None:
        check_destination(destination)
    elif stdout is None:
        raise ValueError("results to stdout need the output object's binary stream")
    sink: ProgressSink = progress or NullProgress()
    with ExitStack() as cleanup:
        joiner = None
        if (
            join is not None
        ):  # the index of requests (and the input checks it reads with) only when asked
            from .join import Joiner

            joiner = cleanup.enter_context(Joiner.open(join))
        workdir = _make_workdir(destination)
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        fetcher = Fetcher(
            list(parts), workdir, http, concurrency, stall_timeout, sink, refresh_links
        )
        cleanup.callback(fetcher.stop)  # runs before the rmtree: callbacks unwind last-in first
        sink.start(total_bytes=total_bytes(parts), total_records=reported.records)
        cleanup.callback(sink.finish)
        fetcher.start()
        per_part: list[int] = []
        records = records_of(fetcher, per_part, cleanup)
        with output_stream(destination, stdout) as out:
            counts = write_records(
                records, out, fmt=fmt, failed_only=failed_only, joiner=joiner, sink=sink,
                table=table, spool_dir=workdir,
            )  # fmt: skip
            report = joiner.report() if joiner is not None else None
            if report is not None and report.results and not report.matched:
                raise _nothing_joined(report, joiner, destination)  # the file is not written
    warnings = part_mismatches(parts, per_part)
    if counts.not_json:
        n = counts.not_json
        warnings.append(
            f"{n:,} record{'' if n == 1 else 's'} {'has' if n == 1 else 'have'} a body that is not JSON; "
            f"{'it is' if n == 1 else 'each is'} written as a JSON string"
        )
    warnings.extend(counts.warnings)
    mismatch, join_warnings = reconcile(reported, counts.total, counts.failed, report)
    warnings.extend(join_warnings)
    return ResultsSummary(
        written=counts.written,
        records_total=counts.total,
        failed=counts.failed,
        succeeded=counts.total - counts.failed,
        count_mismatch=mismatch,
        warnings=tuple(warnings),
        join=report,
        link_refreshes=fetcher.links.refreshes,
        rows=counts.rows,
    )


def part_mismatches(parts: Sequence[DatasetPart], found: Sequence[int]) -> list[str]:
    """A sentence for each part that holds another number of records than its ``num_rows`` says."""
    out = []
    for position, (part, count) in enumerate(zip(parts, found, strict=False)):
        expected = part.num_rows
        if expected is not None and expected != count:
            out.append(
                f"part {part_label(part, position)} holds {count:,} records but the dataset says {expected:,}"
            )
    return out


def _nothing_joined(
    report: JoinReport, joiner: Joiner | None, destination: Path | None
) -> InputRejected:
    theirs = ", ".join(joiner.examples()) if joiner is not None else ""
    where = (
        "stdout got them unjoined"
        if destination is None
        else f"nothing was written to {destination}"
    )
    return InputRejected(
        f"none of the {report.results:,} results has a request in --join {report.path} "
        f"(its custom_ids look like {theirs}); {where}",
        hint="is it the input file of this batch?",
    )


def _make_workdir(destination: Path | None) -> Path:
    """The hidden folder parts are downloaded into; a folder that cannot be made is exit 11."""
    parent = workdir_parent(destination)
    try:
        return Path(tempfile.mkdtemp(prefix=workdir_prefix(destination), dir=parent))
    except OSError as exc:
        where = parent or tempfile.gettempdir()
        raise LocalWriteError(
            f"cannot make a folder for the downloaded parts in {where}: {exc.strerror or exc}"
        ) from None


def count_mismatch(expected: int | None, found: int) -> str | None:
    """A sentence when the output holds a different number of records than the batch reports."""
    from .reconcile import count_warning

    return count_warning(Reported(records=expected), found, 0)
