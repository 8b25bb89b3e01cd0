"""Records put back in the input's order, with flat memory: a scratch SQLite table does the sorting.

The service writes records in an order of its own (shuffled, part by part), and
a job's merge adds the retries' answers after the originals. Asked for input
order (``jobs results --input-order``), the records are numbered by the line
their ``custom_id`` has in the input file, kept in a table keyed by that
number, and read back in it: two passes over disk, never the records in
memory. A record whose ``custom_id`` is not in the input (there should be
none) follows the others, in the order it came.

The input read for the order is hashed as it is read and compared with the
fingerprint its check recorded before a record is written: a file rewritten
since (the same records in another order, the same size) would give another
order without a word, so it is refused (:class:`~cohere_batch_cli.errors.InputChanged`,
exit 5) rather than followed, and the service's order is one option away.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson as _orjson

_BLOCK = 5000


@dataclass(frozen=True)
class InputOrder:
    """The input whose order the records are written in, and what its check recorded of it."""

    path: Path
    fingerprint: str | None
    """The fingerprint of the input its check read (None: recorded before fingerprints, not compared)."""
    owner: str
    """What the input belongs to, for the refusal (``job k3v9x0q2ma``)."""


def in_input_order(
    records: Iterable[dict[str, Any]], order: InputOrder, workdir: Path
) -> Iterator[dict[str, Any]]:
    """``records`` in the order their ``custom_id``s have in ``order.path`` (a JSONL file).

    The scratch table lives in ``workdir`` (beside the destination): a disk that
    fills up under it is a :class:`~cohere_batch_cli.errors.LocalWriteError`
    naming the folder, as a full disk is for the results themselves.
    """
    try:
        yield from _in_input_order(records, order, workdir)
    except sqlite3.OperationalError as exc:  # the disk: full, read-only, failing
        from ..errors import LocalWriteError

        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        reason = "No space left on device" if code == 13 else str(exc)  # SQLITE_FULL
        raise LocalWriteError(
            f"cannot write the table that puts records in input order in {workdir.parent}: {reason}"
        ) from None


def _in_input_order(
    records: Iterable[dict[str, Any]], order: InputOrder, workdir: Path
) -> Iterator[dict[str, Any]]:
    from ..fingerprint import BlockHasher, fingerprint
    from ..state.spill import connect_scratch

    with closing(connect_scratch(workdir / "order.sqlite3", cache_kib=16 * 1024)) as db:
        db.execute("CREATE TABLE pos (id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
        db.execute("CREATE TABLE out (n INTEGER PRIMARY KEY, record TEXT NOT NULL)")
        db.execute("BEGIN")
        rows: list[tuple[str, int]] = []
        n = -1
        hasher = BlockHasher()
        with open(order.path, "rb") as fh:
            for n, line in enumerate(fh):
                hasher.feed(line)
                custom_id = _custom_id(line)
                if custom_id is not None:
                    rows.append((custom_id, n))
                if len(rows) >= _BLOCK:
                    db.executemany("INSERT OR IGNORE INTO pos VALUES (?, ?)", rows)
                    rows = []
        db.executemany("INSERT OR IGNORE INTO pos VALUES (?, ?)", rows)
        if order.fingerprint is not None and fingerprint(hasher.finish()) != order.fingerprint:
            from ..errors import InputChanged

            raise InputChanged(
                f"{order.path} changed after {order.owner} checked it (another fingerprint): "
                "the order it gives is not the checked input's; nothing was written",
                hint="put back the file it was made from (or give it with --file FILE), "
                "or leave out --input-order for the service's order",
            )
        lines = n + 1
        extra = 0
        block: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal extra
            ids = [
                r.get("custom_id") if isinstance(r.get("custom_id"), str) else None for r in block
            ]
            found = dict(
                db.execute(
                    "SELECT id, n FROM pos WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(ids),),
                )
            )
            out = []
            for record, custom_id in zip(block, ids, strict=True):
                where = found.get(custom_id) if custom_id is not None else None
                if where is None:
                    where = lines + extra
                    extra += 1
                out.append((where, json.dumps(record, ensure_ascii=False, default=str)))
            db.executemany("INSERT OR REPLACE INTO out VALUES (?, ?)", out)
            block.clear()

        for record in records:
            block.append(record)
            if len(block) >= _BLOCK:
                flush()
        flush()
        db.execute("COMMIT")
        for (text,) in db.execute("SELECT record FROM out ORDER BY n"):
            value = json.loads(text)
            yield value if isinstance(value, dict) else {"value": value}


def _custom_id(line: bytes) -> str | None:
    line = line.strip()
    if not line:
        return None
    try:
        value = _orjson.loads(line)
    except ValueError:
        return None
    custom_id = value.get("custom_id") if isinstance(value, dict) else None
    return custom_id if isinstance(custom_id, str) else None
