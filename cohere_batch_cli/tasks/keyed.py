"""A create under an idempotency key: the same request re-attached to its run, another one refused.

Between the check of the input (which hashed its bytes) and the first byte
sent, a keyed send looks for what the key's run already made, by the run id
its names carry (:func:`~cohere_batch_cli.naming.key_of`), with the engine's
one look by name (:func:`.sending.newest_batch`, :func:`.sending.newest_dataset`):

- a batch: the run is made; it is taken as it is (:class:`.sending.EarlierBatch`);
- else a dataset that did not fail validation: a run stopped between its
  upload and its create; the send goes on from it (:class:`.sending.EarlierUpload`);
- either one made for another request (another digest in its name): refused,
  :class:`~cohere_batch_cli.errors.KeyReused`, naming each field that differs,
  from this machine's record of the key (:meth:`StateStore.keyed_run
  <cohere_batch_cli.state.store.StateStore.keyed_run>`), else what the API shows.

The key is bound to the request in the store before the upload, so a call
with another request is refused on this machine even before anything exists
on the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..idempotency import INPUT, Keyed, differences

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from ..state.store import JobRecord, StateStore
    from ..validate import FileReport
    from .jobs import JobOptions
    from .reporting import Reporter
    from .send_file import SendSpec
    from .table_prompts import TableSpec
    from .tables import FilePrint


@dataclass(frozen=True)
class KeyOptions:
    """An idempotency key, and the options of the request beyond a :class:`~.send_file.SendSpec`'s own.

    ``fields`` are those a caller knows and the send does not see as such (a
    table's prompt, system prompt, schema, ``max_tokens``...): each reaches
    the requests, and so the input's fingerprint too, but is named here to
    say which one changed.
    """

    key: str
    fields: tuple[tuple[str, str], ...] = ()


def table_fields(
    run: TableSpec, prints: list[FilePrint] | None = None
) -> tuple[tuple[str, str], ...]:
    """A table run's input and options that shape its requests, as the key's fields.

    The input is the table's own fingerprint (its files' names within it, sizes
    and contents), not the rendered requests': those leave out what the answer
    cache already holds, so a call made again once the first run's results
    filled the cache would send fewer requests and read as another request.
    The table's path is not in it either: the same table elsewhere (another
    runner's checkout) is the same request. ``prints``: the table's files as
    already read (:func:`.tables.table_prints`); None: read now. A table run
    without a key is found again after a stop by the same fields
    (:func:`.send_file.upload_place`).
    """
    from .tables import table_fingerprint, table_prints

    fields = {
        INPUT: table_fingerprint(table_prints(run.table) if prints is None else prints),
        "prompt": run.template,
        "system": run.system,
        "id_column": run.id_column,
        "embed": run.embed,
        "dedupe": None if run.dedupe else "off",
    }
    for name, value in sorted(run.options.items()):
        fields[name] = json.dumps(value, sort_keys=True)
    return tuple((k, v) for k, v in fields.items() if v is not None)


def bind(spec: SendSpec, report: FileReport) -> Keyed:
    """The key bound to this send's request: the input's fingerprint, the model, the names, the caller's fields."""
    assert spec.key is not None
    fields = {INPUT: report.fingerprint or "", "model": spec.model, "name": spec.name}
    if spec.dataset_name is not None:
        fields["dataset_name"] = spec.dataset_name
    if spec.dataset_type is not None:
        fields["dataset_type"] = spec.dataset_type
    fields.update(spec.key.fields)
    return Keyed(spec.key.key, fields)


