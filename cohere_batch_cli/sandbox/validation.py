"""Asynchronous validation of uploaded datasets, with the project's shared input rules.

Runs in the worker thread, streaming the uploaded file line by line. Batch input types
are checked with :mod:`cohere_batch_cli.input_rules` (the same rules ``cbatch datasets
validate`` applies locally, so both sides agree on every message); while scanning, each
good record's stand-in outcome is tallied into the prefix-sum sidecar (:mod:`.stats`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from cohere_batch_cli.input_rules import InputChecker, Problem

from .kinds import endpoint_kind, is_batch_input
from .responses import respond
from .stats import STATS_FILE, StatsBuilder

UPLOAD_FILE = "upload.jsonl"
ROWS_FILE = "data.jsonl"
SAMPLES = 3
MAX_WARNINGS = 100

INPUT_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "BatchInputRecord",
        "fields": [
            {"name": "custom_id", "type": "string"},
            {"name": "body", "type": "string"},
        ],
    },
    separators=(",", ":"),
)


def validate(dataset_dir: Path, dataset_type: str, flags: dict[str, Any]) -> dict[str, Any]:
    """Validate ``upload.jsonl`` in ``dataset_dir``; return the dataset fields to store."""
    upload = dataset_dir / UPLOAD_FILE
    skip = bool(flags.get("skip_malformed_input"))
    keep_fields = list(flags.get("keep_fields") or [])
    batch_input = is_batch_input(dataset_type)
    checker = InputChecker(dataset_type) if batch_input else None
    kind = endpoint_kind(dataset_type)
    stats = StatsBuilder()
    warnings: list[str] = []
    dropped = 0
    samples: list[str] = []
    rows = 0
    rows_path = dataset_dir / ROWS_FILE
    with open(upload, "rb") as src, open(rows_path, "wb") as dst:
        for line_no, raw in enumerate(src, start=1):
            if line_no % 256 == 0:
                time.sleep(0)  # let the HTTP thread take the GIL now and then
            problems: list[Problem]
            record: Any = None
            if checker is not None:
                problems = checker.feed(line_no, raw)
            else:
                problems = []
            if not raw.strip() or (line_no == 1 and raw.strip() == b"\xef\xbb\xbf"):
                continue
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
            dst.write(line + b"\n")
            if len(samples) < SAMPLES:
                samples.append(line.decode("utf-8", "replace"))
            if batch_input:
                _, error, tin, tout = respond(kind, record, "")
                stats.add(error is not None, tin, tout)
    if checker is not None:
        whole = [p for p in checker.finish() if "holds no records" not in p.message]
        if whole:
            return _failed(str(whole[0]))
    if rows == 0:
        return _failed("the file holds no valid records" if dropped else "the file holds no records")
    if dropped > len(warnings):
        warnings.append(f"... and {dropped - len(warnings)} more dropped rows")
    if batch_input:
        stats.save(dataset_dir / STATS_FILE)
    keep_original = bool(flags.get("keep_original_file"))
    if not keep_original:
        os.unlink(upload)
    size = rows_path.stat().st_size + (upload.stat().st_size if keep_original else 0)
    part: dict[str, Any] = {
        "name": ROWS_FILE,
        "index": 0,
        "size_bytes": rows_path.stat().st_size,
        "num_rows": rows,
        "samples": samples,
    }
    if keep_original:
        part["original"] = UPLOAD_FILE
    preserve = sorted(set(keep_fields) | set(flags.get("optional_fields") or []))
    return {
        "validation_status": "validated",
        "validation_error": None,
        "validation_warnings": warnings,
        "schema": INPUT_SCHEMA,
        "required_fields": ["custom_id", "body"] if batch_input else [],
        "preserve_fields": preserve,
        "parts": [part],
        "size_bytes": size,
        "num_rows": rows,
    }


def _failed(message: str) -> dict[str, Any]:
    return {"validation_status": "failed", "validation_error": message, "parts": []}
