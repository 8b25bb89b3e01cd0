"""The entry point of the Python API: a client built from the same settings as ``cbatch``.

``cb.Client()`` reads what a command reads (:mod:`cohere_batch_cli.config`):
the environment (``CO_API_KEY``, ``CO_API_URL``, ``CBATCH_PROFILE``...), then
the selected profile of the config file, then the defaults; an argument given
here wins over all of them, as a flag does on the command line. It holds one
API connection (:class:`~cohere_batch_cli.api.client.CohereClient`, built as
the CLI builds it) and the library's reporter, so whatever it does is logged
and reported to callbacks, never printed. Close it, or use it in ``with``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .reporting import LibraryReporter, logger

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from ..config import Settings
    from ..tasks.jobs import JobOptions
    from ..tasks.table_prompts import TableSpec
    from ..validate import FileReport
    from .job import Job
    from .reporting import EventCallback
    from .run import Run
    from .sources import Dataset, EmbedTable, PromptTable, Split

API_KEY_SOURCE = "the api_key argument"
"""Where a key given to :class:`Client` came from, as an error about it says."""


class Client:
    """A connection to Cohere's Batch API (or a sandbox), configured as ``cbatch`` is.

    ``api_key``, ``base_url`` and ``profile`` win over the environment and the
    config file, as the command line's flags do; ``timeout`` is each request's
    read timeout in seconds and ``retries`` the attempts after a failed one
    (the defaults: those of the command line). ``on_event`` hears progress of
    every call (uploads, downloads, waits) as :class:`~.events.Event` values.
    Raises :class:`~cohere_batch_cli.errors.ConfigError` for a missing or
    malformed key, an unknown profile or a bad config file, before any request.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        profile: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        ca_bundle: str | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        from dataclasses import replace

        from ..api.client import CohereClient
        from ..config import Setting, resolve

        settings = resolve(profile=profile, base_url_flag=base_url)
        if api_key is not None:
            settings = replace(settings, api_key=Setting(api_key, API_KEY_SOURCE))
        for warning in settings.warnings:
            logger.warning(warning)
        self._settings: Settings = settings
        self._timeout = timeout
        self._retries = retries
        self._ca_bundle = ca_bundle
        self._reporter = LibraryReporter(on_event)
        self._api: CohereClient = CohereClient.from_settings(
            settings, timeout=timeout, retries=retries, ca_bundle=ca_bundle, debug=_http_trace
        )

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, profile={self.profile!r})"

    @property
    def base_url(self) -> str:
        """The API's address in use (the sandbox's, in a test)."""
        return self._api.base_url

    @property
    def profile(self) -> str:
        """The profile of the config file the settings were read from."""
        return self._settings.profile

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; runs made by this client cannot be used after it."""
        self._api.close()

    def batch(self, batch_id: str) -> Run:
        """The batch ``batch_id`` names: a whole id, a unique prefix of one, or an exact name.

        The rule is ``cbatch get``'s: an id is asked for at once, a prefix or a
        name is looked up in the batch listing (the match is logged). Raises
        :class:`~cohere_batch_cli.api.errors.NotFoundError` when nothing has it,
        :class:`~cohere_batch_cli.errors.AmbiguousMatch` when several do.
        """
        from ..tasks.resolving import BATCH, act_on
        from .run import Run

        batch = act_on(self._api, batch_id, BATCH, self._reporter, self._api.get_batch)
        return Run(self, batch)

    def create(
        self,
        source: str | os.PathLike[str] | PromptTable | EmbedTable | Dataset,
        *,
        model: str | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Create a batch from ``source`` and return its run, queued.

        ``source`` is a path to a JSONL file of requests (``cbatch create
        --file``); a :class:`~cohere_batch_cli.library.sources.PromptTable`,
        a table whose rows are rendered into chat requests (``--from T
        --prompt``); an :class:`~cohere_batch_cli.library.sources.EmbedTable`,
        one embed request a row (``--from T --embed``), whose results hold a
        vector a row (:meth:`Run.to_arrow
        <cohere_batch_cli.library.run.Run.to_arrow>`); or a
        :class:`~cohere_batch_cli.library.sources.Dataset` already on the API
        and validated (``--dataset``). Rows of a table that ask the same
        thing are sent once.

        ``model`` defaults to the settings' (``CBATCH_MODEL``, the profile's
        ``model``); ``name`` to the input's name without its extension (a
        dataset's: its ref). The model is checked against the API's list and
        the requests locally, records that cannot fit the model's context
        included, before a byte is sent
        (:class:`~cohere_batch_cli.errors.InputRejected`). It is the command
        line's send engine: a create from a file stopped after its upload is
        carried on by the same call again, which uploads nothing (a table's
        too: found by the table's fingerprint, its options, the model and the
        name, and by the requests it renders again, while the answer cache
        answers the same rows). The batch is queued when this returns:
        :meth:`Run.wait <cohere_batch_cli.library.run.Run.wait>` follows it.

        With an ``idempotency_key``, the call is safe to make again: the same
        key with the same request (the input's fingerprint, the model, the
        name, and each field of a table that reaches a request) returns the run
        the first call made, re-attached (a first call stopped between its
        upload and its create is carried on, uploading nothing); the same key
        with another request raises :class:`~cohere_batch_cli.errors.KeyReused`,
        naming what differs. The names on the API carry the run id derived
        from the key, so another machine, with no record of the first call,
        finds its run too. A :class:`~cohere_batch_cli.library.sources.Dataset`
        takes no key (:class:`~cohere_batch_cli.errors.UsageError`): it uploads
        nothing, so there is nothing to carry on.
        """
        from ..completion_cache import scope_of
        from ..errors import UsageError
        from ..tasks.datasets import default_name
        from ..tasks.models import check_model
        from .sources import Dataset

        if name is not None and not name.strip():
            raise UsageError("name is empty; give a name, or none to use the input's")
        if isinstance(source, Dataset):
            if idempotency_key is not None:
                raise UsageError(KEY_WITH_DATASET)
            model = self._model(model)
            check_model(self._api, model, scope_of(self.base_url, self.profile), self._reporter)
            return self._create_from_dataset(source, model, name or source.ref)
        spec = _table_of(source)
        model = self._model(model)
        if idempotency_key is not None:
            from ..idempotency import check_key

            check_key(idempotency_key)
        path = _file_of(source) if spec is None else spec.table
        label = name or default_name(path)
        check_model(self._api, model, scope_of(self.base_url, self.profile), self._reporter)
        if spec is None:
            return self._send(
                path, model, label, dataset_name=None if name is None else label,
                key=idempotency_key,
            )  # fmt: skip
        from ..tasks.table_send import table_requests_file

        prices = self._settings.prices_for(model)
        with table_requests_file(spec, model, prices, self._reporter, check=True) as rendered:
            made = self._send(
                rendered.file, model, label, dataset_name=label, table=spec, key=idempotency_key,
                checked=rendered.checked, fields=rendered.fields(),
            )  # fmt: skip
            rendered.sent(made.batch.input_dataset_id or "", self._reporter)
        return made

    def _create_from_dataset(self, dataset: Dataset, model: str, label: str) -> Run:
        """``create --dataset``: the ref resolved as the command resolves it, one batch made of it."""
        from ..tasks.batches import create_batch
        from ..tasks.lineage import remember_new_batch
        from ..tasks.resolving import DATASET, act_on
        from .run import Run

        def made(dataset_id: str) -> Batch:
            return create_batch(
                self._api, name=label, dataset_id=dataset_id, model=model, reporter=self._reporter
            )

        # Tried as an id by the create itself; a ref it does not know is looked up by prefix and name.
        batch = act_on(self._api, dataset.ref, DATASET, self._reporter, made)
        remember_new_batch(batch, self._reporter)  # a store that fails is only a warning
        return Run(self, batch)

    def _model(self, model: str | None) -> str:
        """The model given, else the settings'; none at all is a usage error."""
        from ..errors import UsageError

        chosen = model or self._settings.model.value
        if not chosen:
            raise UsageError("a model is needed: give model=, or set CBATCH_MODEL or the profile's")
        return chosen

    def _send(
        self,
        file: Path,
        model: str,
        label: str,
        *,
        dataset_name: str | None,
        table: TableSpec | None = None,
        key: str | None = None,
        checked: FileReport | None = None,
        fields: tuple[tuple[str, str], ...] = (),
    ) -> Run:
        """One file of requests through the send engine, with ``create --file``'s defaults.

        ``checked``: a table's requests, checked as they were written (not read again for it).
        ``fields``: the table's fingerprint and the options that shaped them
        (:meth:`~cohere_batch_cli.tasks.table_send.TableRequests.fields`): a key binds them, and a
        call stopped after its upload is found again by them.
        """
        from ..naming import plain_dataset_name
        from ..tasks.estimating import CountOptions, GuardOptions
        from ..tasks.keyed import KeyOptions
        from ..tasks.send_file import SendSpec, create_from_file
        from ..tokens.source import FetchSettings
        from .run import Run

        count = CountOptions(
            assumed_output=self._settings.assumed_output,
            fetch=FetchSettings(ca_bundle=self._ca_bundle, read_timeout=self._timeout),
        )
        spec = SendSpec(  # the context check on, no budget: create's defaults
            file=file,
            model=model,
            name=label,
            dataset_name=None if dataset_name is None else plain_dataset_name(dataset_name),
            source=None if table is None else table.table,
            label=None if table is None else table.label,
            dataset_type=None if table is None else table.dataset_type,
            guard=GuardOptions(count),
            limits=self._settings.limits,
            key=None if key is None else KeyOptions(key, fields),
            checked=checked,
            table_fields=fields,
        )
        sent = create_from_file(self._api, spec, self._reporter)
        if sent.found:
            logger.info(f"batch {sent.batch.id} was made by an earlier run of the same create")
        return Run(self, sent.batch)

    def create_job(
        self,
        source: str | os.PathLike[str] | PromptTable | EmbedTable,
        *,
        model: str | None = None,
        name: str | None = None,
        split: Split | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """``cbatch jobs create``: one input of any size, cut at record boundaries and sent as several batches.

        ``source`` is a path to a JSONL file of requests, or a table
        (:class:`~cohere_batch_cli.library.sources.PromptTable`,
        :class:`~cohere_batch_cli.library.sources.EmbedTable`) whose rows are
        rendered into requests kept in the state folder (each part, a resume
        and a retry read them again), and those are what is cut. ``split``
        (a :class:`~cohere_batch_cli.library.sources.Split`) bounds each
        part's records and bytes (default, and at most: the dataset limit,
        1.5 GB). The input is checked whole and its plan written to this
        machine's state store before a byte is sent; every part is sent when
        this returns. :meth:`Job.wait <cohere_batch_cli.library.job.Job.wait>`
        follows them.

        With an ``idempotency_key`` (as :meth:`create`'s), the job's id is the
        key's run id: the same key with the same input and options gives back
        the job, sending what it has not sent yet, from this machine's record
        or from the API's names on another machine; another input or split
        raises :class:`~cohere_batch_cli.errors.KeyReused`.
        """
        import dataclasses

        from ..completion_cache import scope_of
        from ..errors import UsageError
        from ..state.store import open_store
        from ..tasks.datasets import default_name
        from ..tasks.jobs import create_job, input_of, send_parts
        from ..tasks.models import check_model
        from .job import Job
        from .sources import Dataset, Split

        if isinstance(source, Dataset):
            raise UsageError(
                "a job cuts a file of requests or a table into batches, not a Dataset: "
                "create() makes one batch of a dataset"
            )
        spec = _table_of(source)
        path = _file_of(source) if spec is None else spec.table
        model = self._model(model)
        key = None
        if idempotency_key is not None:
            from ..idempotency import check_key
            from ..tasks.keyed import KeyOptions, table_fields

            key = KeyOptions(check_key(idempotency_key), () if spec is None else table_fields(spec))
        chosen = split or Split()
        options = self._job_options(
            name or default_name(path), model, chosen.max_records, self._part_size(chosen)
        )
        check_model(self._api, model, scope_of(self.base_url, self.profile), self._reporter)
        store = open_store()
        if spec is not None:
            from ..tasks.table_send import job_input_path, table_job, table_requests_file

            options = dataclasses.replace(
                options, dataset_type=spec.dataset_type, input_label=spec.label
            )
            prices = self._settings.prices_for(model)
            keep_as = job_input_path(spec.table)
            with table_requests_file(
                spec, model, prices, self._reporter, keep_as=keep_as
            ) as rendered:  # held while the parts are sent, as the command holds it
                record, reads = table_job(self._api, rendered, self._reporter, options, store, key)
                if key is not None:
                    options = dataclasses.replace(options, label=record.label)
                kept = input_of(record, reads)
                send_parts(self._api, record, self._reporter, store, options, path=kept)
            return Job(self, store.job(record.id) or record, store, kept)
        if key is None:
            record = create_job(self._api, path, self._reporter, options, store)
        else:
            from ..tasks.keyed import keyed_job

            record = keyed_job(self._api, path, self._reporter, options, store, key)
            options = dataclasses.replace(options, label=record.label)
        send_parts(self._api, record, self._reporter, store, options, path=input_of(record, path))
        return Job(self, store.job(record.id) or record, store, path)

    def attach_job(
        self,
        job_id: str,
        file: str | os.PathLike[str],
        *,
        model: str | None = None,
        name: str | None = None,
        split: Split | None = None,
    ) -> Job:
        """``cbatch jobs attach``: a job another machine started, rebuilt from the API's names and its input.

        ``file`` is the job's input and ``split`` the one it was made with (a
        part the API shows with another record count says it is not, and
        nothing is recorded). The job is then recorded here, and what it has
        not sent yet is sent: it goes on as if it had started here.
        """
        from ..state.store import open_store
        from ..tasks.jobs import attach_job, input_of, send_parts
        from .job import Job
        from .sources import Split

        path = _file_of(file)
        store = open_store()
        chosen = split or Split()
        given = self._job_options(
            name or "", model or self._settings.model.value or "",
            chosen.max_records, self._part_size(chosen),
        )  # fmt: skip
        record = attach_job(self._api, job_id, path, self._reporter, store, given)
        options = self._job_options(
            record.label, record.model, record.max_records, record.max_bytes
        )
        send_parts(self._api, record, self._reporter, store, options, path=input_of(record, path))
        return Job(self, store.job(record.id) or record, store, path)

    def _part_size(self, split: Split) -> int:
        """A part's largest size: the split's, at most the dataset limit (its default)."""
        from ..errors import UsageError
        from .sources import split_bytes

        limit = self._settings.limits.dataset_max_bytes
        max_bytes = split_bytes(split)
        if max_bytes is not None and max_bytes > limit:
            raise UsageError(
                f"Split max_bytes {max_bytes:,} is over the dataset limit of {limit:,} bytes",
                hint="leave it out to cut by the dataset limit",
            )
        return limit if max_bytes is None else max_bytes

    def _job_options(
        self, label: str, model: str, max_records: int | None, max_bytes: int | None
    ) -> JobOptions:
        from ..tasks.estimating import CountOptions, GuardOptions
        from ..tasks.jobs import JobOptions
        from ..tokens.source import FetchSettings

        count = CountOptions(
            assumed_output=self._settings.assumed_output,
            fetch=FetchSettings(ca_bundle=self._ca_bundle, read_timeout=self._timeout),
        )
        return JobOptions(  # the context check on, in the split's pass: create's defaults
            label=label,
            model=model,
            max_bytes=max_bytes or self._settings.limits.dataset_max_bytes,
            max_records=max_records,
            org_max_bytes=self._settings.limits.org_max_bytes,
            guard=GuardOptions(count),
        )

    def job(self, job_id: str) -> Job:
        """The job ``job_id`` (or a unique start of it) recorded on this machine.

        :class:`~cohere_batch_cli.errors.NoMatch` when this machine has no such job.
        """
        from ..state.store import open_store
        from ..tasks.jobs import find_job
        from .job import Job

        store = open_store()
        record = find_job(store, job_id, self._reporter)
        return Job(self, record, store, Path(record.path) if record.path else None)

    def jobs(self) -> list[Job]:
        """Every job recorded on this machine, newest first (``cbatch jobs list``; no request is made)."""
        from ..state.store import existing_store
        from .job import Job

        store = existing_store()  # no store file: no jobs, and none is made by asking
        if store is None:
            return []
        return [
            Job(self, record, store, Path(record.path) if record.path else None)
            for record in store.jobs()
        ]

    def runs(self, *, limit: int | None = None) -> Iterator[Run]:
        """Batches on the API, newest first, each as a :class:`~.run.Run`; at most ``limit``.

        Pages are fetched as the iteration needs them, so stopping early asks
        for no more.
        """
        from .run import Run

        for number, batch in enumerate(self._api.iter_batches(limit=limit), 1):
            yield Run(self, batch)
            if limit is not None and number >= limit:
                return


KEY_WITH_DATASET = (
    "idempotency_key goes with a file of requests or a table, not a Dataset: "
    "a batch from a dataset uploads nothing to carry on"
)
"""The refusal of a key with a dataset (``--idempotency-key goes with --file or --from, not --dataset``)."""


def _table_of(source: object) -> TableSpec | None:
    """The table run a source is (None: a file of requests)."""
    from .sources import EmbedTable, PromptTable, table_spec

    if isinstance(source, (PromptTable, EmbedTable)):
        return table_spec(source)
    return None


def _file_of(source: object) -> Path:
    """A file of requests' path; anything but a path is a TypeError (a programming error, not input)."""
    if isinstance(source, (str, os.PathLike)):
        return Path(os.fspath(source))
    raise TypeError(
        "a source is a path to a JSONL file of requests, a cb.PromptTable, a cb.EmbedTable "
        f"or a cb.Dataset, not {type(source).__name__}"
    )


def _http_trace(line: str) -> None:
    """``cbatch --debug``'s trace of each request (credentials redacted), as debug records."""
    logger.getChild("http").debug(line)
