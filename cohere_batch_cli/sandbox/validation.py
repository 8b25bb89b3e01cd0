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

from cohere_batch_cli.input_rules import InputChecker, Problem

from .avro_output import write_input_parts
from .kinds import endpoint_kind, is_batch_input
from .usage import facts_line

UPLOAD_FILE = "upload.jsonl"
ROWS_FILE = "data.jsonl"
OFFSETS_FILE = "offsets.bin"
FACTS_FILE = "facts.jsonl"
MAX_WARNINGS = 100


def validate(dataset_dir: Path, dataset_type: str, flags: dict[str, Any], part_max_records: int) -> dict[str, Any]:
    """Validate ``upload.jsonl`` in ``dataset_dir``; return the dataset fields to store."""
    upload = dataset_dir / UPLOAD_FILE
    skip = bool(flags.get("skip_malformed_input"))
    keep_fields = list(flags.get("keep_fields") or [])
    batch_input = is_batch_input(dataset_type)
    checker = InputChecker(dataset_type) if batch_input else None
    kind = endpoint_kind(dataset_type)
    warnings: list[str] = []
    dropped = 0
    rows = 0
    offsets = array("q")
    with open(upload, "rb") as src, open(dataset_dir / ROWS_FILE, "wb") as dst, open(dataset_dir / FACTS_FILE, "wb") as facts:
        for line_no, raw in enumerate(src, start=1):
            if line_no % 256 == 0:
                time.sleep(0)  # let the HTTP thread take the GIL now and then
            problems: list[Problem] = checker.feed(line_no, raw) if checker is not None else []
            if not raw.strip() or (line_no == 1 and raw.strip() == b"\xef\xbb\xbf"):
                continue
            record: Any = None
            if not problems:
                try:
                    record = json.loads(raw.lstrip(b"\xef\xbb\xbf") if line_no == 1 else raw)
                except ValueError as exc:
                    problems = [Problem(line_no, f"invalid JSON: {exc}")]
            if not problems and not isinstance(record, dict):
                problems = [Problem(line_no, "each line must be a JSON object")]
            if not problems:
                for name in keep_fields:
                    if name not in record:
                        problems.append(Problem(line_no, f'missing field "{name}" named in keep_fields'))
            if problems:
                if not skip:
                    return _failed(str(problems[0]))
                dropped += 1
                if len(warnings) < MAX_WARNINGS:
                    warnings.append(f"dropped {problems[0]}")
                continue
            rows += 1
            line = raw.rstrip(b"\r\n")
            if line_no == 1:
                line = line.lstrip(b"\xef\xbb\xbf")
            offsets.append(dst.tell())
            dst.write(line + b"\n")
            if batch_input:
                facts.write(json.dumps(facts_line(kind, record), separators=(",", ":")).encode() + b"\n")
    if checker is not None:
        whole = [p for p in checker.finish() if "holds no records" not in p.message]
        if whole:
            return _failed(str(whole[0]))
    if rows == 0:
        return _failed("the file holds no valid records" if dropped else "the file holds no records")
    if dropped > len(warnings):
        warnings.append(f"... and {dropped - len(warnings)} more dropped rows")
    with open(dataset_dir / OFFSETS_FILE, "wb") as fh:
        offsets.tofile(fh)
    preserve = sorted(set(keep_fields) | set(flags.get("optional_fields") or []))
    extra = [f for f in preserve if f not in ("custom_id", "body")]
    schema, parts = write_input_parts(dataset_dir / ROWS_FILE, dataset_dir, batch_input, extra, part_max_records)
    keep_original = bool(flags.get("keep_original_file"))
    if not keep_original:
        os.unlink(upload)
    for part in parts:
        if keep_original:
            part["original"] = UPLOAD_FILE
    return {
        "validation_status": "validated",
        "validation_error": None,
        "validation_warnings": warnings,
        "schema": schema,
        "required_fields": ["custom_id", "body"] if batch_input else [],
        "preserve_fields": preserve,
        "parts": parts,
        "num_rows": rows,
    }


def _failed(message: str) -> dict[str, Any]:
    return {"validation_status": "failed", "validation_error": message, "parts": []}
