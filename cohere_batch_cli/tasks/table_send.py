"""A table's requests for a send: rendered once into a file, and recorded once the batch is made.

``create --from`` and the Python API's ``client.create(table=...)`` make a
batch from a table the same way: the rows are rendered into a temporary
JSONL of requests (:mod:`.table_prompts`; rows that ask the same thing sent
once and answers the cache holds not sent, :mod:`.request_reuse`), the table's
files are fingerprinted before a row is read (so ``results`` can write the
table again and tell when it changed), the file goes through the send engine
(:func:`.send_file.create_from_file`) like any other, and once the batch
exists both are recorded under its input dataset: :meth:`TableRequests.sent`.
The file lives as long as the block, so a command that retries in the same
run (``create --from ... --retry-failed``) still reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Prices
    from .reporting import Reporter
    from .request_reuse import RequestMap
    from .table_prompts import TableSpec
    from .tables import FilePrint


@dataclass(frozen=True)
class TableRequests:
    """A table's rendered requests (``file``), and what to record of them once they are sent."""

    run: TableSpec
    file: Path
    reuse: RequestMap
    prints: list[FilePrint] | None
    """The table's files as they were before rendering; None for a dry run, which records nothing."""

    def sent(self, dataset_id: str, reporter: Reporter) -> None:
        """The requests are dataset ``dataset_id``: keep the reuse map and the table's prints for results."""
        from .lineage import remember_table_input

        self.reuse.keep(dataset_id, reporter)  # for results to give every row its answer
        if self.prints is not None:  # a store that fails is a warning
            remember_table_input(dataset_id, self.run, self.prints, reporter)


@contextmanager
def table_requests_file(
    run: TableSpec,
    model: str,
    prices: Prices | None,
    reporter: Reporter,
    *,
    record: bool = True,
    keep_as: Path | None = None,
) -> Iterator[TableRequests]:
    """The table's requests rendered whole (a missing column or a null stops it here), removed on exit.

    ``record``: fingerprint the table first, for :meth:`TableRequests.sent` (a dry run does not).
    ``keep_as``: the requests are a job's input, kept there past the block (each part, a resume
    and a retry read them again).
    """
    from .request_reuse import table_requests
    from .table_prompts import requests_from_table
    from .tables import table_prints

    with ExitStack() as stack:
        reuse = stack.enter_context(table_requests(run, model, prices, reporter, kept=record))
        prints = table_prints(run.table) if record else None  # before the rows are read
        file = stack.enter_context(
            requests_from_table(run, reporter, reuse, model=model, keep_as=keep_as)
        )
        yield TableRequests(run, file, reuse, prints)