def look(
    client: CohereClient, keyed: Keyed, report: FileReport, model: str, reporter: Reporter
) -> None:
    """Raise what the key's run already made (a batch, a dataset), or :class:`KeyReused`; else bind the key.

    Called between the check and the upload: nothing is sent before it returns.
    """
    from ..api.errors import NotFoundError
    from ..naming import key_of, parse_batch_name
    from .lineage import open_store_or_warn
    from .sending import EarlierBatch, EarlierUpload, newest_batch, newest_dataset

    run_id = keyed.run_id
    store = open_store_or_warn(reporter, "looking for the run of this idempotency key")
    record = store.keyed_run(run_id) if store is not None else None
    if record is not None and record.digest != keyed.digest:
        raise _reused(
            keyed,
            "this machine's record of it",
            differences(json.loads(record.fields), keyed.fields),
        )
    if record is not None and record.batch_id:
        try:
            found = client.get_batch(record.batch_id)
        except NotFoundError:
            pass
        else:
            reporter.info(f"idempotency key: run {run_id} is batch {found.id}, re-attached")
            raise EarlierBatch(found)

    def ours(name: str | None) -> bool:
        """A name of the key's run: its original batch or its dataset, never a retry's (whose label keeps the tag)."""
        return _one_batch(name or "", run_id)

    def a_part(name: str | None) -> bool:
        """A part of the job the key made (a job's id is its key's run id)."""
        lineage = parse_batch_name(name or "")[1]
        return lineage is not None and lineage.job_id == run_id

    batch = newest_batch(client, lambda b: ours(b.name) or a_part(b.name))
    if batch is not None and a_part(batch.name):
        raise _reused(keyed, f"job {run_id} on the API", ["a job of parts, not one batch"])
    if batch is not None:
        if key_of(batch.name) != (run_id, keyed.digest):  # what the API shows, said only then
            _same(
                client,
                keyed,
                batch.name,
                f"batch {batch.id}",
                _api_fields(client, batch, report, model),
            )
        _bind(store, keyed, batch.id)
        reporter.info(f"idempotency key: run {run_id} is batch {batch.id}, re-attached")
        raise EarlierBatch(batch)
    dataset = newest_dataset(client, lambda d: ours(d.name) and d.validation_status != "failed")
    if dataset is not None:
        known = (
            []
            if dataset.num_rows in (None, report.rows)
            else [f"records: {dataset.num_rows}, now {report.rows}"]
        )
        _same(client, keyed, dataset.name, f"dataset {dataset.id}", known)
        _bind(store, keyed, None)
        reporter.info(
            f"idempotency key: run {run_id} uploaded dataset {dataset.id} and was stopped before its create; "
            "carrying on from it (nothing is uploaded again)"
        )
        raise EarlierUpload(dataset.id)
    _bind(store, keyed, None)


def keyed_job(
    client: CohereClient,
    path: Path,
    reporter: Reporter,
    options: JobOptions,
    store: StateStore,
    key: KeyOptions,
) -> JobRecord:
    """A job under an idempotency key: the job the key's run id names, re-attached, or a new one of that id.

    The job's id is the key's run id, so its parts' names carry it (``[job RUN
    part P]``) and the engine's own scan of a job's parts finds them; its label
    carries the request's digest (``NAME [key RUN DIGEST]``), so another
    machine tells another request apart. The request is the input's
    fingerprint and the split: model, name, type, ``max_bytes``,
    ``max_records``, and the caller's fields (a table's prompt...). A job this
    machine recorded is compared with its record and returned as it is (the
    caller sends what it has not sent yet, as ``jobs resume`` does); one found
    on the API only is attached (:func:`.jobs.attach_job`, which checks each
    part's record count too); else the job is made, with the key's run id.
    """
    import dataclasses

    from ..fingerprint import file_fingerprint
    from ..idempotency import run_id_of
    from ..naming import Lineage, batch_name, dataset_name, key_of, keyed_batch_name
    from .jobs import attach_job, create_job, scan_batches, scan_datasets
    from .sending import newest_batch

    run_id = run_id_of(key.key)

    def keyed_for(fingerprint: str) -> Keyed:
        fields = {INPUT: fingerprint, "model": options.model, "name": options.label}
        fields["max_bytes"] = str(options.max_bytes)
        if options.max_records is not None:
            fields["max_records"] = str(options.max_records)
        if options.dataset_type is not None:
            fields["dataset_type"] = options.dataset_type
        fields.update(key.fields)
        return Keyed(key.key, fields)

    existing, record = store.job(run_id), store.keyed_run(run_id)
    if (
        existing is not None
        and record is None
        and all(p.step == "planned" for p in store.parts(run_id))
    ):
        # Killed while its input was split, before the key was bound: nothing was sent and the
        # request is unknown here, so the job is made again (same id), named and bound this time.
        existing = None
    if existing is not None or record is not None:
        keyed = keyed_for(file_fingerprint(path))  # this call's check of its input
        if record is not None and record.digest != keyed.digest:
            earlier = json.loads(record.fields)
            raise _reused(keyed, "this machine's record of it", differences(earlier, keyed.fields))
    if existing is not None:
        reporter.info(f"idempotency key: run {run_id} is job {run_id}, re-attached")
        return existing
    single = newest_batch(client, lambda b: _one_batch(b.name, run_id))
    if single is not None:
        keyed = keyed_for(file_fingerprint(path))
        raise _reused(keyed, f"batch {single.id} on the API", ["one batch, not a job of parts"])
    batches = scan_batches(client, run_id, None)
    if batches or scan_datasets(client, run_id):
        keyed = keyed_for(file_fingerprint(path))
        names = [b.name for attempts in batches.values() for b in attempts.values()]
        carried = next((c for c in map(key_of, names) if c is not None), None)
        if carried is not None and carried[1] != keyed.digest:
            raise _reused(
                keyed, f"job {run_id} on the API, request {carried[1]}, now {keyed.digest}",
                ["the input or an option differs (this machine has no record of the request to say which)"],
            )  # fmt: skip
        label = keyed_batch_name(options.label, run_id, keyed.digest)
        job = attach_job(
            client, run_id, path, reporter, store, dataclasses.replace(options, label=label)
        )
        _bind(store, keyed, None)
        reporter.info(f"idempotency key: run {run_id} is job {run_id}, re-attached")
        return job
    job = create_job(client, path, reporter, options, store, job_id=run_id)
    keyed = keyed_for(job.fingerprint or "")
    label = keyed_batch_name(options.label, run_id, keyed.digest)
    lineages = [Lineage(job_id=run_id, part=n) for n in range(1, (job.parts or 0) + 1)]
    store.relabel_job(
        run_id,
        label,
        [(ln.part or 0, dataset_name(label, ln), batch_name(label, ln)) for ln in lineages],
    )  # the parts' names were planned with the label: named again before any is sent
    _bind(store, keyed, None)
    relabeled = store.job(run_id)
    assert relabeled is not None
    return relabeled


