"""Which records a retry sends again, and the retry input that holds just those.

A retry compares the input (the requests of the original batch) with the
output of every attempt so far, and picks each input record whose latest
state is not a success: failed in its latest attempt (and matching the
user's ``--match`` pattern, when there is one), or with no result at all
(unless missing ones are left out). The lines picked are copied byte for
byte: same ``custom_id``, same body.

The rule is the user's alone. The API marks no failure as transient, so
nothing here reads meaning into an error's text: by default every failure
is retried, and a pattern is a plain regular expression over the text.

Memory stays flat whatever the size. The ids of the outputs go to a scratch
SQLite database on disk (:mod:`cohere_batch_cli.state.spill`), never into a
set of ten million strings; the input is read a few megabytes at a time
(:mod:`.scan`) and looked up a block at a time. Both halves are CPU-bound,
so large work is shared with worker processes (:mod:`.pool`).

The steps:

1. every attempt's output parts (Avro, already downloaded) are decoded, a
   part per task, and their ids written to the scratch database: successes
   to ``ok``, failures to ``failed`` with their attempt, error and whether
   the rule matches it;
2. ``ok`` is indexed, and ``latest`` keeps each failed id's latest failure;
3. the input is cut into runs of whole lines, one per task; each task reads
   its run, asks the database which of its ids to send, and writes those
   lines (and, for a dry run, why each was picked) to files of its own;
4. the runs' files are joined in order into the retry input.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputRejected, UsageError
from ..state.spill import open_readonly, scratch_database
from .pool import Workers, worker_count
from .scan import BadLine, line_number, line_starts, read_blocks

PARALLEL_BYTES = 64 * 1024 * 1024
"""Below this much input and output, the selection runs in this process alone."""
_PIECES_PER_WORKER = 4
_KIND = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|\d+(?:[.,]\d+)*")
_TOP_ERRORS = 5
_MAX_KINDS = 10_000
"""Kinds of error a run of the input counts one by one; more are counted together, so memory stays flat."""
OTHER_KINDS = "(other kinds of error)"


@dataclass(frozen=True)
class Rule:
    """What to send again: failures (those whose error text ``pattern`` finds), missing ones, invalid ones.

    ``invalid`` reaches only a run with an answer schema (``create --from
    ... --schema``): a success whose answer is invalid (:mod:`cohere_batch_cli.results.validity`)
    counts as failed, its error text ``invalid output: REASON``, and is sent
    again unless ``invalid`` is off or ``pattern`` does not find that text.
    ``failed`` off leaves the API's failures out (``retry --invalid``).
    """

    pattern: str | None = None
    missing: bool = True
    failed: bool = True
    invalid: bool = True

    def __post_init__(self) -> None:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise UsageError(
                    f"--match {self.pattern!r} is not a regular expression: {exc}"
                ) from None

    @classmethod
    def only_invalid(cls) -> Rule:
        """``retry --invalid``: the invalid answers alone, no failure, no missing record."""
        return cls(missing=False, failed=False, invalid=True)

    def matches(self, error: str, invalid: bool = False) -> bool:
        """Whether a failure (``invalid``: an invalid answer) with this error text is picked."""
        if not (self.invalid if invalid else self.failed):
            return False
        return self.pattern is None or re.search(self.pattern, error) is not None

    def describe(self) -> str:
        if not self.failed:
            return "only invalid answers"
        failures = (
            "every failure" if self.pattern is None else f"failures matching {self.pattern!r}"
        )
        return failures + (" and every record with no result" if self.missing else "")


@dataclass
class Selection:
    """What a selection found and wrote: counts a summary and the exit code are made of."""

    input_records: int = 0
    records: int = 0
    """Records written to the retry input."""
    failed: int = 0
    """Of those, records whose latest attempt failed."""
    invalid: int = 0
    """Of those, records whose latest attempt succeeded with an invalid answer (a schema run)."""
    missing: int = 0
    """Of those, records with no result in any attempt."""
    succeeded: int = 0
    """Input records with a success in some attempt: never sent again."""
    left_failing: int = 0
    """Failed input records the rule leaves out (their error does not match)."""
    left_invalid: int = 0
    """Input records with an invalid answer the rule leaves out."""
    left_missing: int = 0
    """Input records with no result, left out (missing ones not asked for)."""
    results: int = 0
    """Output records read, every attempt together."""
    errors: list[tuple[str, int]] = field(default_factory=list)
    """The errors of the records picked, by kind (numbers and ids left out), most frequent first."""
    error_kinds: int = 0
    workers: int = 0
    """Worker processes the selection used (0: it ran in this process alone)."""

    @property
    def still_failing(self) -> int:
        """Input records whose latest state is not a success, picked or not."""
        return self.input_records - self.succeeded


def error_kind(error: str) -> str:
    """An error with its numbers and ids taken out, so one kind of failure is counted once."""
    text = _KIND.sub("…", " ".join(error.split()))
    return text if len(text) <= 160 else text[:159] + "…"


def select(
    input_path: Path,
    outputs: Sequence[Sequence[Path]],
    destination: Path,
    workdir: Path,
    rule: Rule = Rule(),
    *,
    listing: Path | None = None,
    processes: int | None = None,
    schema: str | None = None,
) -> Selection:
    """Write the input records ``rule`` picks to ``destination``; say what was picked and why.

    ``outputs`` holds the downloaded Avro parts of each attempt, attempt 1
    first. ``listing``, when given, receives one JSON line per record picked:
    ``{"custom_id", "reason": "failed"|"invalid"|"missing", "attempt", "error"}``.
    ``processes`` (None: by the size of the work) sets the worker processes.
    ``schema`` (the run's answer schema, as JSON text) makes a success whose
    answer is invalid count as failed: picked when ``rule.invalid`` is on.
    Raises :class:`InputRejected` for an input line with no ``custom_id``, or
    an input none of whose records has a result (not this batch's input).
    """
    size = input_path.stat().st_size
    part_bytes = sum(p.stat().st_size for parts in outputs for p in parts)
    count = worker_count(size + part_bytes, PARALLEL_BYTES) if processes is None else processes
    selection = Selection(workers=count)
    with scratch_database(workdir, "selection") as (db, db_path), Workers(count) as workers:
        _load_outputs(db, outputs, rule, workers, selection, schema)
        with open(input_path, "rb") as fh:
            starts = line_starts(fh, size, max(1, count * _PIECES_PER_WORKER))
        ends = [*starts[1:], size]
        tasks = [
            _Range(
                str(input_path),
                start,
                end,
                str(db_path),
                rule.missing,
                str(workdir / f"run-{k:04d}"),
                listing is not None,
            )
            for k, (start, end) in enumerate(zip(starts, ends, strict=True))
        ]
        kinds: Counter[str] = Counter()
        results = list(workers.map(_scan_range, tasks))
    for result in results:
        if result.bad is not None:
            with open(input_path, "rb") as fh:
                line = line_number(fh, result.bad[0])
            raise InputRejected(
                f"{input_path}:{line}: {result.bad[1]}; the retry input cannot be built from it"
            )
        selection.input_records += result.total
        selection.records += result.selected
        selection.failed += result.failed
        selection.succeeded += result.succeeded
        selection.left_failing += result.left_failing
        selection.left_invalid += result.left_invalid
        selection.invalid += result.invalid
        selection.left_missing += result.left_missing
        kinds.update(result.kinds)
    selection.missing = selection.records - selection.failed - selection.invalid
    selection.errors = kinds.most_common(_TOP_ERRORS)
    selection.error_kinds = len(kinds)
    _join([Path(t.out) for t in tasks], destination)
    if listing is not None:
        _join([Path(t.out + ".why") for t in tasks], listing)
    for task in tasks:
        Path(task.out).unlink(missing_ok=True)
        Path(task.out + ".why").unlink(missing_ok=True)
    with_result = (
        selection.succeeded
        + selection.failed
        + selection.invalid
        + selection.left_failing
        + selection.left_invalid
    )
    if selection.results and selection.input_records and not with_result:
        raise InputRejected(
            f"none of the {selection.input_records:,} records of {input_path} has a result in the batch: "
            "it is not this batch's input",
            hint="give the file the batch was created from with --input FILE",
        )
    return selection


def usable_records(
    outputs: Sequence[Sequence[Path]],
    workdir: Path,
    *,
    schema: str | None,
    processes: int | None = None,
) -> int:
    """Distinct records with a usable success in some attempt's output: not failed, and valid for ``schema``.

    What is left is then the records sent less this, counted without the
    input (``watch --fail-on-records``, a job's rounds): the outputs are read
    as :func:`select` reads them, so both agree on what counts as a success.
    """
    part_bytes = sum(p.stat().st_size for parts in outputs for p in parts)
    count = worker_count(part_bytes, PARALLEL_BYTES) if processes is None else processes
    with scratch_database(workdir, "usable") as (db, _), Workers(count) as workers:
        _load_outputs(db, outputs, Rule(), workers, Selection(workers=count), schema)
        (found,) = db.execute("SELECT count(DISTINCT id) FROM ok").fetchone()
    return int(found)


# -- step 1 and 2: the outputs ---------------------------------------------------------------


def _load_outputs(
    db: sqlite3.Connection,
    outputs: Sequence[Sequence[Path]],
    rule: Rule,
    workers: Workers,
    selection: Selection,
    schema: str | None,
) -> None:
    db.execute("CREATE TABLE ok (id TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE failed (id TEXT NOT NULL, attempt INTEGER NOT NULL, matched INTEGER NOT NULL,"
        " error TEXT NOT NULL, invalid INTEGER NOT NULL)"
    )
    jobs = [
        (attempt, str(path)) for attempt, parts in enumerate(outputs, start=1) for path in parts
    ]
    db.execute("BEGIN")
    for attempt, decoded in zip(
        (a for a, _ in jobs),
        workers.map(_decode_part, [(p, schema) for _, p in jobs]),
        strict=True,
    ):
        ok, failed, total = decoded
        selection.results += total
        db.execute(
            "INSERT INTO ok SELECT value FROM json_each(?)", (ok,)
        )  # parsed in C: 5x executemany
        db.executemany(
            "INSERT INTO failed VALUES (?, ?, ?, ?, ?)",
            [
                (cid, attempt, rule.matches(error, invalid), error, invalid)
                for cid, error, invalid in failed
            ],
        )
    db.execute("COMMIT")
    db.execute("CREATE INDEX ok_by_id ON ok (id)")
    # SQLite takes the bare columns of a max() group from the row holding the max.
    db.execute(
        "CREATE TABLE latest AS SELECT id, max(attempt) AS attempt, matched, error, invalid"
        " FROM failed GROUP BY id"
    )
    db.execute("CREATE INDEX latest_by_id ON latest (id)")


def _decode_part(
    task: tuple[str, str | None],
) -> tuple[bytes | str, list[tuple[str, str, bool]], int]:
    """One output part: the ids that succeeded (a JSON array), the failures with their error, the record count.

    Runs in a worker process. ``task`` is the part's path and the run's answer
    schema (JSON text, or None): a success whose answer is invalid for it is
    a failure here, its error the reason, marked invalid. The part is the
    API's, so unreadable bytes are a :class:`~cohere_batch_cli.errors.ResultsError`
    as in ``cbatch results``.
    """
    import fastavro

    from ..errors import ResultsError
    from ..results.validity import INVALID_PREFIX, invalid_reason, of_schema_text

    path, schema = task
    typed = of_schema_text(schema)
    ok: list[str] = []
    failed: list[tuple[str, str, bool]] = []
    total = 0
    try:
        with open(path, "rb") as fh:
            for record in fastavro.reader(fh):
                total += 1
                if not isinstance(record, dict):
                    continue
                custom_id = record.get("custom_id")
                if not isinstance(custom_id, str):
                    continue
                error = record.get("error")
                if error is None or error == "" or error == {}:
                    reason = invalid_reason(record, typed)
                    if reason is None:
                        ok.append(custom_id)
                    else:
                        failed.append((custom_id, INVALID_PREFIX + reason, True))
                else:
                    failed.append(
                        (custom_id, error if isinstance(error, str) else str(error), False)
                    )
    except Exception as exc:  # untrusted bytes: any failure to decode them says only that
        raise ResultsError(
            f"an output part is not a readable Avro file (after {total:,} records): {type(exc).__name__}"
        ) from None
    return _json(ok), failed, total


def _json(value: Any) -> bytes | str:
    import orjson

    return orjson.dumps(value)


# -- step 3: the input -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Range:
    path: str
    start: int
    end: int
    db: str
    missing: bool
    out: str
    why: bool


@dataclass
class _RangeResult:
    total: int = 0
    selected: int = 0
    failed: int = 0
    invalid: int = 0
    succeeded: int = 0
    left_failing: int = 0
    left_invalid: int = 0
    left_missing: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    bad: tuple[int, str] | None = None


_PICK = """
SELECT j.key, f.attempt, f.error, f.matched, f.invalid
FROM json_each(?) AS j LEFT JOIN latest AS f ON f.id = j.value
WHERE NOT EXISTS (SELECT 1 FROM ok WHERE ok.id = j.value)
"""
"""For a block of ids (a JSON array): each one that has no success, with its latest failure if any."""


def _scan_range(task: _Range) -> _RangeResult:
    """Read one run of input lines; write the ones to send (and why) to the task's own files.

    Runs in a worker process, with a read-only connection to the scratch database.
    """
    import orjson

    to_json: Any = orjson.dumps
    db = open_readonly(Path(task.db))
    result = _RangeResult()
    kinds: Counter[str] = Counter()
    try:
        with ExitStack() as files:
            src = files.enter_context(open(task.path, "rb"))
            out = files.enter_context(open(task.out, "wb"))
            why = files.enter_context(open(task.out + ".why", "wb")) if task.why else None
            try:
                for block in read_blocks(src, task.start, task.end):
                    ids = [cid for cid in block.ids if cid is not None]
                    lines = block.lines
                    if len(ids) != len(lines):  # blank lines: no id, nothing to send
                        lines = [
                            line
                            for line, cid in zip(lines, block.ids, strict=True)
                            if cid is not None
                        ]
                    result.total += len(ids)
                    picked: list[bytes] = []
                    no_success = 0
                    for key, attempt, error, matched, invalid in db.execute(_PICK, (to_json(ids),)):
                        no_success += 1
                        if error is None:
                            if not task.missing:
                                result.left_missing += 1
                                continue
                        elif not matched:
                            if invalid:
                                result.left_invalid += 1
                            else:
                                result.left_failing += 1
                            continue
                        else:
                            if invalid:
                                result.invalid += 1
                            else:
                                result.failed += 1
                            kind = error_kind(error)
                            kinds[
                                kind if kind in kinds or len(kinds) < _MAX_KINDS else OTHER_KINDS
                            ] += 1
                        picked.append(lines[key])
                        if why is not None:
                            reason = (
                                "missing" if error is None else "invalid" if invalid else "failed"
                            )
                            why.write(
                                to_json(
                                    {
                                        "custom_id": ids[key],
                                        "reason": reason,
                                        "attempt": attempt,
                                        "error": error,
                                    }
                                )
                                + b"\n"
                            )
                    result.succeeded += len(ids) - no_success
                    result.selected += len(picked)
                    if picked:
                        out.write(b"\n".join(line.rstrip(b"\r") for line in picked) + b"\n")
            except BadLine as exc:
                result.bad = (exc.offset, exc.reason)
    finally:
        db.close()
    result.kinds = dict(kinds)
    return result


# -- step 4 ----------------------------------------------------------------------------------


def _join(pieces: Iterable[Path], destination: Path) -> None:
    with open(destination, "wb") as out:
        for piece in pieces:
            if piece.exists():
                with open(piece, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
