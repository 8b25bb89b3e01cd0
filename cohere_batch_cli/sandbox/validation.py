"""Asynchronous validation of uploaded datasets, with the project's shared input rules.

Runs in the worker thread, streaming the uploaded file line by line. Batch input types
are checked with :mod:`cohere_batch_cli.input_rules` (the same rules ``cbatch datasets
validate`` applies locally, so both sides agree on every message). A validated dataset
keeps, beside its served Avro parts (:mod:`.avro_output`):

- ``data.jsonl``, the kept records, one a line, and ``offsets.bin``, where each starts,
  so the output writer can read them in any (shuffled) order;
- ``facts.jsonl``, each record's token counts and request fields (:mod:`.usage`), from
  which a batch plans its outcomes without tokenizing again.
"""

from __future__ import annotations

import json
import os
import time
from array import array
from pathlib import Path
from typing import Any

from cohere_batch_cli.input_rules import CLIENT_ONLY_CHAT_FIELDS, InputChecker, Problem

from .avro_output import PartWriter, input_record, input_schema
from .kinds import endpoint_kind, is_batch_input
from .layout import FACTS_FILE, OFFSETS_FILE, ROWS_FILE, UPLOAD_FILE
from .usage import digest, facts_line

__all__ = ["FACTS_FILE", "OFFSETS_FILE", "ROWS_FILE", "UPLOAD_FILE", "rebuild_facts", "validate"]
MAX_WARNINGS = 100


def validate(
    dataset_dir: Path, dataset_type: str, flags: dict[str, Any], part_max_records: int
) -> dict[str, Any]:
    """Validate ``upload.jsonl`` in ``dataset_dir``; return the dataset fields to store."""
    scan = _Scan(dataset_dir, dataset_type, flags, part_max_records)
    try:
        failure = scan.run()
    except BaseException:
        scan.parts.abort()
        raise
    if failure is None and scan.checker is not None:
        whole = [p for p in scan.checker.finish() if "holds no records" not in p.message]
        failure = str(whole[0]) if whole else None
    if failure is None and scan.rows == 0:
        failure = "the file holds no valid records" if scan.dropped else "the file holds no records"
    if failure is not None:
        scan.parts.abort()
        return {"validation_status": "failed", "validation_error": failure, "parts": []}
    warnings = scan.warnings
    if scan.dropped > len(warnings):
        warnings.append(f"... and {scan.dropped - len(warnings)} more dropped rows")
    warnings += _unlisted_field_warnings(scan.unlisted)
    with open(dataset_dir / OFFSETS_FILE, "wb") as fh:
        scan.offsets.tofile(fh)
    parts = scan.parts.close()
    if flags.get("keep_original_file"):
        for part in parts:
            part["original"] = UPLOAD_FILE
    else:
        os.unlink(dataset_dir / UPLOAD_FILE)
    return {
        "validation_status": "validated",
        "validation_error": None,
        "validation_warnings": warnings,
        "schema": json.dumps(scan.schema, separators=(",", ":")),
        "required_fields": ["custom_id", "body"] if scan.batch_input else [],
        "preserve_fields": scan.preserve,
        "parts": parts,
        "num_rows": scan.rows,
    }


def _unlisted_field_warnings(seen: dict[str, list[int]]) -> list[str]:
    """One warning a field clients send that the API's description lacks (``max_input_tokens``...).

    CONTRACT.md ("Input and output records"): accepted with a warning, never
    refused. ``seen``: each field's first line and how many kept records set it. The wording is the sandbox's own: none is
    recorded from the service.
    """
    return [
        f"body.{name} is not a field of the API's chat request: accepted and ignored "
        f"({count:,} record{'' if count == 1 else 's'}, first on line {first})"
        for name, (first, count) in sorted(seen.items())
    ]


