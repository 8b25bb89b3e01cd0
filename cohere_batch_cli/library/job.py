"""A job in Python: one input of any size, run as several batches and followed and read as one.

``client.create_job(file, ...)`` is ``cbatch jobs create``: the input is
checked and cut at record boundaries, its plan written to this machine's
state store, and each part sent through the send engine (:mod:`..tasks.jobs`).
A :class:`Job` is the handle on it: :meth:`Job.resume` sends the parts not
sent yet (the send engine again, as ``cbatch jobs resume``), :meth:`Job.wait`
follows every part still running in one watch (the watch task, as ``cbatch
jobs watch``), :attr:`Job.status` and the counts beside it are ``cbatch jobs
get``'s view of the job, and :meth:`Job.results` and :meth:`Job.records` read
every part and every retry attempt as one file, one record per ``custom_id``
(the one results entry point), and :meth:`Job.to_arrow` and
:meth:`Job.arrow_batches` as Arrow, as a run's are. Nothing prints: the client's reporter logs and
calls back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..results import ResultsSummary
    from ..state.store import JobRecord, StateStore
    from ..tasks.jobs import JobView
    from .client import Client
    from .reporting import EventCallback
    from .run import ResultsFormat, Run


class Job:
    """A job recorded on this machine: its parts, waited for, their results read as one, retried, cancelled.

    Made by :meth:`Client.create_job <cohere_batch_cli.library.client.Client.create_job>`
    and :meth:`Client.job <cohere_batch_cli.library.client.Client.job>`.
    """

    def __init__(
        self, client: Client, record: JobRecord, store: StateStore, path: Path | None
    ) -> None:
        self._client = client
        self._record = record
        self._store = store
        self._path = path
        self._seen: JobView | None = None
        """The job as last read (:meth:`refresh`); None: read it on first use."""

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, name={self.name!r}, parts={self._record.parts})"

    @property
    def id(self) -> str:
        """The job's id (``cbatch jobs get ID``); its parts' batch names carry it."""
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.label

    @property
    def model(self) -> str:
        return self._record.model

    @property
    def status(self) -> str:
        """Where the job stands, as ``cbatch jobs get`` says it, when last read (:meth:`refresh` reads it again).

        ``splitting`` (stopped while its input was cut), ``sending`` (parts not
        all created: :meth:`resume` sends them), ``running``, then how every
        part ended: ``completed``, ``failed`` (a part failed) or ``canceled``.
        Read on first use, and again after :meth:`wait` and :meth:`parts`.
        """
        return self._last().status

    @property
    def records_total(self) -> int:
        """The records of the job's input, every part's together."""
        return self._last().records

    @property
    def succeeded(self) -> int:
        """Records that succeeded in some attempt of their part (a retry's successes count), when last read."""
        return self._last().succeeded

    @property
    def failed(self) -> int:
        """Records whose newest attempt failed (earlier failures that a retry sent again are not counted), when last read."""
        return self._last().failed

    def refresh(self) -> Job:
        """Read the job again: its record here and every part's batches (one scan of the batch list); returns this job."""
        self._view()
        return self

    def parts(self) -> list[Run]:
        """Each part's newest attempt, in part order, as read now (a part not yet created is left out)."""
        from .run import Run

        return [Run(self._client, p.head) for p in self._view().parts if p.head is not None]

    def wait(
        self,
        timeout: float | None = None,
        *,
        on_progress: EventCallback | None = None,
        interval: float | None = None,
    ) -> Job:
        """Block until every part has ended; returns this job.

        One watch of every part still running (one list request a round), its
        events to ``on_progress`` and the client's ``on_event``. How the parts
        ended is theirs (:meth:`parts`): a FAILED part is not an exception.
        Raises :class:`~cohere_batch_cli.errors.WaitTimeout` when ``timeout``
        seconds pass first; Ctrl-C raises ``KeyboardInterrupt``, nothing cancelled.
        """
        from .run import ended, raise_for, watch_spec, watcher

        spec = watch_spec(timeout, interval)
        view = self._view()
        running = [
            p.head.id for p in view.parts if p.head is not None and not p.head.status.is_terminal
        ]
        if running:
            _, watch = watcher(self._client, spec, on_progress)
            code = watch(running)
            if not ended(code):
                raise_for(code, f"job {self.id}", timeout)
            view = self._view()
        if view.parts and all(p.ended for p in view.parts) and self._record.step == "split":
            self._store.set_job_step(self.id, "done")
        return self

    def resume(self, file: str | os.PathLike[str] | None = None) -> Job:
        """``cbatch jobs resume --no-watch``: send the parts not sent yet; returns this job.

        A job whose sending stopped (the process killed, a part's upload or
        create refused, the input missing) is carried on by the send engine
        that started it: each part not created yet is looked for on the API by
        its name first, so a part an earlier call (or another machine) made is
        kept, never made twice, and the rest is uploaded and created. A job
        stopped while its input was cut is cut first. ``file`` is the job's
        input when it is no longer where the job was made from (its size must
        be the checked input's, and its bytes are compared as each part is
        read: :class:`~cohere_batch_cli.errors.InputRejected` when they are
        not, nothing of them sent). A job with every part
        sent sends nothing; a canceled one raises
        :class:`~cohere_batch_cli.errors.NotReady`. :meth:`wait` follows the parts.
        """
        import dataclasses

        from ..tasks.jobs import input_of, send_parts

        given = None if file is None else Path(os.fspath(file))
        record = self._store.job(self.id) or self._record
        path = input_of(record, given)
        options = dataclasses.replace(
            self._client._job_options(
                record.label, record.model, record.max_records, record.max_bytes
            ),
            dataset_type=record.dataset_type,
        )
        send_parts(
            self._client._api, record, self._client._reporter, self._store, options, path=path
        )
        self._record = self._store.job(self.id) or record
        self._path = path or self._path
        self._seen = None
        return self

    def retry(
        self,
        *,
        rounds: int = 1,
        pause: float | None = None,
        timeout: float | None = None,
        on_progress: EventCallback | None = None,
        interval: float | None = None,
        only_invalid: bool = False,
    ) -> Job:
        """``cbatch jobs retry --rounds N``: what failed in every part sent again, watched together, again.

        As :meth:`Run.retry <cohere_batch_cli.library.run.Run.retry>` for each
        part (parts still running are waited for first), with one watch of
        every retry of a round; records still failing
        after the last round are logged, not raised. A table job with an
        answer schema sends its invalid answers again with the failures, or
        alone with ``only_invalid=True`` (``cbatch jobs retry --invalid``).
        """
        from ..exit_codes import ExitCode
        from ..tasks.jobs import retry_job
        from .run import raise_for, retry_options, watch_spec, watcher

        options = retry_options(self._client, rounds, pause, only_invalid=only_invalid)
        spec = watch_spec(timeout, interval)
        api = self._client._api
        reporter, watch = watcher(self._client, spec, on_progress)
        outcome = retry_job(
            api, self._record, reporter, self._store, options, watch=watch, spec=spec,
            path=self._path,
        )  # fmt: skip
        if outcome.exit_code not in (ExitCode.OK, ExitCode.RECORDS_FAILED, ExitCode.BATCH_FAILED):
            raise_for(outcome.exit_code, f"job {self.id}", timeout, while_="retried")
        self._seen = None
        if outcome.left:
            reporter.warn(
                f"{outcome.left:,} records of job {self.id} still fail after the last round"
            )
        return self

    def results(
        self,
        path: str | os.PathLike[str],
        *,
        format: ResultsFormat | None = None,
        failed_only: bool = False,
        answer_prefix: str | None = None,
    ) -> ResultsSummary:
        """Every part's and every attempt's results in one file, one record per ``custom_id``.

        As :meth:`Run.results <cohere_batch_cli.library.run.Run.results>`
        (a table job's: the table, every row once and in its order, across the
        parts; ``answer_prefix`` before the added columns);
        :class:`~cohere_batch_cli.errors.NotReady` while a part still runs.
        """
        from .run import write_file

        run = (self._record, self._store)
        return write_file(self._client, run, path, format, failed_only, answer_prefix)

    def records(
        self, *, failed_only: bool = False, answer_prefix: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The job's results as dicts, streamed as they download (as :meth:`results` writes them)."""
        from .run import stream

        return stream(self._client, (self._record, self._store), failed_only, answer_prefix)

    def to_arrow(self, *, failed_only: bool = False, answer_prefix: str | None = None) -> Any:
        """The job's results as one ``pyarrow.Table``, as :meth:`Run.to_arrow <cohere_batch_cli.library.run.Run.to_arrow>`.

        Every part and attempt, one row per ``custom_id`` (a table job's: its
        table, in order). The whole table is in memory: :meth:`arrow_batches`
        reads a large one a record batch at a time. Needs the ``[parquet]``
        extra (:class:`~cohere_batch_cli.errors.MissingExtra` without it).
        """
        from .run import arrow_table

        return arrow_table(self._client, (self._record, self._store), failed_only, answer_prefix)

    def arrow_batches(
        self,
        *,
        failed_only: bool = False,
        batch_size: int = 65_536,
        answer_prefix: str | None = None,
    ) -> Any:
        """The job's results as a ``pyarrow.RecordBatchReader``, as :meth:`Run.arrow_batches <cohere_batch_cli.library.run.Run.arrow_batches>`.

        For a job too large to hold at once: read as it goes from a temporary
        Parquet file, removed once the reader is exhausted or dropped.
        """
        from .run import arrow_reader

        run = (self._record, self._store)
        return arrow_reader(self._client, run, failed_only, batch_size, answer_prefix)

    def cancel(self) -> None:
        """``cbatch jobs cancel``: no part is sent after this, and every part still running is cancelled."""
        from ..tasks.jobs import cancel_job

        _, outcomes = cancel_job(self._client._api, self._record, self._store)
        for batch_id, refused in outcomes:
            if refused is not None:
                self._client._reporter.warn(f"{batch_id}: not cancelled: {refused}")
        self._record = self._store.job(self.id) or self._record
        self._seen = None

    def _view(self) -> JobView:
        """The job read now: ``cbatch jobs get``'s view (its status and counts are computed there, once)."""
        from ..tasks.jobs import job_view

        self._record = self._store.job(self.id) or self._record
        self._seen = job_view(self._client._api, self._record, self._store)
        return self._seen

    def _last(self) -> JobView:
        return self._seen if self._seen is not None else self._view()
