"""Dataset parts as Avro container files, streamed and split, for inputs and outputs alike.

Output record schema (:data:`OUTPUT_SCHEMA`, also in the dataset's ``schema`` field)::

    {"custom_id": string, "body": null | string, "error": null | string}

``body`` is the endpoint's normal JSON response encoded as a string and ``error`` is
``""`` on success (as recorded; ``null`` with ``success_error="null"``); a failure has
``body`` null and a non-empty ``error``. A JSON string rather than a nested Avro record
keeps one schema valid for every response shape (content parts, tool calls, every
embedding type). Records come in a seeded shuffled order unless ``shuffle`` is off.

Input record schema (:func:`input_schema`): ``custom_id`` and ``body`` (the request body
as a JSON string) plus one nullable JSON-string field per kept field other than those.
Types that are not batch inputs keep each line whole in one ``record`` field.

Memory stays bounded: records are read one at a time (the output in shuffled order
by seeking to each record's offset) and written in Avro blocks.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plan import MISSING, OK, Plan
from .responses import chat_response, embed_response, record_id

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


def input_schema(batch_input: bool, extra_fields: list[str]) -> dict[str, Any]:
    if not batch_input:
        fields: list[dict[str, Any]] = [{"name": "record", "type": "string"}]
    else:
        fields = [{"name": "custom_id", "type": "string"}, {"name": "body", "type": "string"}]
        fields += [{"name": f, "type": ["null", "string"], "default": None} for f in extra_fields]
    return {"type": "record", "name": "BatchInputRecord", "namespace": "com.cohere.batch", "fields": fields}


def _write_parts(
    records: Iterator[tuple[dict[str, Any], str | None]], out_dir: Path, schema: dict[str, Any], part_max_records: int
) -> list[dict[str, Any]]:
    """Write ``part-NNNNN.avro`` files from (record, sample text) pairs; at least one part."""
    import fastavro  # lazy: only the worker needs it

    parsed = fastavro.parse_schema(schema)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for index in itertools.count():
        first = next(records, None)
        if first is None and index > 0:
            break
        part = _Part(first, records, part_max_records)
        name = f"part-{index:05d}.avro"
        path = out_dir / name
        with open(path, "wb") as fh:
            fastavro.writer(fh, parsed, part, codec="null")
        parts.append(
            {"name": name, "index": index, "size_bytes": path.stat().st_size, "num_rows": part.count, "samples": part.samples}
        )
        if first is None:
            break
    return parts


class _Part:
    """The records of one part, counted and sampled as fastavro pulls them."""

    def __init__(self, first: tuple[dict[str, Any], str | None] | None, rest: Iterator[tuple[dict[str, Any], str | None]], limit: int) -> None:
        self.count = 0
        self.samples: list[str] = []
        self._first = first
        self._rest = rest
        self._limit = limit

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._first is None:
            return
        for rec, sample in itertools.chain([self._first], itertools.islice(self._rest, self._limit - 1)):
            self.count += 1
            if len(self.samples) < SAMPLES:
                self.samples.append(json.dumps(rec) if sample is None else sample)
            yield rec


# -- input ----------------------------------------------------------------------------


def write_input_parts(
    rows_path: Path, out_dir: Path, batch_input: bool, extra_fields: list[str], part_max_records: int
) -> tuple[str, list[dict[str, Any]]]:
    """The parsed records of a validated dataset as Avro parts: (schema JSON, parts)."""
    schema = input_schema(batch_input, extra_fields)

    def records() -> Iterator[tuple[dict[str, Any], str | None]]:
        with open(rows_path, "rb") as fh:
            for n, raw in enumerate(fh):
                if n % 256 == 255:
                    time.sleep(0)
                line = raw.decode("utf-8").rstrip("\n")
                if not batch_input:
                    yield {"record": line}, line
                    continue
                record = json.loads(line)
                out: dict[str, Any] = {"custom_id": str(record.get("custom_id", "")), "body": _json(record.get("body"))}
                for name in extra_fields:
                    out[name] = None if name not in record else _json(record[name])
                yield out, line

    return json.dumps(schema, separators=(",", ":")), _write_parts(records(), out_dir, schema, part_max_records)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# -- output ---------------------------------------------------------------------------


@dataclass
class OutputSummary:
    """What was written: the part descriptions and the totals recomputed on the way."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    successful: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    size_bytes: int = 0


def output_order(plan: Plan, processed: int, shuffle: bool) -> array[int]:
    """Indices of the records an output holds (the first ``processed``, none missing), in order."""
    order = array("q", (i for i in range(min(processed, plan.records)) if plan.outcome[i] != MISSING))
    if shuffle:
        random.Random(plan.key).shuffle(order)
    return order


def write_output(
    input_dir: Path,
    out_dir: Path,
    plan: Plan,
    processed: int,
    batch_id: str,
    *,
    shuffle: bool,
    success_error: str | None,
    part_max_records: int,
) -> OutputSummary:
    """Write the output parts of the first ``processed`` records of a batch."""
    from .validation import OFFSETS_FILE, ROWS_FILE

    offsets = array("q")
    with open(input_dir / OFFSETS_FILE, "rb") as fh:
        offsets.frombytes(fh.read())
    summary = OutputSummary()
    order = output_order(plan, processed, shuffle)

    def records() -> Iterator[tuple[dict[str, Any], str | None]]:
        with open(input_dir / ROWS_FILE, "rb") as fh:
            for n, index in enumerate(order):
                if n % 256 == 255:
                    time.sleep(0)  # let the HTTP thread take the GIL now and then
                fh.seek(offsets[index])
                rec = _output_record(json.loads(fh.readline()), index, plan, batch_id, success_error, summary)
                yield rec, None

    summary.parts = _write_parts(records(), out_dir, OUTPUT_SCHEMA, part_max_records)
    summary.size_bytes = sum(p["size_bytes"] for p in summary.parts)
    return summary


def _output_record(
    record: Any, index: int, plan: Plan, batch_id: str, success_error: str | None, summary: OutputSummary
) -> dict[str, Any]:
    custom_id = str(record.get("custom_id", "")) if isinstance(record, dict) else ""
    if plan.outcome[index] != OK:
        summary.failed += 1
        return {"custom_id": custom_id, "body": None, "error": plan.message(index)}
    body = record["body"]
    tin, tout = plan.tin[index], plan.tout[index]
    rid = record_id(batch_id, custom_id)
    if plan.kind == "embed":
        response = embed_response(body, rid, tin, plan.dimension)
    else:
        response = chat_response(body, rid, tin, tout)
    summary.successful += 1
    summary.input_tokens += tin
    summary.output_tokens += tout
    return {"custom_id": custom_id, "body": json.dumps(response, separators=(",", ":")), "error": success_error}
