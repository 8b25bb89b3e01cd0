"""Every option of a results writer in one value, and the combinations that mean nothing.

Every command that writes results (``results``, ``jobs results``, ``demo``)
parses its flags into one frozen :class:`ResultsSpec` and hands it whole to
the one entry point, :func:`cohere_batch_cli.tasks.results.write_results`:
an option cannot be accepted by one command and lost on its way to the
writer. The combinations that mean nothing are refused here (:func:`check`,
:func:`check_run`), before anything is asked of the API. A batch, a retried
batch and a job are runs; the spec is the same for each, and the options one
kind of run has no use for are refused for it, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeAlias

from ..config import DATASET_TTL
from ..errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from ..results import TableOptions
    from ..results.formats import OutputFormat
    from ..results.table_out import InputTable

BinaryStdout: TypeAlias = "Callable[[], AbstractContextManager[IO[bytes]]]"


@dataclass(frozen=True)
class ResultsSpec:
    """Everything a results writer honours, parsed once per command from its flags and passed whole.

    ``output`` is a path, ``-`` for stdout, or None for ``RUN_ID.FORMAT``. The
    last three fields are not flags of the command but settings of the run
    (the global ``--request-timeout``, the CA bundle, the dataset lifetime).
    """

    output: str | None = None
    fmt: OutputFormat | None = None
    """None: the format ``output``'s extension names (``.csv``, ``.parquet``), else JSONL."""
    columns: tuple[str, ...] = ()
    """``--column NAME=EXPR``, for CSV and Parquet."""
    body: bool = False
    """The whole response as a ``body`` column (CSV and Parquet)."""
    failed_only: bool = False
    join: Path | None = None
    """The input JSONL: each request beside its result."""
    concurrency: int = 4
    """Parts fetched at once."""
    merge: bool = True
    """A batch with retries: one record per custom_id across the attempts (False, ``--own``: this batch's own)."""
    partial: bool = False
    """A job: write the parts that ended, leave out the others."""
    delete_outputs: bool = False
    """A job: once the file is written, delete the output datasets it was made from."""
    input_order: bool = False
    """A job: the records in the order of its input file, read again and compared with its check."""
    input_file: Path | None = None
    """A job's input file for ``input_order`` (``--file``; None: the file it was made from)."""
    read_timeout: float | None = None
    """Seconds to wait for each read from storage (the global --request-timeout); None: the default."""
    ca_bundle: str | None = None
    dataset_ttl: float = DATASET_TTL
    """How long the service keeps a dataset: past it, a missing output is expired (exit 13)."""
    records: bool = False
    """A table run (``create --from``): its records, as any batch's (``--records``), not its table."""
    answer_prefix: str | None = None
    """A table run: put before every column added to its table (``--answer-prefix``)."""
    id_column: str | None = None
    """A ``--join`` table: the column its rows were named by (``--id-column``), for a run with no record here."""
    input_table: InputTable | None = None
    """Not a flag: a table run's table once found (:mod:`.table_results`), written with the answers."""
    to_program: bool = False
    """Not a flag: the stream is a program's, reading the records as they come (the Python API's
    ``records()``), not stdout: what is said of it is what the program read, of which run."""


JOB_ONLY = {
    "partial": "--partial",
    "delete_outputs": "--delete-outputs",
    "input_order": "--input-order",
    "input_file": "--file",
}
"""The options that shape a job's results alone, by field: refused for a batch (docs/scripting.md)."""


def check(spec: ResultsSpec) -> tuple[OutputFormat, TableOptions]:
    """The format and the table's columns, or the error that stops the command before any call.

    The refusals of combinations that mean nothing, whatever the run (exit 2):
    ``--failed-only --delete-outputs`` (the file would hold the failures and
    the deleted outputs every success), ``--file`` without ``--input-order``,
    ``--column``/``--body`` with JSONL, and a ``--format`` that contradicts
    ``-o``'s name. Then what would fail only after the download: Parquet
    without pyarrow (exit 2), and ``-o`` in a folder that does not exist
    (exit 11, as for any file that cannot be written). Called by every
    command as it parses its flags, and again by the writers.
    """
    from ..errors import LocalWriteError, OutputOptionError
    from ..results import TableOptions
    from ..results.columns import parse_columns
    from ..results.formats import choose_format

    if spec.delete_outputs and spec.failed_only:
        raise UsageError(
            "--failed-only and --delete-outputs mean nothing together: the file would hold only "
            "the failed records, and deleting the outputs would lose every success",
            hint="write every record first (no --failed-only) to delete the outputs",
        )
    if spec.input_file is not None and not spec.input_order:
        raise UsageError(
            "--file names the input that --input-order reads again: alone it changes nothing",
            hint="add --input-order, or leave out --file",
        )
    fmt = choose_format(spec.output, spec.fmt)
    if fmt == "jsonl" and (spec.columns or spec.body):
        flag = "--column" if spec.columns else "--body"
        raise OutputOptionError(
            f"{flag} is for the table formats: a JSONL line holds the whole record",
            hint="add --format csv or --format parquet",
        )
    table = TableOptions(
        columns=parse_columns(spec.columns), body=spec.body, input_table=spec.input_table
    )
    if spec.output not in (None, "-"):
        folder = Path(spec.output).parent
        if not folder.is_dir():  # found out after the download, this was minutes of work lost
            raise LocalWriteError(
                f"cannot write {spec.output}: the folder {folder} does not exist",
                hint=f"make it first (mkdir -p {folder}), or name another -o",
            )
    if fmt == "parquet":
        from ..results.parquet import require_pyarrow

        require_pyarrow()
    return fmt, table


def check_run(spec: ResultsSpec, job_id: str | None) -> None:
    """Refuse the options that mean nothing for this run: a job's (``job_id``) or a batch's (None).

    Called once the run is known and before anything else is asked of the
    API (a ``--wait`` included), so no one waits an hour to be told.
    """
    if job_id is not None and not spec.merge:
        raise UsageError(
            f"--own gives one batch's own records; {job_id} is a job, whose results merge every part and attempt",
            hint=f"leave out --own, or give one part's batch id (cbatch jobs get {job_id})",
        )
    if job_id is None:
        given = [flag for name, flag in JOB_ONLY.items() if getattr(spec, name)]
        if given:
            names = ", ".join(given)
            raise UsageError(
                f"{names} shape{'s' if len(given) == 1 else ''} a job's results: a batch's results are one part, "
                "written whole once it ended",
                hint="give a job id (cbatch jobs list), or leave "
                + ("it" if len(given) == 1 else "them")
                + " out",
            )