class _Scan:
    """One pass over an upload, writing the kept rows, their offsets, facts and Avro parts."""

    def __init__(
        self, dataset_dir: Path, dataset_type: str, flags: dict[str, Any], part_max_records: int
    ) -> None:
        self.dir = dataset_dir
        self.skip = bool(flags.get("skip_malformed_input"))
        self.keep_fields = list(flags.get("keep_fields") or [])
        self.batch_input = is_batch_input(dataset_type)
        self.checker = InputChecker(dataset_type) if self.batch_input else None
        self.kind = endpoint_kind(dataset_type)
        self.preserve = sorted(set(self.keep_fields) | set(flags.get("optional_fields") or []))
        self.extra = [f for f in self.preserve if f not in ("custom_id", "body")]
        self.schema = input_schema(self.batch_input, self.extra)
        self.parts = PartWriter(dataset_dir, self.schema, part_max_records)
        self.offsets: array[int] = array("q")
        self.warnings: list[str] = []
        self.rows = 0
        self.dropped = 0
        self.unlisted: dict[str, list[int]] = {}
        """Each field of CLIENT_ONLY_CHAT_FIELDS the kept records set: [its first line, how many]."""

    def run(self) -> str | None:
        """Scan the whole upload; the first problem, unless malformed rows are skipped."""
        d = self.dir
        with (
            open(d / UPLOAD_FILE, "rb") as src,
            open(d / ROWS_FILE, "wb") as rows,
            open(d / FACTS_FILE, "wb") as facts,
        ):
            for line_no, raw in enumerate(src, start=1):
                if line_no % 256 == 0:
                    time.sleep(0)  # let the HTTP thread take the GIL now and then
                problem = self._line(line_no, raw, rows, facts)
                if problem is not None and not self.skip:
                    return str(problem)
        return None

    def _line(self, line_no: int, raw: bytes, rows: Any, facts: Any) -> Problem | None:
        problems: list[Problem] = (
            self.checker.feed(line_no, raw) if self.checker is not None else []
        )
        if not raw.strip() or (line_no == 1 and raw.strip() == b"\xef\xbb\xbf"):
            return None
        record: Any = None
        if not problems:
            try:
                record = json.loads(raw.lstrip(b"\xef\xbb\xbf") if line_no == 1 else raw)
            except ValueError as exc:
                problems = [Problem(line_no, f"invalid JSON: {exc}")]
        if not problems and not isinstance(record, dict):
            problems = [Problem(line_no, "each line must be a JSON object")]
        if not problems:
            problems = [
                Problem(line_no, f'missing field "{name}" named in keep_fields')
                for name in self.keep_fields
                if name not in record
            ]
        if problems:
            self.dropped += 1
            if len(self.warnings) < MAX_WARNINGS:
                self.warnings.append(f"dropped {problems[0]}")
            return problems[0]
        self.rows += 1
        body = record.get("body")
        if isinstance(body, dict) and not CLIENT_ONLY_CHAT_FIELDS.isdisjoint(body):
            for name in CLIENT_ONLY_CHAT_FIELDS.intersection(body):
                self.unlisted.setdefault(name, [line_no, 0])[1] += 1
        line = raw.rstrip(b"\r\n")
        if line_no == 1:
            line = line.lstrip(b"\xef\xbb\xbf")
        self.offsets.append(rows.tell())
        rows.write(line + b"\n")
        text = line.decode("utf-8", "replace")
        avro = input_record(record, self.batch_input, self.extra, text)
        self.parts.add(avro, text)
        if self.batch_input:
            fact = facts_line(self.kind, record, digest(avro["body"]))
            facts.write(json.dumps(fact, separators=(",", ":")).encode() + b"\n")
        return None


def rebuild_facts(dataset_dir: Path, dataset_type: str) -> None:
    """Write ``facts.jsonl`` and ``offsets.bin`` for a dataset validated by an older sandbox.

    Those kept only ``data.jsonl``; a batch of one needs the facts to plan its records.
    """
    kind = endpoint_kind(dataset_type)
    offsets: array[int] = array("q")
    with open(dataset_dir / ROWS_FILE, "rb") as rows, open(dataset_dir / FACTS_FILE, "wb") as facts:
        while raw := rows.readline():
            offsets.append(rows.tell() - len(raw))
            fact = facts_line(kind, json.loads(raw))
            facts.write(json.dumps(fact, separators=(",", ":")).encode() + b"\n")
    with open(dataset_dir / OFFSETS_FILE, "wb") as fh:
        offsets.tofile(fh)
