"""A table run's results: the table it was made from, found again, checked, and handed to the writer.

``create --from TABLE`` records the table its requests were rendered from
(:meth:`~cohere_batch_cli.state.store.StateStore.record_table_input`: the
path, ``--id-column``, the answer schema, each file's size and fingerprint)
under the input dataset's id. ``results`` of that batch, or of any retry of
it, finds the record through the chain's first batch and writes the table
again with the answers as columns (:mod:`cohere_batch_cli.results.table_out`).

The recorded table is read only if it is still what ``create`` read: a file
gone, new, resized or rewritten is refused (exit 5), naming what changed,
before anything is downloaded, since the rows would no longer be the ones
that were asked. ``--join TABLE`` names the table to write instead (taken as
it is; a ``--join`` of requests keeps its old meaning).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputChanged, InputFileError, StoreError, UsageError

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from ..results.table_out import InputTable
    from ..state.answer_cache import AnswerCache
    from ..state.store import TableInput
    from .reporting import Reporter
    from .results_spec import ResultsSpec
    from .table_match import Matched
    from .tables import TableRows


def input_table_of(
    client: CohereClient, batch: Batch, spec: ResultsSpec, fmt: str, reporter: Reporter
) -> InputTable | None:
    """The table ``batch``'s results are written into; None for a batch not made from a table.

    Raises :class:`InputChanged` (exit 5) for a recorded table that changed,
    :class:`UsageError` (exit 2) for ``--answer-prefix`` or ``--id-column``
    without a table, or for answer columns that collide with the table's own.
    A ``--join TABLE`` of a run this machine has no record of is matched to
    the run's requests, read from the API (:mod:`.table_match`).
    """
    from .tables import TableRows, holds_requests

    join, answer_prefix, output = spec.join, spec.answer_prefix, spec.output
    if join is not None and holds_requests(join):
        for flag, value in (("--answer-prefix", answer_prefix), ("--id-column", spec.id_column)):
            if value is not None:
                raise UsageError(
                    f"{flag} is for a table given with --join, and --join {join} holds requests"
                )
        return None
    run = f"batch {batch.id}"
    record = recorded_table(client, batch, reporter)
    _refuse_id_column(spec.id_column, record, run, join)
    if record is not None or join is None:
        return _input_table(record, run, join, answer_prefix, fmt, reporter, output)
    from .table_match import match_requests

    rows = TableRows(join)
    matched = match_requests(client, batch, rows, _shown(join), spec, reporter)
    return _input_table(
        None, run, join, answer_prefix, fmt, reporter, output, rows=rows, matched=matched
    )


def _refuse_id_column(
    given: str | None, record: TableInput | None, run: str, join: Path | None
) -> None:
    """``--id-column`` says how the rows of a ``--join`` table were named: refused where it means nothing."""
    if given is None:
        return
    if record is None and join is None:
        raise UsageError(
            f"--id-column names how the rows of a --join table were named, and {run} was not "
            "made from a table this machine recorded",
            hint="give the table with --join TABLE",
        )
    if record is not None and record.id_column != given:
        was = "their row numbers" if record.id_column is None else f"column '{record.id_column}'"
        raise UsageError(
            f"the rows of {run} were named by {was} (recorded when it was made), "
            f"not by column '{given}'",
            hint="leave out --id-column",
        )


def input_table_of_job(
    job_id: str, spec: ResultsSpec, fmt: str, reporter: Reporter
) -> InputTable | None:
    """The table a job's results are written into (``jobs create --from``); None for a job of a file."""
    from ..state.store import existing_store
    from .tables import holds_requests

    join, answer_prefix, output = spec.join, spec.answer_prefix, spec.output
    if join is not None and holds_requests(join):
        return None  # refused by the job's own checks: a job takes no --join of requests
    store = existing_store()
    try:
        record = store.table_input(job_id) if store is not None else None
    except StoreError as exc:
        reporter.warn(f"{exc}; the table job {job_id} was made from cannot be looked up")
        record = None
    _refuse_id_column(spec.id_column, record, f"job {job_id}", join)
    return _input_table(record, f"job {job_id}", join, answer_prefix, fmt, reporter, output)


