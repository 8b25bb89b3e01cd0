"""Avro part files into records, parts in ``index`` order, each file deleted once read."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ResultsError
from .parts import part_label

if TYPE_CHECKING:
    from ..api.models import DatasetPart


def decoded_records(
    parts: Sequence[DatasetPart],
    wait: Callable[[int], Path],
    counts: list[int] | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Every record of every part, in order; ``wait(position)`` gives a part's file once downloaded.

    ``fastavro.reader`` streams block by block, so a part is never held whole,
    and the order is the parts' whatever order their downloads finished in.
    ``counts``, when given, receives the number of records of each part read
    whole, for the check against its ``num_rows``. fastavro is imported here,
    on first use, to keep start-up cheap.

    A part that is not a readable Avro file, however it is damaged (a bad
    header or schema, a damaged deflate block, a truncated file, a length
    that runs past the end), is a :class:`ResultsError`: the bytes came from
    outside, and any failure to decode them says only that they are
    unreadable. fastavro raises a dozen kinds for that (``ValueError``,
    ``EOFError``, ``zlib.error``, its schema errors, ``MemoryError`` for a
    length of petabytes...), so every ``Exception`` it raises is caught here,
    and only around the decoding itself.
    """
    import fastavro

    for position, part in enumerate(parts):
        path = wait(position)
        found = 0
        try:
            with open(path, "rb") as fh:
                try:
                    for record in fastavro.reader(fh):
                        found += 1
                        yield record if isinstance(record, dict) else {"value": record}
                except Exception as exc:  # see the docstring: the bytes are untrusted
                    raise ResultsError(
                        f"part {part_label(part, position)} is not a readable Avro file "
                        f"(after {found:,} records): {_reason(exc)}"
                    ) from exc
        finally:
            path.unlink(missing_ok=True)
        if counts is not None:
            counts.append(found)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{name}: {text}" if text else name
