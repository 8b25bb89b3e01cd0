"""A run in Python: one batch on the API, and what a program does with it.

A :class:`Run` is a handle, not a copy: it keeps the batch as last read
(:attr:`Run.batch`) and every method goes through the same task the command
line runs (``wait`` is ``cbatch watch``'s follow, ``results`` and ``records``
are ``cbatch results``' one pipeline, ``cancel`` is ``cbatch cancel``'s), with
the library's reporter, so nothing is printed and nothing is done twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

if TYPE_CHECKING:
    from ..api.models import Batch, BatchStatus
    from ..exit_codes import ExitCode
    from ..results import ResultsSummary
    from ..tasks.results import Run as ResultsRun
    from ..tasks.results_spec import ResultsSpec
    from ..tasks.retrying import RetryOptions
    from ..tasks.watching import WatchSpec
    from .client import Client
    from .reporting import EventCallback, LibraryReporter

ResultsFormat = Literal["jsonl", "csv", "parquet"]


def watch_spec(timeout: float | None, interval: float | None) -> WatchSpec:
    """The one value a wait hands the watch task: its pace and its deadline (from now)."""
    from .. import pace
    from ..errors import UsageError
    from ..tasks.watching import WatchSpec

    if timeout is not None and timeout <= 0:
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout}")
    if interval is not None and interval <= 0:
        raise UsageError(f"interval must be a positive number of seconds, not {interval}")
    step = pace.INTERVAL if interval is None else interval
    return WatchSpec(interval=step, max_interval=max(step, pace.MAX_INTERVAL), timeout=timeout)


class Run:
    """A batch on the API: its last known state, waited for, its results read, cancelled.

    Made by :meth:`Client.batch <cohere_batch_cli.library.client.Client.batch>`,
    :meth:`Client.runs <cohere_batch_cli.library.client.Client.runs>` and
    :meth:`Client.create <cohere_batch_cli.library.client.Client.create>`; it
    uses its client's connection, so it is usable while the client is open.
    """

    def __init__(self, client: Client, batch: Batch) -> None:
        self._client = client
        self._batch = batch

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.name!r}, status={self.status.label!r})"

    @property
    def id(self) -> str:
        """The batch's id on the API."""
        return self._batch.id

    @property
    def name(self) -> str:
        return self._batch.name

    @property
    def status(self) -> BatchStatus:
        """The status when last read (:meth:`refresh` reads it again, :meth:`wait` to the end)."""
        return self._batch.status

    @property
    def batch(self) -> Batch:
        """The batch as last read: typed fields, and ``raw``, the API's object whole."""
        return self._batch

    def refresh(self) -> Run:
        """Read the batch again; returns this run."""
        self._batch = self._client._api.get_batch(self.id)
        return self

    def wait(
        self,
        timeout: float | None = None,
        *,
        on_progress: EventCallback | None = None,
        interval: float | None = None,
    ) -> Run:
        """Block until the batch has ended (COMPLETED, FAILED or CANCELED); returns this run, read again.

        ``on_progress`` hears every change as an :class:`~cohere_batch_cli.library.events.Event`
        (besides the client's ``on_event``). ``interval`` is the shortest pause
        between two polls in seconds (default 2; the pause grows while nothing
        moves). How the batch ended is :attr:`status`: a FAILED batch is not
        an exception. Raises :class:`~cohere_batch_cli.errors.WaitTimeout`
        (exit code 10) when ``timeout`` seconds pass first, the batch left
        running; :class:`~cohere_batch_cli.api.errors.NotFoundError` when it does
        not exist. Ctrl-C raises ``KeyboardInterrupt`` and cancels nothing.
        """
        _, watch = watcher(self._client, watch_spec(timeout, interval), on_progress)
        code = watch([self.id])
        if not ended(code):
            self.refresh()
            raise_for(code, f"batch {self.id}", timeout)
        return self.refresh()

    def retry(
        self,
        *,
        rounds: int = 1,
        pause: float | None = None,
        timeout: float | None = None,
        on_progress: EventCallback | None = None,
        interval: float | None = None,
        only_invalid: bool = False,
    ) -> Run:
        """Send again the records that failed or never came back, wait, and again, ``rounds`` times at most.

        ``cbatch retry --rounds N --watch``: a batch still running (this one,
        or its newest attempt) is waited for first, within ``timeout``; each
        attempt is a new batch named after this one (``NAME [retry 1 of
        ID]``), made only from what still fails, and waited for before the
        next; the rounds stop once every record succeeded. ``rounds`` counts
        the retries the API holds, so a call stopped midway and made again
        makes only the rest. ``pause`` is
        the wait before the second round in seconds (default 30), doubled
        before each round after. Returns the newest attempt: its
        :meth:`results` and :meth:`records` hold one record per ``custom_id``
        across every attempt. Records still failing after the last round are
        not an exception (they are logged; the newest attempt's counts say
        how many); a ``timeout`` running out first raises
        :class:`~cohere_batch_cli.errors.WaitTimeout`, the attempt in flight
        left running. Raises :class:`~cohere_batch_cli.errors.NotReady` when an
        ended attempt's output cannot be read to select from (its dataset
        failed validation).

        A run with an answer schema (:class:`~cohere_batch_cli.library.sources.PromptTable`'s
        ``schema``) counts an answer that is not JSON or breaks the schema as
        failed, and sends it again with the failures; ``only_invalid=True``
        sends those answers alone (``cbatch retry --invalid``): a run without
        a schema raises :class:`~cohere_batch_cli.errors.UsageError`.
        """
        from ..exit_codes import ExitCode
        from ..tasks.lineage import open_store_or_warn
        from ..tasks.retrying import retry_rounds

        options = retry_options(self._client, rounds, pause, only_invalid=only_invalid)
        spec = watch_spec(timeout, interval)
        api = self._client._api
        reporter, watch = watcher(self._client, spec, on_progress)

        def watch_batch(batch: Batch) -> ExitCode:
            return watch([batch.id])

        store = open_store_or_warn(reporter, "the retry's progress")
        outcome = retry_rounds(
            api, self.id, reporter, options, watch=watch_batch, spec=spec, store=store
        )
        if outcome.exit_code not in (ExitCode.OK, ExitCode.RECORDS_FAILED, ExitCode.BATCH_FAILED):
            if outcome.exit_code == ExitCode.BATCH_CANCELED and outcome.last is not None:
                return Run(self._client, outcome.last)
            raise_for(outcome.exit_code, f"batch {self.id}", timeout, while_="retried")
        if outcome.still_failing:
            reporter.warn(
                f"{outcome.still_failing:,} records of batch {self.id} still fail after the last round"
            )
        succeeded = outcome.succeeded_words()
        if succeeded is not None:
            reporter.info(succeeded)
        newest = outcome.last if outcome.last is not None else self._batch
        return Run(self._client, api.get_batch(newest.id))

    def results(
        self,
        path: str | os.PathLike[str],
        *,
        format: ResultsFormat | None = None,
        failed_only: bool = False,
        answer_prefix: str | None = None,
    ) -> ResultsSummary:
        """Write the finished batch's results to ``path``, all or nothing; returns what was written.

        ``format`` is ``"jsonl"``, ``"csv"`` or ``"parquet"`` (None: from the
        name's extension, else JSONL; Parquet needs the ``[parquet]`` extra).
        A batch with retries gets one record per ``custom_id`` across its
        attempts, as ``cbatch results`` writes. For a table run, the table's
        rows with the answer in columns added to them; ``answer_prefix`` goes
        before every added name (``--answer-prefix``), for a table that has
        columns of those names already (``status``, ``answer``...): without it
        such a table is refused with
        :class:`~cohere_batch_cli.errors.UsageError`, and a run not made
        from a table refuses a prefix. Raises
        :class:`~cohere_batch_cli.errors.NotReady` while the batch runs and
        :class:`~cohere_batch_cli.errors.ResultsExpired` once its output is gone.
        """
        return write_file(self._client, self.id, path, format, failed_only, answer_prefix)

    def records(
        self, *, failed_only: bool = False, answer_prefix: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The finished batch's results, one dict a record, streamed as they are downloaded.

        Each is a JSONL line of ``cbatch results`` read back: ``custom_id``
        first, then ``body`` (the reply) or ``error`` (for a table run, a row
        of the table, its answer in columns, ``answer_prefix`` as
        :meth:`results`'). Memory stays flat however many records there are;
        leaving the loop early stops the download. Raises as :meth:`results`
        does, when the iteration starts.
        """
        return stream(self._client, self.id, failed_only, answer_prefix)

    def to_arrow(self, *, failed_only: bool = False, answer_prefix: str | None = None) -> Any:
        """The results as one ``pyarrow.Table``: the columns ``results(..., format="parquet")`` writes.

        For a table run, the table's rows with their answers in columns (typed by
        the schema; ``answer_prefix`` as :meth:`results`'). The whole table is
        in memory: :meth:`arrow_batches` reads a large one a record batch at a
        time. Needs the ``[parquet]`` extra
        (:class:`~cohere_batch_cli.errors.MissingExtra` without it).
        """
        return arrow_table(self._client, self.id, failed_only, answer_prefix)

    def arrow_batches(
        self,
        *,
        failed_only: bool = False,
        batch_size: int = 65_536,
        answer_prefix: str | None = None,
    ) -> Any:
        """The results as a ``pyarrow.RecordBatchReader``, ``batch_size`` rows a batch, for results too large to hold.

        DuckDB, Polars and pandas read it as it goes. The results are written
        to a temporary Parquet file first (through the one results pipeline),
        removed once the reader is exhausted or dropped. ``answer_prefix`` as
        :meth:`results`'.
        """
        return arrow_reader(self._client, self.id, failed_only, batch_size, answer_prefix)

    def cancel(self) -> None:
        """Ask the API to cancel the batch; it reads ``canceling``, then ends (:meth:`wait` sees it)."""
        from ..tasks.batches import cancel_batches

        for outcome in cancel_batches(self._client._api, [self.id]):
            if outcome.error is not None:
                raise outcome.error


def results_spec(
    client: Client,
    *,
    output: str,
    fmt: ResultsFormat | None,
    failed_only: bool,
    answer_prefix: str | None = None,
    to_program: bool = False,
) -> ResultsSpec:
    """The results spec of a call: the one value ``cbatch results`` builds from its flags.

    ``to_program``: the records stream to the program (``records()``), which is told what it read.
    """
    from ..tasks.results_spec import ResultsSpec

    return ResultsSpec(
        output=output,
        fmt=fmt,
        failed_only=failed_only,
        answer_prefix=answer_prefix,
        read_timeout=client._timeout,
        ca_bundle=client._ca_bundle,
        dataset_ttl=client._settings.limits.dataset_ttl,
        to_program=to_program,
    )


def ended(code: ExitCode) -> bool:
    """Whether a watch saw its batches end (COMPLETED, FAILED or CANCELED), not a timeout or a signal."""
    from ..exit_codes import ExitCode

    return code in (ExitCode.OK, ExitCode.BATCH_FAILED, ExitCode.BATCH_CANCELED)


def watcher(
    client: Client, spec: WatchSpec, on_progress: EventCallback | None
) -> tuple[LibraryReporter, Callable[[list[str]], ExitCode]]:
    """The reporter of a call that takes ``on_progress``, and its one watch of batch ids (as ``cbatch watch``)."""
    from ..tasks.watching import follow

    reporter = client._reporter.also(on_progress)

    def watch(ids: list[str]) -> ExitCode:
        return follow(client._api, ids, reporter, spec, retries=client._retries)

    return reporter, watch


def retry_options(
    client: Client, rounds: int, pause: float | None, *, only_invalid: bool = False
) -> RetryOptions:
    """The retry options of a call: the one value ``cbatch retry`` builds from its flags."""
    from .. import pace
    from ..errors import UsageError
    from ..selection import Rule
    from ..tasks.retrying import RetryOptions

    if rounds < 1:
        raise UsageError(f"rounds must be 1 or more, not {rounds}")
    return RetryOptions(
        rule=Rule.only_invalid() if only_invalid else Rule(),
        rounds=rounds,
        pause=pace.PAUSE if pause is None else pause,
        read_timeout=client._timeout,
        ca_bundle=client._ca_bundle,
    )


def write_file(
    client: Client,
    run: ResultsRun,
    path: str | os.PathLike[str],
    fmt: ResultsFormat | None,
    failed_only: bool,
    answer_prefix: str | None = None,
) -> ResultsSummary:
    """A batch's or a job's results written to ``path`` through the one results entry point."""
    from ..errors import UsageError
    from ..tasks.results import write_results

    destination = os.fspath(path)
    if destination == "-":
        raise UsageError("results() writes a file; records() streams the records instead")
    spec = results_spec(
        client, output=destination, fmt=fmt, failed_only=failed_only, answer_prefix=answer_prefix
    )
    return write_results(client._api, spec, client._reporter, run)


def stream(
    client: Client, run: ResultsRun, failed_only: bool, answer_prefix: str | None = None
) -> Iterator[dict[str, Any]]:
    """A batch's or a job's results as dicts, streamed from the one results entry point as JSONL."""
    from ..tasks.results import write_results
    from .records import BinaryStdout, stream_records

    spec = results_spec(
        client,
        output="-",
        fmt="jsonl",
        failed_only=failed_only,
        answer_prefix=answer_prefix,
        to_program=True,
    )

    def download(stdout: BinaryStdout) -> object:
        return write_results(client._api, spec, client._reporter, run, stdout=stdout)

    return stream_records(download)


def arrow_table(
    client: Client, run: ResultsRun, failed_only: bool, answer_prefix: str | None
) -> Any:
    """A batch's or a job's results as one ``pyarrow.Table``, read from the Parquet file they make."""
    import pyarrow.parquet as pq

    path, cleanup = parquet_file(client, run, failed_only, answer_prefix)
    try:
        return pq.read_table(path)
    finally:
        cleanup()


def arrow_reader(
    client: Client, run: ResultsRun, failed_only: bool, batch_size: int, answer_prefix: str | None
) -> Any:
    """A batch's or a job's results as a ``pyarrow.RecordBatchReader`` over the Parquet file they
    make, which goes once the reader is exhausted or dropped."""
    import weakref

    from ..errors import UsageError

    if batch_size < 1:  # refused now, not by pyarrow once the results are downloaded
        raise UsageError(f"batch_size must be 1 or more, not {batch_size}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, cleanup = parquet_file(client, run, failed_only, answer_prefix)
    try:
        parquet = pq.ParquetFile(path)
    except BaseException:
        cleanup()
        raise

    def batches() -> Iterator[Any]:
        try:
            yield from parquet.iter_batches(batch_size=batch_size)
        finally:
            parquet.close()
            cleanup()

    reading = batches()
    weakref.finalize(reading, cleanup)  # a reader dropped unread takes its file with it
    return pa.RecordBatchReader.from_batches(parquet.schema_arrow, reading)


def parquet_file(
    client: Client, run: ResultsRun, failed_only: bool, answer_prefix: str | None
) -> tuple[Path, Callable[[], None]]:
    """The results written to a Parquet file in a private temporary folder, and what removes it."""
    import functools
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="cbatch-arrow-"))
    cleanup = functools.partial(shutil.rmtree, folder, ignore_errors=True)
    try:
        write_file(client, run, folder / "results.parquet", "parquet", failed_only, answer_prefix)
    except BaseException:
        cleanup()
        raise
    return folder / "results.parquet", cleanup


def raise_for(
    code: ExitCode, what: str, timeout: float | None, *, while_: str = "waited for"
) -> NoReturn:
    """A watch that did not see the end, as the exception a program catches (or Ctrl-C, raised again)."""
    from ..errors import CbatchError, Terminated, WaitTimeout
    from ..exit_codes import ExitCode

    if code == ExitCode.TIMEOUT:
        raise WaitTimeout(
            f"{what} was {while_} for {timeout:g}s and has not ended",
            hint="it keeps running: wait again, or cancel it",
        )
    if code == ExitCode.NOT_FOUND:
        from ..api.errors import NotFoundError

        raise NotFoundError(f"{what} was not found", status_code=404)
    if code == ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    if code in (ExitCode.TERMINATED, ExitCode.HANGUP):
        import signal

        raise Terminated(signal.SIGTERM if code == ExitCode.TERMINATED else signal.SIGHUP)
    raise CbatchError(f"{what} was {while_} and that ended with exit code {int(code)}")