def _input_table(
    record: TableInput | None,
    run: str,
    join: Path | None,
    answer_prefix: str | None,
    fmt: str,
    reporter: Reporter,
    output: str | None = None,
    *,
    rows: TableRows | None = None,
    matched: Matched | None = None,
) -> InputTable | None:
    """``matched``: how the rows were named and the schema, read from the run's requests (no record here)."""
    from ..results.table_out import PREFIX_HINT, InputTable, added_names, refuse_collisions
    from .tables import TableRows

    if join is None and record is None:
        if answer_prefix is not None:
            raise UsageError(
                f"{reporter.spell('--answer-prefix', 'answer_prefix')} names the columns added "
                f"to a table run's table, and {run} was not made from a table this machine recorded",
                hint=reporter.spell(
                    "give the table with --join TABLE",
                    "leave answer_prefix out: its results are records, with no columns added",
                ),
            )
        return None
    if join is not None:
        path = join
    else:
        assert record is not None
        path = Path(record.path)
        _refuse_changed(path, record, run)
    _refuse_writing_over(path, output)
    typed = None
    schema = record.answer_schema if record is not None else matched and matched.schema
    if schema:
        from ..results.answer_columns import TypedAnswers

        typed = TypedAnswers.of_schema(json.loads(schema))
    id_column = record.id_column if record is not None else matched and matched.id_column
    table = InputTable(
        rows=rows if rows is not None else TableRows(path),
        label=_shown(path),
        id_column=id_column or None,
        answer_prefix=answer_prefix or "",
        typed=typed,
        prefix_hint=reporter.spell(
            PREFIX_HINT,
            'answer_prefix="P" puts P before every column results adds (e.g. answer_prefix="llm_")',
        ),
    )
    refuse_collisions(table, added_names(table, fmt=fmt))
    if record is not None:
        table = replace(table, reuse=MapReuse.of_run(record.dataset_id, reporter))
    return table


CHUNK_QUERIES = {
    "reused": "SELECT row, rep FROM reused WHERE row >= ? AND row < ?",
    "answers": "SELECT row, body FROM answers WHERE row IN (SELECT value FROM json_each(?))",
    "requests": "SELECT row, key FROM requests WHERE row IN (SELECT value FROM json_each(?))",
}
"""What :class:`MapReuse` asks the map for each chunk of rows ``results`` writes: each a search
by an index of :data:`.request_reuse.MAP_INDEXES`, never a scan of the whole table."""


class MapReuse:
    """The rows a table run did not send, read from the map ``create --from`` kept (:mod:`.request_reuse`).

    A row that asked what an earlier row asked takes that row's answer; a row
    the answer cache answered takes the reply ``create`` copied into the map
    (the cache itself may be gone by now: it is not read). The run's own
    answers that are usable (succeeded, and valid for a schema) go into the
    cache as they are written, unless the run said ``--no-cache``: a failed or
    invalid answer is never kept.
    """

    def __init__(
        self, db: sqlite3.Connection, model: str, cache: AnswerCache | None, dataset_id: str = ""
    ) -> None:
        self._db = db
        self._model = model
        self._cache = cache
        self._dataset_id = dataset_id
        self._reporter: Reporter | None = None

    @classmethod
    def of_run(cls, dataset_id: str, reporter: Reporter) -> MapReuse | None:
        """The map of the run of input dataset ``dataset_id``; None when it sent every row (or kept no map)."""
        from ..state.store import existing_store

        store = existing_store()
        try:
            found = store.table_requests(dataset_id) if store is not None else None
        except StoreError as exc:
            reporter.warn(f"{exc}; rows that reuse another's answer show as missing")
            return None
        if found is None:
            return None
        if not found.map_file:
            reporter.warn(
                f"the map of which rows of dataset {dataset_id} reuse another's answer was removed "
                "by jobs prune: those rows show as missing"
            )
            return None
        try:
            db = sqlite3.connect(Path(found.map_file).absolute().as_uri() + "?mode=ro", uri=True)
            db.execute("SELECT 1 FROM reused, answers LIMIT 1")
            _index_kept_map(db, found.map_file)
        except sqlite3.Error as exc:
            reporter.warn(
                f"cannot read which rows reuse another's answer ({found.map_file}: {exc}): "
                "they show as missing"
            )
            return None
        cache = None
        if found.use_cache:
            from ..state.answer_cache import CacheUnusable, open_cache

            try:
                cache = open_cache()
            except CacheUnusable as exc:
                reporter.warn(
                    f"{exc}; this run's answers are not kept in it (deleting the file is safe)"
                )
        made = cls(db, found.model, cache, dataset_id)
        made._reporter = reporter
        return made

    def reused(self, start: int, stop: int) -> dict[int, int]:
        return dict(self._db.execute(CHUNK_QUERIES["reused"], (start, stop)).fetchall())

    def cached(self, rows: list[int]) -> dict[int, str]:
        if not rows:
            return {}
        return {
            row: bytes(body).decode("utf-8", errors="replace")
            for row, body in self._db.execute(CHUNK_QUERIES["answers"], (json.dumps(rows),))
        }

    def written(self) -> None:
        """The table was written whole: noted with the run, for ``jobs prune`` to know the map is done with."""
        from ..state.store import existing_store

        store = existing_store()
        try:
            if store is not None:
                store.table_results_written(self._dataset_id)
        except StoreError as exc:  # a courtesy to prune: never a failed results
            if self._reporter is not None:
                self._reporter.warn(f"{exc}; jobs prune will keep this run's map")

    def keep(self, answers: list[tuple[int, str, int, int]]) -> None:
        if self._cache is None:
            return
        from ..state.answer_cache import Entry

        keys = dict(
            self._db.execute(
                CHUNK_QUERIES["requests"], (json.dumps([a[0] for a in answers]),)
            ).fetchall()
        )
        entries = [
            Entry(keys[row], self._model, body.encode("utf-8"), tin, tout)
            for row, body, tin, tout in answers
            if row in keys
        ]
        self._guarded(lambda cache: cache.put(entries), 0)

    def close(self) -> None:
        self._db.close()
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def _guarded(self, action: Any, otherwise: Any) -> Any:
        """A cache that fails mid-write is let go with one warning: the table is still written."""
        from ..state.answer_cache import CacheUnusable

        assert self._cache is not None
        try:
            return action(self._cache)
        except (CacheUnusable, sqlite3.Error) as exc:
            if self._reporter is not None:
                self._reporter.warn(f"{exc}; the rest of the table is written without the cache")
            self._cache.close()
            self._cache = None
            return otherwise


