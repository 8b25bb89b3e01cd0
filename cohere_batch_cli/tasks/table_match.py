"""A table run's table matched to the requests the API holds, on a machine with no record of the run.

``create --from TABLE`` records on its own machine how the run was made: the
column that named its rows (``--id-column``), its answer schema, and which
rows were not sent because they asked what an earlier row asked (or the answer
cache answered them). ``results RUN -o OUT --join TABLE`` on another machine
(a CI runner, a colleague's) has none of that; the run's first batch's input
dataset still holds its requests, ``custom_id`` and ``body``, in the table's
row order, and they say the first two:

- **the rule**: each candidate (``--id-column COL`` when given; else the row
  numbers, then every column whose first row names the first request) is
  compared with the requests' ``custom_id``\\s row after row over the whole
  table, and the first that names every row as its request is named is taken;
- **the schema**: the first request's ``response_format.json_schema``.

The third cannot be known without the template the rows were rendered with: a
table with more rows than the run sent requests had rows answered by another
row's request, and which rows those are is recorded only where the run was
made. That is refused (exit 5), as is a table none of whose rules fits: rows
written as ``missing`` because they were matched by the wrong rule would be a
wrong table written without a word.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputRejected, UsageError

if TYPE_CHECKING:
    from ..api.client import CohereClient
    from ..api.models import Batch
    from .reporting import Reporter
    from .results_spec import ResultsSpec
    from .tables import TableRows

NO_RECORD_HINT = (
    "run results on the machine that made the run (or point CBATCH_STATE_DIR at a copy of its "
    "state folder); --records writes the records alone"
)


@dataclass(frozen=True)
class Matched:
    """What the requests say of a run made from a table: how its rows were named, its answer schema."""

    id_column: str | None
    """The column whose values are the rows' ``custom_id``\\s; None: the row numbers, from 1."""
    schema: str | None
    """The answer schema (JSON text) the requests were sent with; None for a run without one."""


def match_requests(
    client: CohereClient,
    batch: Batch,
    table: TableRows,
    label: str,
    spec: ResultsSpec,
    reporter: Reporter,
) -> Matched:
    """How ``table``'s rows were named in ``batch``'s run, read from its requests; refused when it cannot be right."""
    from ..api.client import Timeouts, storage_client
    from ..naming import parse_batch_name
    from .lineage import Chain, root_of
    from .sources import find_input

    lineage = parse_batch_name(batch.name)[1]
    if lineage is not None and lineage.job_id is not None:
        raise UsageError(
            f"batch {batch.id} is part {lineage.part} of job {lineage.job_id}, and this machine has "
            "no record of the table the job was made from",
            hint=f"write the job's table where it was made (cbatch jobs results {lineage.job_id}); "
            "--records writes this part's records alone",
        )
    root_id = root_of(batch, None)
    root = batch if root_id == batch.id else client.get_batch(root_id)
    timeouts = Timeouts(read=spec.read_timeout) if spec.read_timeout else Timeouts()
    with (
        tempfile.TemporaryDirectory(prefix="cbatch-match-") as work,
        storage_client(timeouts=timeouts, ca_bundle=spec.ca_bundle) as http,
    ):
        try:
            source = find_input(
                client, Chain(root, (root,), (1,)), given=None, store=None,
                workdir=Path(work), http=http, reporter=reporter,
            )  # fmt: skip
        except InputRejected as exc:
            raise InputRejected(
                f"this machine has no record of the run of batch {batch.id}, and its requests, "
                f"which {label} would be matched to, cannot be read ({exc})",
                hint=NO_RECORD_HINT,
            ) from None
        return _match(source.path, root.id, table, label, spec.id_column)


def _match(requests: Path, root: str, table: TableRows, label: str, given: str | None) -> Matched:
    first_id, first_body, sent = _first_and_count(requests)
    rows = table.count()
    if rows > sent:
        raise InputRejected(
            f"{label} has {rows:,} rows and batch {root} sent {sent:,} requests: either it is not "
            "the table the run was made from, or rows that asked what an earlier row asked (or "
            "that the answer cache answered) were not sent, and which rows those are is recorded "
            "only on the machine that made the run",
            hint=NO_RECORD_HINT,
        )
    if rows < sent:
        raise InputRejected(
            f"{label} has {rows:,} rows and batch {root} sent {sent:,} requests: "
            "it is not the table the run was made from",
            hint="give --join the table the run was made from",
        )
    if given is not None and given not in table.columns:
        raise UsageError(f"{label} has no column '{given}' (--id-column)")
    chunks = table.chunks()
    try:
        first_row = next(chunks).rows[0]
    finally:
        chunks.close()  # its file let go now
    if given is not None:
        candidates: list[str | None] = [given]
    else:
        candidates = [None] if first_id == "1" else []
        candidates += [
            c
            for c in table.columns
            if first_row.get(c) is not None and str(first_row[c]) == first_id
        ]
    for candidate in candidates:
        ids = (str(n) for n in range(1, rows + 1)) if candidate is None else table.ids(candidate)
        differs = _differs(requests, ids)  # row numbers need no read of the table
        if differs is None:
            return Matched(candidate, _schema(first_body))
        if given is not None:
            row, theirs, ours = differs
            raise InputRejected(
                f"request {row:,} of batch {root} is named '{theirs}', and row {row:,} of {label} "
                f"is '{ours}' in its column '{given}': the run's rows were not named by that column",
                hint="leave out --id-column to find how they were named",
            )
    raise InputRejected(
        f"neither the row numbers of {label} nor any of its columns name its rows as batch "
        f"{root}'s requests are named (the first is '{first_id}'): it is not the table the run "
        "was made from",
        hint="give --join the table the run was made from, or the requests file it sent",
    )


def _requests(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                yield record if isinstance(record, dict) else {}


def _first_and_count(path: Path) -> tuple[str | None, Any, int]:
    first_id: str | None = None
    first_body: Any = None
    count = 0
    for record in _requests(path):
        if count == 0:
            first_id, first_body = _text(record.get("custom_id")), record.get("body")
        count += 1
    return first_id, first_body, count


def _differs(path: Path, ids: Iterator[str | None]) -> tuple[int, str | None, str | None] | None:
    """The first row whose id is not its request's (row, request's id, row's id); None when all match."""
    for number, (record, ours) in enumerate(zip(_requests(path), ids, strict=True), start=1):
        theirs = _text(record.get("custom_id"))
        if theirs != ours:
            return number, theirs, ours
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _schema(body: Any) -> str | None:
    """The answer schema of a request body, as JSON text: ``response_format.json_schema``."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if not isinstance(body, dict):
        return None
    shape = body.get("response_format")
    if not isinstance(shape, dict) or not isinstance(shape.get("json_schema"), dict):
        return None
    return json.dumps(shape["json_schema"])
