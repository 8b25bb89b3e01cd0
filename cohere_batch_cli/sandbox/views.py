"""Database rows rendered as the JSON objects of the API description.

Part URLs are built per request from the address the client used, so they are right
whatever port the sandbox got, and are signed and dated at that moment (:mod:`.links`):
each read of a dataset hands out fresh links, as the real API does.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .clock import rfc3339
from .links import part_url

TERMINAL = ("BATCH_STATUS_COMPLETED", "BATCH_STATUS_FAILED", "BATCH_STATUS_CANCELED")


def _live(row: Any, column: str) -> bool:
    """Whether the dataset a batch names still exists (a freshly created row: yes)."""
    return column not in row.keys() or bool(row[column])  # noqa: SIM118 (sqlite3.Row has no __contains__ by key)


def batch_json(row: Any, org_id: str, creator_id: str) -> dict[str, Any]:
    """A Batch; fields that have no value yet are left out, as the real API does.

    A dataset that has expired or been deleted leaves its id empty, as recorded for old
    batches on the real service (an output only once the batch has ended: a running
    batch names the output it is writing).
    """
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "creator_id": creator_id,
        "org_id": org_id,
        "status": row["status"],
        "created_at": rfc3339(row["created_us"]),
        "updated_at": rfc3339(row["updated_us"]),
        "input_dataset_id": row["input_dataset_id"] if _live(row, "input_live") else "",
        "model": row["model"],
        "num_records": row["num_records"],
        "num_successful_records": row["num_successful"],
        "num_failed_records": row["num_failed"],
        "input_tokens": str(row["input_tokens"]),
        "output_tokens": str(row["output_tokens"]),
    }
    if row["output_dataset_id"]:
        gone = row["status"] in TERMINAL and not _live(row, "output_live")
        out["output_dataset_id"] = "" if gone else row["output_dataset_id"]
    if row["status_reason"]:
        out["status_reason"] = row["status_reason"]
    return out


def dataset_json(row: Any, base_url: str, secret: str, link_ttl: int) -> dict[str, Any]:
    """A Dataset with its parts' download links, valid ``link_ttl`` seconds from now."""
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "created_at": rfc3339(row["created_us"]),
        "updated_at": rfc3339(row["updated_us"]),
        "dataset_type": row["dataset_type"],
        "validation_status": row["validation_status"],
    }
    if row["validation_error"]:
        out["validation_error"] = row["validation_error"]
    if row["schema"]:
        out["schema"] = row["schema"]
    out["required_fields"] = json.loads(row["required_fields"])
    out["preserve_fields"] = json.loads(row["preserve_fields"])
    parts = []
    if row["validation_status"] == "validated":
        now = time.time()
        for part in json.loads(row["parts"]):
            item = {
                "id": f"{row['id']}-{part['index']}",
                "name": part["name"],
                "url": part_url(base_url, secret, row["id"], part["name"], now, link_ttl),
                "index": part["index"],
                "size_bytes": part["size_bytes"],
                "num_rows": part["num_rows"],
                "samples": part["samples"],
            }
            if part.get("original"):
                item["original_url"] = part_url(
                    base_url, secret, row["id"], part["original"], now, link_ttl
                )
            parts.append(item)
    out["dataset_parts"] = parts
    out["validation_warnings"] = json.loads(row["validation_warnings"])
    return out
