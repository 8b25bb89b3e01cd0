"""Writes a batch's results as Avro container files, streaming, split into parts.

Record schema (one record per input, in input order)::

    {"custom_id": string, "body": null | string, "error": null | string}

``body`` is the endpoint's normal JSON response encoded as a string, ``error`` a
non-empty message; exactly one of them is set. A JSON string rather than a nested Avro
record keeps one schema valid for every response shape (chat content parts, tool calls,
every embedding type) and is what a reader decodes with one ``json.loads``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .responses import record_id, respond

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "BatchOutputRecord",
    "namespace": "com.cohere.batch",
    "fields": [
        {"name": "custom_id", "type": "string"},
        {"name": "body", "type": ["null", "string"], "default": None},
        {"name": "error", "type": ["null", "string"], "default": None},
    ],
}
OUTPUT_SCHEMA_JSON = json.dumps(OUTPUT_SCHEMA, separators=(",", ":"))
SAMPLES = 3


@dataclass
class OutputSummary:
    """What was written: the part descriptions and the totals recomputed on the way."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    successful: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    size_bytes: int = 0


def _records(rows_path: Path, kind: str, batch_id: str, summary: OutputSummary) -> Iterator[dict[str, Any]]:
    with open(rows_path, "rb") as fh:
        for n, raw in enumerate(fh):
            if not raw.strip():
                continue
            if n % 256 == 0:
                time.sleep(0)  # let the HTTP thread take the GIL now and then
            record = json.loads(raw)
            custom_id = str(record.get("custom_id", ""))
            body, error, tin, tout = respond(kind, record, record_id(batch_id, custom_id))
            if error is None:
                summary.successful += 1
            else:
                summary.failed += 1
            summary.input_tokens += tin
            summary.output_tokens += tout
            yield {
                "custom_id": custom_id,
                "body": None if body is None else json.dumps(body, separators=(",", ":")),
                "error": error,
            }


def write_output(
    rows_path: Path, out_dir: Path, kind: str, batch_id: str, part_max_records: int
) -> OutputSummary:
    """Write ``part-NNNNN.avro`` files into ``out_dir``; never holds more than a block in memory."""
    import fastavro  # lazy: only the worker needs it

    parsed = fastavro.parse_schema(OUTPUT_SCHEMA)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = OutputSummary()
    records = _records(rows_path, kind, batch_id, summary)
    for index in itertools.count():
        first = next(records, None)
        if first is None and index > 0:
            break
        part = _Part(first, records, part_max_records)
        name = f"part-{index:05d}.avro"
        path = out_dir / name
        with open(path, "wb") as fh:
            fastavro.writer(fh, parsed, part, codec="null")
        size = path.stat().st_size
        summary.size_bytes += size
        summary.parts.append(
            {
                "name": name,
                "index": index,
                "size_bytes": size,
                "num_rows": part.count,
                "samples": part.samples,
            }
        )
        if first is None:
            break
    return summary


class _Part:
    """The records of one part, counted and sampled as fastavro pulls them."""

    def __init__(self, first: dict[str, Any] | None, rest: Iterator[dict[str, Any]], limit: int) -> None:
        self.count = 0
        self.samples: list[str] = []
        self._first = first
        self._rest = rest
        self._limit = limit

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._first is None:
            return
        head = [self._first]
        for rec in itertools.chain(head, itertools.islice(self._rest, self._limit - 1)):
            self.count += 1
            if len(self.samples) < SAMPLES:
                self.samples.append(json.dumps(rec))
            yield rec
