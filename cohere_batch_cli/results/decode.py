"""Avro part files into records, parts in ``index`` order, each file deleted once read."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ResultsError
from .parts import part_label

if TYPE_CHECKING:
    from ..api.models import DatasetPart

_AVRO_ERRORS = (ValueError, EOFError, StopIteration, TypeError, KeyError, IndexError)
"""What fastavro raises on a file that is not (or not all) Avro."""


def decoded_records(
    parts: Sequence[DatasetPart], wait: Callable[[int], Path]
) -> Generator[dict[str, Any], None, None]:
    """Every record of every part, in order; ``wait(position)`` gives a part's file once downloaded.

    ``fastavro.reader`` streams block by block, so a part is never held whole,
    and the order is the parts' whatever order their downloads finished in.
    fastavro is imported here, on first use, to keep start-up cheap.
    """
    import fastavro

    for position, part in enumerate(parts):
        path = wait(position)
        try:
            with open(path, "rb") as fh:
                try:
                    for record in fastavro.reader(fh):
                        yield record if isinstance(record, dict) else {"value": record}
                except _AVRO_ERRORS as exc:
                    raise ResultsError(
                        f"part {part_label(part, position)} is not a readable Avro file: {exc or type(exc).__name__}"
                    ) from exc
        finally:
            path.unlink(missing_ok=True)
