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

import json
import random
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .layout import OFFSETS_FILE, ROWS_FILE
from .plan import ANSWER_BROKEN, MISSING, OK, Plan
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
    return {
        "type": "record",
        "name": "BatchInputRecord",
        "namespace": "com.cohere.batch",
        "fields": fields,
    }


class PartWriter:
    """Writes records into ``part-NNNNN.avro`` files of at most ``part_max_records`` each.

    Records go to disk block by block as they come, so memory stays flat; :meth:`close`
    returns the part descriptions (at least one part, empty if no record came).
    """

    def __init__(self, out_dir: Path, schema: dict[str, Any], part_max_records: int) -> None:
        import fastavro  # lazy: only the worker needs it

        self._parsed = fastavro.parse_schema(schema)
        self._dir = out_dir
        self._limit = part_max_records
        self._parts: list[dict[str, Any]] = []
        self._fh: Any = None
        self._writer: Any = None
        out_dir.mkdir(parents=True, exist_ok=True)

    def add(self, record: dict[str, Any], sample: str | None = None) -> None:
        """Write one record; ``sample`` is its text among the part's samples (default: its JSON)."""
        if self._writer is None or self._parts[-1]["num_rows"] >= self._limit:
            self._open()
        part = self._parts[-1]
        self._writer.write(record)
        part["num_rows"] += 1
        if len(part["samples"]) < SAMPLES:
            part["samples"].append(json.dumps(record) if sample is None else sample)

    def _open(self) -> None:
        from fastavro.write import Writer

        self._finish_part()
        name = f"part-{len(self._parts):05d}.avro"
        self._fh = open(self._dir / name, "wb")  # noqa: SIM115 (closed in _finish_part)
        self._writer = Writer(self._fh, self._parsed, codec="null")
        self._parts.append(
            {"name": name, "index": len(self._parts), "size_bytes": 0, "num_rows": 0, "samples": []}
        )

    def _finish_part(self) -> None:
        if self._writer is None:
            return
        self._writer.flush()
        self._fh.close()
        self._parts[-1]["size_bytes"] = (self._dir / self._parts[-1]["name"]).stat().st_size
        self._writer = self._fh = None

    def close(self) -> list[dict[str, Any]]:
        if not self._parts:
            self._open()
        self._finish_part()
        return self._parts

    def abort(self) -> None:
        """Close without describing: the caller is about to discard the files."""
        if self._fh is not None:
            self._fh.close()
        self._writer = self._fh = None


# -- input ----------------------------------------------------------------------------


def input_record(
    record: dict[str, Any], batch_input: bool, extra_fields: list[str], line: str
) -> dict[str, Any]:
    """One parsed input line as a record of :func:`input_schema`."""
    if not batch_input:
        return {"record": line}
    out: dict[str, Any] = {
        "custom_id": str(record.get("custom_id", "")),
        "body": canonical_json(record.get("body")),
    }
    for name in extra_fields:
        out[name] = None if name not in record else canonical_json(record[name])
    return out


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: how the service re-serialises what it parsed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
    order = array(
        "q", (i for i in range(min(processed, plan.records)) if plan.outcome[i] != MISSING)
    )
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
    offsets = array("q")
    with open(input_dir / OFFSETS_FILE, "rb") as fh:
        offsets.frombytes(fh.read())
    summary = OutputSummary()
    writer = PartWriter(out_dir, OUTPUT_SCHEMA, part_max_records)
    try:
        with open(input_dir / ROWS_FILE, "rb") as fh:
            for n, index in enumerate(output_order(plan, processed, shuffle)):
                if n % 256 == 255:
                    time.sleep(0)  # let the HTTP thread take the GIL now and then
                fh.seek(offsets[index])
                writer.add(
                    _output_record(
                        json.loads(fh.readline()), index, plan, batch_id, success_error, summary
                    )
                )
    except BaseException:
        writer.abort()
        raise
    summary.parts = writer.close()
    summary.size_bytes = sum(p["size_bytes"] for p in summary.parts)
    return summary


def _output_record(
    record: Any,
    index: int,
    plan: Plan,
    batch_id: str,
    success_error: str | None,
    summary: OutputSummary,
) -> dict[str, Any]:
    custom_id = str(record.get("custom_id", "")) if isinstance(record, dict) else ""
    if plan.outcome[index] != OK:
        summary.failed += 1
        body = record.get("body") if isinstance(record, dict) else None
        return {"custom_id": custom_id, "body": None, "error": plan.message(index, body)}
    body = record["body"]
    tin, tout = plan.tin[index], plan.tout[index]
    rid = record_id(batch_id, custom_id)
    if plan.kind == "embed":
        response = embed_response(body, rid, tin, plan.dimension)
    else:
        broken = plan.error[index] == ANSWER_BROKEN
        response = chat_response(body, rid, tin, tout, plan.param[index], broken=broken)
    summary.successful += 1
    summary.input_tokens += tin
    summary.output_tokens += tout
    return {
        "custom_id": custom_id,
        "body": json.dumps(response, separators=(",", ":")),
        "error": success_error,
    }
