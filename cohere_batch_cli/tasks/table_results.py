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
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputChanged, InputFileError, StoreError, UsageError

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from ..results.table_out import InputTable
    from ..state.store import TableInput
    from .reporting import Reporter


def input_table_of(
    client: CohereClient,
    batch: Batch,
    join: Path | None,
    answer_prefix: str | None,
    fmt: str,
    reporter: Reporter,
) -> InputTable | None:
    """The table ``batch``'s results are written into; None for a batch not made from a table.

    Raises :class:`InputChanged` (exit 5) for a recorded table that changed,
    :class:`UsageError` (exit 2) for ``--answer-prefix`` without a table, or
    for answer columns that collide with the table's own.
    """
    from ..results.table_out import InputTable, added_names, refuse_collisions
    from .tables import TableRows, holds_requests

    if join is not None and holds_requests(join):
        if answer_prefix is not None:
            raise UsageError(
                f"--answer-prefix names the columns added to a table, and --join {join} holds requests"
            )
        return None
    record = recorded_table(client, batch, reporter)
    if join is None and record is None:
        if answer_prefix is not None:
            raise UsageError(
                f"--answer-prefix names the columns added to a table run's table, and batch {batch.id} "
                "was not made from a table this machine recorded",
                hint="give the table with --join TABLE",
            )
        return None
    if join is not None:
        path = join
    else:
        assert record is not None
        path = Path(record.path)
        _refuse_changed(path, record, batch)
    typed = None
    if record is not None and record.answer_schema is not None:
        from ..results.answer_columns import TypedAnswers

        typed = TypedAnswers.of_schema(json.loads(record.answer_schema))
    table = InputTable(
        rows=TableRows(path),
        label=str(path),
        id_column=record.id_column if record is not None else None,
        answer_prefix=answer_prefix or "",
        typed=typed,
    )
    refuse_collisions(table, added_names(table, fmt=fmt))
    return table


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


def _refuse_changed(path: Path, record: TableInput, batch: Batch) -> None:
    from .tables import FilePrint, table_changes

    hint = "put the table back as it was, or give the table to write with --join TABLE"
    if not path.exists():
        raise InputFileError(
            f"the table batch {batch.id} was made from, {path}, is not there any more",
            hint=hint,
        )
    changed = table_changes(path, [FilePrint(f.name, f.size, f.fingerprint) for f in record.files])
    if changed:
        raise InputChanged(
            f"{path} changed since batch {batch.id} was made from it ({changed}): "
            "its rows are not the ones that were asked; nothing was written",
            hint=hint,
        )
