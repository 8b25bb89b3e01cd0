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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .reporting import LibraryReporter, logger

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..config import Settings
    from ..tasks.jobs import JobOptions
    from ..tasks.table_prompts import TableSpec
    from .job import Job
    from .reporting import EventCallback
    from .run import Run

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
        file: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        name: str | None = None,
        table: str | os.PathLike[str] | None = None,
        prompt: str | None = None,
        system: str | None = None,
        id_column: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        schema: Mapping[str, Any] | None = None,
        embed: str | None = None,
        embed_input_type: str | None = None,
        embed_types: Sequence[str] | None = None,
        embed_truncate: str | None = None,
        embed_max_tokens: int | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Create a batch from a JSONL ``file`` of requests, or from a ``table`` and a ``prompt`` (or ``embed``); returns the run.

        A ``file`` is ``cbatch create --file``; a ``table`` (CSV, Parquet, JSONL of
        objects, or a folder of them) with a ``prompt`` (a Jinja2 template of its
        columns, ``{{ text }}``) is ``cbatch create --from``, each row rendered
        into a chat request with the ``system`` prompt, ``max_tokens``,
        ``temperature`` and, with ``schema`` (a JSON Schema), answers asked for
        as JSON that follows it. ``id_column`` names the column of the rows'
        ``custom_id`` (else the row number). Rows that ask the same thing are
        sent once.

        With ``embed`` (a column) instead of a ``prompt``, it is ``cbatch create
        --from T --embed COLUMN``: each row's text in that column is one embed
        request, with ``embed_input_type`` (default ``search_document``),
        ``embed_types`` (``["float", "int8"]``...), ``embed_truncate``
        (``NONE``, ``START``, ``END``) and ``embed_max_tokens``; the results
        hold a vector a row (:meth:`Run.to_arrow
        <cohere_batch_cli.library.run.Run.to_arrow>`). ``embed`` with a
        ``prompt``, or a chat option with ``embed``, raises
        :class:`~cohere_batch_cli.errors.UsageError`, as the command line refuses them.

        ``model`` defaults to the settings' (``CBATCH_MODEL``, the profile's
        ``model``); ``name`` to the input's name without its extension. The model
        is checked against the API's list and the requests locally, records that
        cannot fit the model's context included, before a byte is sent
        (:class:`~cohere_batch_cli.errors.InputRejected`). It is the command
        line's send engine: a create stopped after its upload is carried on by
        the same call again, which uploads nothing. The batch is queued when
        this returns: :meth:`Run.wait <cohere_batch_cli.library.run.Run.wait>`
        follows it.

        With an ``idempotency_key``, the call is safe to make again: the same
        key with the same request (the input's fingerprint, the model, the
        name, and each option above that reaches a request) returns the run
        the first call made, re-attached (a first call stopped between its
        upload and its create is carried on, uploading nothing); the same key
        with another request raises :class:`~cohere_batch_cli.errors.KeyReused`,
        naming what differs. The names on the API carry the run id derived
        from the key, so another machine, with no record of the first call,
        finds its run too.
        """
        from ..completion_cache import scope_of
        from ..errors import UsageError
        from ..tasks.datasets import default_name
        from ..tasks.models import check_model

        spec = _table_of(file, table, {
            "prompt": prompt, "system": system, "id_column": id_column, "max_tokens": max_tokens,
            "temperature": temperature, "schema": schema, "embed": embed,
            "embed_input_type": embed_input_type, "embed_types": embed_types,
            "embed_truncate": embed_truncate, "embed_max_tokens": embed_max_tokens,
        })  # fmt: skip
        model = model or self._settings.model.value
        if not model:
            raise UsageError("a model is needed: give model=, or set CBATCH_MODEL or the profile's")
        if name is not None and not name.strip():
            raise UsageError("name is empty; give a name, or none to use the input's")
        if idempotency_key is not None:
            from ..idempotency import check_key

            check_key(idempotency_key)
        chosen = file if file is not None else table
        assert chosen is not None
        source = Path(os.fspath(chosen))
        label = name or default_name(source)
        check_model(self._api, model, scope_of(self.base_url, self.profile), self._reporter)
        if file is not None:
            return self._send(
                source, model, label, dataset_name=None if name is None else label,
                key=idempotency_key,
            )  # fmt: skip
        from ..tasks.table_send import table_requests_file

        assert spec is not None
        prices = self._settings.prices_for(model)
        with table_requests_file(spec, model, prices, self._reporter) as rendered:
            made = self._send(
                rendered.file, model, label, dataset_name=label, table=spec, key=idempotency_key
            )
            rendered.sent(made.batch.input_dataset_id or "", self._reporter)
        return made

    def _send(
        self,
        file: Path,
        model: str,
        label: str,
        *,
        dataset_name: str | None,
        table: TableSpec | None = None,
        key: str | None = None,
    ) -> Run:
        """One file of requests through the send engine, with ``create --file``'s defaults."""
        from ..naming import plain_dataset_name
        from ..tasks.estimating import CountOptions, GuardOptions
        from ..tasks.keyed import KeyOptions, table_fields
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
            key=None
            if key is None
            else KeyOptions(key, () if table is None else table_fields(table)),
        )
        sent = create_from_file(self._api, spec, self._reporter)
        if sent.found:
            logger.info(f"batch {sent.batch.id} was made by an earlier run of the same create")
        return Run(self, sent.batch)

    def create_job(
        self,
        file: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        name: str | None = None,
        table: str | os.PathLike[str] | None = None,
        prompt: str | None = None,
        system: str | None = None,
        id_column: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        schema: Mapping[str, Any] | None = None,
        embed: str | None = None,
        embed_input_type: str | None = None,
        embed_types: Sequence[str] | None = None,
        embed_truncate: str | None = None,
        embed_max_tokens: int | None = None,
        max_records_per_batch: int | None = None,
        max_bytes_per_batch: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """``cbatch jobs create``: one input of any size, cut at record boundaries and sent as several batches.

        Each part holds at most ``max_records_per_batch`` records and
        ``max_bytes_per_batch`` bytes (default: the dataset limit, 1.5 GB). The
        input is checked whole and its plan written to this machine's state
        store before a byte is sent; every part is sent when this returns.
        :meth:`Job.wait <cohere_batch_cli.library.job.Job.wait>` follows them.

        A ``table`` with a ``prompt`` or an ``embed`` column (and the options
        of :meth:`create`) is ``cbatch jobs create --from``: the rows are
        rendered into requests kept in the state folder (each part, a resume
        and a retry read them again), and those are what is cut.

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

        spec = _table_of(file, table, {
            "prompt": prompt, "system": system, "id_column": id_column, "max_tokens": max_tokens,
            "temperature": temperature, "schema": schema, "embed": embed,
            "embed_input_type": embed_input_type, "embed_types": embed_types,
            "embed_truncate": embed_truncate, "embed_max_tokens": embed_max_tokens,
        })  # fmt: skip
        chosen = file if file is not None else table
        assert chosen is not None
        path = Path(os.fspath(chosen))
        model = model or self._settings.model.value
        if not model:
            raise UsageError("a model is needed: give model=, or set CBATCH_MODEL or the profile's")
        key = None
        if idempotency_key is not None:
            from ..idempotency import check_key
            from ..tasks.keyed import KeyOptions, table_fields

            key = KeyOptions(check_key(idempotency_key), () if spec is None else table_fields(spec))
        size = self._part_size(max_bytes_per_batch)
        check_model(self._api, model, scope_of(self.base_url, self.profile), self._reporter)
        options = self._job_options(name or default_name(path), model, size, max_records_per_batch)
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
        max_records_per_batch: int | None = None,
        max_bytes_per_batch: int | None = None,
    ) -> Job:
        """``cbatch jobs attach``: a job another machine started, rebuilt from the API's names and its input.

        ``file`` is the job's input and the split options the ones it was made
        with (a part the API shows with another record count says they are
        not, and nothing is recorded). The job is then recorded here, and what
        it has not sent yet is sent: it goes on as if it had started here.
        """
        from ..state.store import open_store
        from ..tasks.jobs import attach_job, input_of, send_parts
        from .job import Job

        path = Path(os.fspath(file))
        store = open_store()
        given = self._job_options(
            name or "", model or self._settings.model.value or "",
            self._part_size(max_bytes_per_batch), max_records_per_batch,
        )  # fmt: skip
        record = attach_job(self._api, job_id, path, self._reporter, store, given)
        options = self._job_options(
            record.label, record.model, record.max_bytes, record.max_records
        )
        send_parts(self._api, record, self._reporter, store, options, path=input_of(record, path))
        return Job(self, store.job(record.id) or record, store, path)

    def _part_size(self, max_bytes: int | None) -> int:
        """A part's largest size: the one given, at most the dataset limit (its default)."""
        from ..errors import UsageError

        limit = self._settings.limits.dataset_max_bytes
        if max_bytes is not None and max_bytes > limit:
            raise UsageError(
                f"max_bytes_per_batch {max_bytes:,} is over the dataset limit of {limit:,} bytes"
            )
        return limit if max_bytes is None else max_bytes

    def _job_options(
        self, label: str, model: str, max_bytes: int | None, max_records: int | None
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
        record = find_job(store, job_id)
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


_CHAT = ("system", "max_tokens", "temperature", "schema")
_EMBED = ("embed_input_type", "embed_types", "embed_truncate", "embed_max_tokens")


def _table_of(
    file: str | os.PathLike[str] | None,
    table: str | os.PathLike[str] | None,
    args: Mapping[str, Any],
) -> TableSpec | None:
    """The table run of a create's arguments (None: a file of requests); a bad mix is a UsageError."""
    from ..errors import UsageError

    if (file is None) == (table is None):
        raise UsageError("give a file of requests, or a table and a prompt (one of them)")
    if file is not None:
        given = ", ".join(k for k, v in args.items() if v is not None)
        if given:
            raise UsageError(f"{given} go with a table, not a file of requests")
        return None
    assert table is not None
    return _table_spec(Path(os.fspath(table)), args)


def _table_spec(table: Path, args: Mapping[str, Any]) -> TableSpec:
    """A table run's spec from :meth:`Client.create`'s (or ``create_job``'s) arguments.

    The command line's refusals, through the same builders
    (:func:`~cohere_batch_cli.tasks.table_prompts.chat_options`,
    :func:`~cohere_batch_cli.tasks.table_prompts.embed_options`, the spec
    itself): ``embed`` with a ``prompt`` is the same error as ``--embed`` with
    ``--prompt``; a chat option with ``embed``, or an embed option without it,
    is refused too.
    """
    import json

    from ..errors import UsageError
    from ..tasks.table_prompts import EMBED_WITH_PROMPT, TableSpec, chat_options, embed_options

    prompt, embed = args.get("prompt"), args.get("embed")
    if prompt is not None and embed is not None:
        raise UsageError(EMBED_WITH_PROMPT)
    if prompt is None and embed is None:
        raise UsageError(
            "a table needs a prompt (the template each row is rendered with) or embed= (a column)"
        )
    stray = [k for k in (_CHAT if embed is not None else _EMBED) if args.get(k) is not None]
    if stray:
        raise UsageError(
            f"{', '.join(stray)} go with {'prompt, not embed' if embed is not None else 'embed'}"
        )
    if embed is not None:
        types = args.get("embed_types")
        options = embed_options(
            input_type=args.get("embed_input_type"),
            embedding_types=[types] if isinstance(types, str) else list(types or ()),
            truncate=args.get("embed_truncate"),
            max_tokens=args.get("embed_max_tokens"),
        )
        return TableSpec(table=table, embed=embed, id_column=args.get("id_column"), options=options)
    schema = args.get("schema")
    options = chat_options(
        max_tokens=args.get("max_tokens"), temperature=args.get("temperature"),
        schema=None if schema is None else json.dumps(schema), schema_where="the schema argument",
    )  # fmt: skip
    return TableSpec(
        table=table, template=prompt, where="the prompt argument", system=args.get("system"),
        id_column=args.get("id_column"), options=options,
    )  # fmt: skip


def _http_trace(line: str) -> None:
    """``cbatch --debug``'s trace of each request (credentials redacted), as debug records."""
    logger.getChild("http").debug(line)
