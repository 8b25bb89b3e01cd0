"""Database rows rendered as the JSON objects of the API description.

Part URLs are built per request from the address the client used, so they are right
whatever port the sandbox got, and carry an HMAC signature instead of needing the API
key, the way pre-signed storage links do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote

from .clock import rfc3339


def sign(secret: str, dataset_id: str, name: str) -> str:
    """The signature a part URL carries; stable across restarts of the same data_dir."""
    msg = f"{dataset_id}/{name}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()[:32]


def part_url(base_url: str, secret: str, dataset_id: str, name: str) -> str:
    sig = sign(secret, dataset_id, name)
    return f"{base_url}/_sandbox/parts/{quote(dataset_id)}/{quote(name)}?sig={sig}"


def batch_json(row: Any, org_id: str, creator_id: str) -> dict[str, Any]:
    """A Batch; fields that have no value yet are left out, as the real API does."""
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "creator_id": creator_id,
        "org_id": org_id,
        "status": row["status"],
        "created_at": rfc3339(row["created_us"]),
        "updated_at": rfc3339(row["updated_us"]),
        "input_dataset_id": row["input_dataset_id"],
        "model": row["model"],
        "num_records": row["num_records"],
        "num_successful_records": row["num_successful"],
        "num_failed_records": row["num_failed"],
        "input_tokens": str(row["input_tokens"]),
        "output_tokens": str(row["output_tokens"]),
    }
    if row["output_dataset_id"]:
        out["output_dataset_id"] = row["output_dataset_id"]
    if row["status_reason"]:
        out["status_reason"] = row["status_reason"]
    return out


def dataset_json(row: Any, base_url: str, secret: str) -> dict[str, Any]:
    """A Dataset with its parts' download links."""
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
    if row["validation_status"] == "validated":
        parts = []
        for part in json.loads(row["parts"]):
            item = {
                "id": f"{row['id']}-{part['index']}",
                "name": part["name"],
                "url": part_url(base_url, secret, row["id"], part["name"]),
                "index": part["index"],
                "size_bytes": part["size_bytes"],
                "num_rows": part["num_rows"],
                "samples": part["samples"],
            }
            if part.get("original"):
                item["original_url"] = part_url(base_url, secret, row["id"], part["original"])
            parts.append(item)
        out["dataset_parts"] = parts
    else:
        out["dataset_parts"] = []
    out["validation_warnings"] = json.loads(row["validation_warnings"])
    return out