def _index_kept_map(db: sqlite3.Connection, path: str) -> None:
    """A map kept before it had indexes by row gets them, once: else each chunk of ``results`` scans it whole.

    Building them reads the map once; a map that cannot be written (a read-only
    folder, a lock held too long) is read as it is, only slower.
    """
    from .request_reuse import MAP_INDEXES, create_map_indexes

    found = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    if set(MAP_INDEXES) <= found:
        return
    try:
        with closing(sqlite3.connect(path, timeout=5)) as writable, writable:
            create_map_indexes(writable)
    except sqlite3.Error:
        pass


def recorded_table(client: CohereClient, batch: Batch, reporter: Reporter) -> TableInput | None:
    """The table this machine recorded for ``batch``'s input, or its first attempt's (a retry's)."""
    from ..naming import parse_batch_name
    from ..state.store import existing_store

    store = existing_store()
    if store is None:
        return None
    try:
        datasets = [batch.input_dataset_id]
        known = store.batch(batch.id)
        if known is not None:
            datasets.append(known.input_dataset_id)
            root = store.batch(known.root_id) if known.root_id != batch.id else None
            if root is not None:
                datasets.append(root.input_dataset_id)
        lineage = parse_batch_name(batch.name)[1]
        if lineage is not None and lineage.root_batch_id and lineage.root_batch_id != batch.id:
            root_record = store.batch(lineage.root_batch_id)
            if root_record is not None:
                datasets.append(root_record.input_dataset_id)
            else:
                datasets.append(client.get_batch(lineage.root_batch_id).input_dataset_id)
        for dataset_id in datasets:
            if dataset_id and (found := store.table_input(dataset_id)) is not None:
                return found
    except StoreError as exc:
        reporter.warn(f"{exc}; the table batch {batch.id} was made from cannot be looked up")
    return None


def run_schema(client: CohereClient, batch: Batch, reporter: Reporter) -> str | None:
    """The answer schema (JSON text) of the run ``batch`` belongs to; None for a run without one.

    The table recorded for the batch (or its first attempt), else, for a
    part of a table job or a retry of one, the job's (recorded under the
    job's id). A schema run's invalid answers count as failed
    (:mod:`cohere_batch_cli.results.validity`): retries send them again and
    ``watch --fail-on-records`` counts them.
    """
    from ..naming import parse_batch_name

    record = recorded_table(client, batch, reporter)
    if record is not None:
        return record.answer_schema
    lineage = parse_batch_name(batch.name)[1]
    if lineage is None or lineage.job_id is None:
        return None
    return job_schema(lineage.job_id, reporter)


def job_schema(job_id: str, reporter: Reporter) -> str | None:
    """The answer schema (JSON text) of a table job made with ``--schema`` on this machine; None otherwise."""
    from ..state.store import existing_store

    store = existing_store()
    if store is None:
        return None
    try:
        record = store.table_input(job_id)
    except StoreError as exc:
        reporter.warn(f"{exc}; the table job {job_id} was made from cannot be looked up")
        return None
    return record.answer_schema if record is not None else None


def _refuse_writing_over(table: Path, output: str | None) -> None:
    """Refuse (exit 2) an output that is the table itself, or a file in a folder table.

    The rename that ends the write would put the answers in place of the
    user's own table, and every later ``results`` of the run would find it changed.
    """
    if output is None or output == "-":
        return
    try:
        target, own = Path(output).resolve(), table.resolve()
    except OSError:
        return
    if target == own or own in target.parents:
        from ..errors import OutputOptionError

        raise OutputOptionError(
            f"-o {output} is the table the answers are written beside: it would be replaced",
            hint="write the table out to another file",
        )


def _shown(path: Path) -> str:
    """The table as messages name it: relative to the current folder when it is under it."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _refuse_changed(path: Path, record: TableInput, run: str) -> None:
    from .tables import FilePrint, table_changes

    hint = "put the table back as it was, or give the table to write with --join TABLE"
    if not path.exists():
        raise InputFileError(
            f"the table {run} was made from, {path}, is not there any more",
            hint=hint,
        )
    changed = table_changes(path, [FilePrint(f.name, f.size, f.fingerprint) for f in record.files])
    if changed:
        raise InputChanged(
            f"{path} changed since {run} was made from it ({changed}): "
            "its rows are not the ones that were asked; nothing was written",
            hint=hint,
        )