def _one_batch(name: str, run_id: str) -> bool:
    """Whether ``name`` is the one batch (not a retry, not a job's part) the key's run id names."""
    from ..naming import key_of, parse_batch_name

    carried = key_of(name)
    return carried is not None and carried[0] == run_id and parse_batch_name(name)[1] is None


def made(keyed: Keyed, batch: Batch, reporter: Reporter) -> None:
    """Record the batch the key's run made (a store that fails is a warning: the API's names carry the run)."""
    from ..errors import StoreError
    from .lineage import open_store_or_warn

    store = open_store_or_warn(reporter, "the idempotency key's batch")
    if store is None:
        return
    try:
        store.bind_key(keyed.run_id, keyed.digest, keyed.fields_json())
        store.keyed_batch(keyed.run_id, batch.id)
    except StoreError as exc:
        reporter.warn(
            f"{exc}; the idempotency key's batch is not recorded here (its name carries it)"
        )


def _bind(store: StateStore | None, keyed: Keyed, batch_id: str | None) -> None:
    from ..errors import StoreError

    if store is None:
        return
    try:
        store.bind_key(keyed.run_id, keyed.digest, keyed.fields_json())
        if batch_id is not None:
            store.keyed_batch(keyed.run_id, batch_id)
    except StoreError:
        pass  # the names on the API carry the key: the look by name still finds the run


def _same(client: CohereClient, keyed: Keyed, name: str, what: str, known: list[str]) -> None:
    """Refuse a run found on the API whose name carries another request's digest."""
    from ..naming import key_of

    carried = key_of(name)
    if carried is not None and carried[1] != keyed.digest:
        said = known or [
            "the input or an option differs (this machine has no record of the request to say which)"
        ]
        raise _reused(keyed, f"{what} on the API, request {carried[1]}, now {keyed.digest}", said)


def _api_fields(client: CohereClient, batch: Batch, report: FileReport, model: str) -> list[str]:
    """What the API shows of the request a batch was made for, beside this one: its model and its record count."""
    from ..api.errors import CohereAPIError

    known = []
    if batch.model and batch.model != model:
        known.append(f"model: {json.dumps(batch.model)}, now {json.dumps(model)}")
    if batch.input_dataset_id:
        try:
            rows = client.get_dataset(batch.input_dataset_id).num_rows
        except CohereAPIError:
            rows = None
        if rows is not None and rows != report.rows:
            known.append(f"records: {rows}, now {report.rows}")
    return known


def _reused(keyed: Keyed, source: str, lines: list[str]) -> Exception:
    from ..errors import KeyReused

    return KeyReused(
        f"idempotency key {keyed.key!r} names run {keyed.run_id}, made for another request "
        f"({source}): " + "; ".join(lines),
        hint="give the same input and options to re-attach to that run, or another key for a new one",
    )
